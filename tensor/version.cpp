#include "attnlab/version.hpp"

namespace attnlab {

const char* version() {
  return ATTNLAB_VERSION_STRING;
}

const char* git_commit() {
  return ATTNLAB_GIT_COMMIT;
}

}  // namespace attnlab
