// A batch file: the token ids `attnlab inspect` runs through a model, as a
// safetensors file with two integer tensors of the same shape [B, T]:
//
//   inputs   I64 or I32 [B, T]   token ids in [0, vocab_size)
//   targets  I64 or I32 [B, T]   the token each position should predict
//
// Other tensors and the metadata are ignored. Like every reader of outside
// data, it trusts nothing in the file: a wrong dtype or shape, an empty
// tensor, or an id outside the vocabulary is an Error naming the file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attnlab/models/safetensors.hpp"

namespace attnlab {

struct TokenBatch {
  int64_t b = 0, t = 0;          // B, T
  std::vector<int32_t> inputs;   // [B, T], row-major
  std::vector<int32_t> targets;  // [B, T]
};

// Reads and validates a batch file against a vocabulary of vocab_size ids.
TokenBatch read_batch_file(const std::string& path, int64_t vocab_size);
// The same from bytes in memory; `what` names them in messages.
TokenBatch read_batch_bytes(std::span<const uint8_t> bytes, const std::string& what,
                            int64_t vocab_size);
// The same from a safetensors file already read (file.what names it).
TokenBatch batch_from_safetensors(const SafetensorsFile& file, int64_t vocab_size);

}  // namespace attnlab
