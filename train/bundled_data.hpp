// Where the data that ships with attnlab (data/tinyshakespeare.txt, the
// default corpus) is, when no path is given.
//
// Installed, it is <prefix>/share/attnlab/data/, and the program is
// <prefix>/bin/attnlab: the data is looked up relative to the running
// executable, so a moved prefix still works. The build tree copies data/ into
// <build>/share/attnlab/data/ so that its programs (<build>/attnlab,
// <build>/examples/...) find it by the same rule. Last comes the data
// directory of the prefix the library was configured for, for programs built
// elsewhere against an installed attnlab. Nothing points into the source tree.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

namespace attnlab {

/// The bundled corpus: Karpathy's tiny-shakespeare, the default `--data`.
inline constexpr std::string_view kDefaultCorpus = "tinyshakespeare.txt";

/// The places looked at for the bundled file `name`, in order:
/// <exe_dir>/../share/attnlab/data/name, <exe_dir>/share/attnlab/data/name,
/// <install datadir>/attnlab/data/name.
std::vector<std::filesystem::path> bundled_data_candidates(std::string_view name);

/// The first of bundled_data_candidates(name) that is a regular file, or
/// nothing. Reads only the file system (and /proc/self/exe).
std::optional<std::filesystem::path> find_bundled_data(std::string_view name);

}  // namespace attnlab
