// The one file a command writes (--out of convert, inspect, plot): its
// missing parent directories are created, and a file already there is
// replaced only when the same command wrote it (a converted decoder, an
// inspect result, a plot) or when the user says --force; never a directory.
#pragma once

#include <functional>
#include <string>

namespace attnlab::cli {

// Before `command` writes `path` (the value of its --out): refuses (Error,
// exit 1) a directory, and an existing file for which `written_by_command`
// is false unless `force`; then creates the missing parent directories.
void prepare_output_file(const std::string& command, const std::string& path, bool force,
                         const std::function<bool(const std::string& path)>& written_by_command);

// The JSON header of a safetensors file as text ("" when `path` is not one),
// to tell a command's own output by its tensor names or metadata.
std::string safetensors_header_text(const std::string& path);

}  // namespace attnlab::cli
