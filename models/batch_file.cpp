#include "attnlab/models/batch_file.hpp"

#include <algorithm>

#include "attnlab/tensor/error.hpp"

namespace attnlab {

TokenBatch batch_from_safetensors(const SafetensorsFile& file, int64_t vocab_size) {
  const std::string& path = file.what;
  // Ids are int32 in memory: no vocabulary reaches past that.
  const int64_t limit = std::min<int64_t>(vocab_size, int64_t{1} << 31);
  TokenBatch batch;
  for (const char* name : {"inputs", "targets"}) {
    const SafetensorsEntry& e = file.at(name);
    ATTN_CHECK(e.dtype == "I64" || e.dtype == "I32",
               "{}: {} must hold token ids as I64 or I32, got dtype {}", path, name, e.dtype);
    ATTN_CHECK(e.shape.size() == 2 && e.shape[0] > 0 && e.shape[1] > 0,
               "{}: {} must be a non-empty [B, T] tensor, got shape {}", path, name,
               shape_str(e.shape));
    if (batch.b == 0) {
      batch.b = e.shape[0];
      batch.t = e.shape[1];
    }
    ATTN_CHECK(e.shape == Shape({batch.b, batch.t}),
               "{}: inputs and targets differ in shape: {} and {}", path,
               shape_str({batch.b, batch.t}), shape_str(e.shape));
    std::vector<int32_t>& dst = std::string(name) == "inputs" ? batch.inputs : batch.targets;
    // numel is bounded by the file's size (the reader checked its bytes).
    dst.reserve(static_cast<size_t>(e.numel()));
    for (int64_t v : to_int64(e)) {
      ATTN_CHECK(v >= 0 && v < limit, "{}: {} holds token id {}, outside the vocabulary [0, {})",
                 path, name, v, limit);
      dst.push_back(static_cast<int32_t>(v));
    }
  }
  return batch;
}

TokenBatch read_batch_file(const std::string& path, int64_t vocab_size) {
  return batch_from_safetensors(read_safetensors(path), vocab_size);
}

TokenBatch read_batch_bytes(std::span<const uint8_t> bytes, const std::string& what,
                            int64_t vocab_size) {
  return batch_from_safetensors(read_safetensors_bytes(bytes, what), vocab_size);
}

}  // namespace attnlab
