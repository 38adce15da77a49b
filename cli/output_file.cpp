#include "cli/output_file.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "attnlab/tensor/error.hpp"

namespace attnlab::cli {

namespace fs = std::filesystem;

void prepare_output_file(const std::string& command, const std::string& path, bool force,
                         const std::function<bool(const std::string& path)>& written_by_command) {
  ATTN_CHECK(!fs::is_directory(path), "--out {} is a directory: give a file name", path);
  ATTN_CHECK(!fs::exists(path) || force || written_by_command(path),
             "--out {} exists and was not written by attnlab {}: give --force to replace it", path,
             command);
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  ATTN_CHECK(!ec, "--out {}: cannot create its directory {}: {}", path, parent.string(),
             ec.message());
}

std::string safetensors_header_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char size_bytes[8] = {};
  if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) return "";
  uint64_t size = 0;  // little-endian, as the format says
  for (int i = 7; i >= 0; --i) size = size << 8 | size_bytes[i];
  if (size == 0 || size > (uint64_t{1} << 27)) return "";  // not a header we wrote
  std::string header(static_cast<size_t>(size), '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(size))) return "";
  return header;
}

}  // namespace attnlab::cli
