#include "attnlab/train/bundled_data.hpp"

#include <system_error>

namespace attnlab {

namespace {
// The directory of the running executable, or nothing when the system does not say.
std::optional<std::filesystem::path> executable_dir() {
  std::error_code error;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error || exe.empty()) return std::nullopt;
  return exe.parent_path();
}
}  // namespace

std::vector<std::filesystem::path> bundled_data_candidates(std::string_view name) {
  std::vector<std::filesystem::path> candidates;
  const std::filesystem::path relative = std::filesystem::path("share") / "attnlab" / "data" / name;
  if (const auto dir = executable_dir()) {
    candidates.push_back((*dir / ".." / relative).lexically_normal());
    candidates.push_back(*dir / relative);
  }
  // Set by CMakeLists.txt: CMAKE_INSTALL_FULL_DATADIR/attnlab/data.
  candidates.push_back(std::filesystem::path(ATTNLAB_INSTALL_DATADIR) / name);
  return candidates;
}

std::optional<std::filesystem::path> find_bundled_data(std::string_view name) {
  for (const std::filesystem::path& candidate : bundled_data_candidates(name)) {
    std::error_code error;
    if (std::filesystem::is_regular_file(candidate, error)) return candidate;
  }
  return std::nullopt;
}

}  // namespace attnlab
