// The safetensors file format (https://huggingface.co/docs/safetensors):
//
//   [8 bytes]  N, the header length, a little-endian u64
//   [N bytes]  a UTF-8 JSON object:
//                {"__metadata__": {"key": "value", ...},      (optional, strings only)
//                 "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//                 ...}
//   [rest]     the data buffer; offsets are relative to its start. Tensors are
//              little-endian and row-major.
//
// The reader trusts nothing in the file: every size is checked against the
// real file size before it is used, so a lying header cannot make it allocate
// or read out of bounds, and any malformed input ends in an Error naming the
// file and the tensor or field, never a crash. Entries are kept in the order
// of their data offsets (the order of the bytes in the file; ties, which only
// empty tensors can have, by name), not the header's order.
//
// The writer writes tensors in the order given, with the header padded with
// spaces to a multiple of 8 bytes (as the reference implementation does), and
// writes atomically (see atomic_file.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

// One tensor of a safetensors file, as stored: its bytes are a view of the
// file's data buffer, which every Entry copied from the file keeps alive.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as in the file: "F32", "BF16", "I64", ...
  Shape shape;
  int64_t begin = 0, end = 0;                         // data_offsets, relative to the data buffer
  std::span<const uint8_t> bytes;                     // end - begin bytes = numel × dtype size
  std::shared_ptr<const std::vector<uint8_t>> owner;  // keeps `bytes` alive

  int64_t numel() const { return shape_numel(shape); }
};

struct SafetensorsFile {
  std::string what;  // the path (or the name given to read_safetensors_bytes)
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsEntry> entries;  // in data-offset order

  const SafetensorsEntry* find(const std::string& name) const;  // nullptr when absent
  const SafetensorsEntry& at(const std::string& name) const;    // throws naming file and tensor
};

// Reads a whole file (one read of its known size) and validates it.
SafetensorsFile read_safetensors(const std::string& path);
// The same from bytes in memory (copied); `what` names them in messages.
SafetensorsFile read_safetensors_bytes(std::span<const uint8_t> bytes, const std::string& what);

// Size in bytes of one element of a safetensors dtype name; 0 when unknown.
// Known: BOOL U8 I8 F8_E4M3 F8_E5M2 I16 U16 F16 BF16 I32 U32 F32 I64 U64 F64.
size_t safetensors_dtype_size(const std::string& dtype);

// The entry as a new contiguous tensor of dtype `want`. F32, F64 and BF16 are
// accepted (BF16 widens exactly; F64 → f32 rounds to nearest); anything else
// is refused with a message naming the tensor and its dtype.
Tensor to_tensor(const SafetensorsEntry& entry, DType want);
// The entry's values as int64, for files of token ids. I64 and I32 accepted.
std::vector<int64_t> to_int64(const SafetensorsEntry& entry);

// int64 data to write as an I64 tensor (e.g. the inputs/targets of a batch file).
struct Int64Array {
  Shape shape;
  std::vector<int64_t> values;  // row-major, shape_numel(shape) of them
};
// Data already in its stored form: `bytes` are the little-endian elements of
// `dtype` (a safetensors dtype name, e.g. "BF16", "I8"), row-major.
struct RawArray {
  std::string dtype;
  Shape shape;
  std::vector<uint8_t> bytes;  // shape_numel(shape) × safetensors_dtype_size(dtype)
};
// A value to write: a Tensor (f32 → F32, f64 → F64, in logical order even when
// not contiguous), int64 data (→ I64), or raw stored data (→ its dtype).
using SafetensorsValue = std::variant<Tensor, Int64Array, RawArray>;

// Write tensors (and metadata) to `path`, atomically. Names must be unique,
// non-empty and not "__metadata__"; every failure is an Error naming the path.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
void write_safetensors_values(const std::string& path,
                              const std::vector<std::pair<std::string, SafetensorsValue>>& values,
                              const std::map<std::string, std::string>& metadata = {});
// The bytes of the file write_safetensors_values would write (for tests).
std::vector<uint8_t> safetensors_bytes(
    const std::vector<std::pair<std::string, SafetensorsValue>>& values,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace attnlab
