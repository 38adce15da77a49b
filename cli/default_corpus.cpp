// The default of --data (train, eval, survey): the corpus installed with the
// program, found relative to it (train/bundled_data.hpp).
#include <fmt/format.h>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/bundled_data.hpp"
#include "cli/commands.hpp"

namespace attnlab::cli {

std::string default_corpus() {
  if (const auto found = find_bundled_data(kDefaultCorpus)) return found->string();
  std::string looked;
  for (const auto& candidate : bundled_data_candidates(kDefaultCorpus))
    looked += (looked.empty() ? "" : ", ") + candidate.string();
  throw Error(fmt::format(
      "the bundled corpus {} is not where it is installed (looked in {}): give a corpus with "
      "--data FILE",
      kDefaultCorpus, looked));
}

}  // namespace attnlab::cli
