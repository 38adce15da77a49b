// Fuzz target: the safetensors reader (models/safetensors.hpp), fed whole
// files: the 8-byte header length, the header JSON (UTF-8, duplicate keys,
// metadata, dtypes, shapes, data offsets), and the data buffer (overlapping,
// out-of-range, and huge declared sizes). An accepted file must convert every
// tensor it holds without reading out of bounds, and a file of F32/F64/I64
// tensors must write back and read again to the same names, shapes, dtypes,
// bytes and metadata.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attnlab/models/safetensors.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SafetensorsFile file;
  if (!fuzz::refuse_or_run([&] { file = read_safetensors_bytes({data, size}, "fuzz"); })) return 0;

  bool rewritable = true;
  for (const SafetensorsEntry& e : file.entries) {
    FUZZ_EXPECT(e.begin >= 0 && e.begin <= e.end);
    FUZZ_EXPECT(static_cast<size_t>(e.end - e.begin) == e.bytes.size());
    FUZZ_EXPECT(e.bytes.size() == static_cast<size_t>(e.numel()) * safetensors_dtype_size(e.dtype));
    // The bytes lie inside the input (the reader copied it: compare contents).
    FUZZ_EXPECT(e.bytes.size() <= size);
    if (e.dtype == "F32" || e.dtype == "F64" || e.dtype == "BF16") {
      fuzz::refuse_or_run([&] {
        const Tensor t = to_tensor(e, DType::F32);
        FUZZ_EXPECT(t.shape() == e.shape);
      });
      fuzz::refuse_or_run([&] { (void)to_tensor(e, DType::F64); });
    } else if (e.dtype == "I64" || e.dtype == "I32") {
      fuzz::refuse_or_run(
          [&] { FUZZ_EXPECT(to_int64(e).size() == static_cast<size_t>(e.numel())); });
    } else {
      // Every other dtype is refused by both conversions, with a message.
      FUZZ_EXPECT(!fuzz::refuse_or_run([&] { (void)to_tensor(e, DType::F32); }));
      FUZZ_EXPECT(!fuzz::refuse_or_run([&] { (void)to_int64(e); }));
    }
    rewritable = rewritable && (e.dtype == "F32" || e.dtype == "F64" || e.dtype == "I64");
  }
  if (!rewritable) return 0;

  // Round trip: what the writer makes of an accepted file reads back the same.
  std::vector<std::pair<std::string, SafetensorsValue>> values;
  for (const SafetensorsEntry& e : file.entries) {
    if (e.dtype == "I64") {
      values.emplace_back(e.name, Int64Array{e.shape, to_int64(e)});
    } else {
      values.emplace_back(e.name, to_tensor(e, e.dtype == "F32" ? DType::F32 : DType::F64));
    }
  }
  std::vector<uint8_t> bytes;
  // The writer may refuse a name the reader accepts (an empty one): fine.
  if (!fuzz::refuse_or_run([&] { bytes = safetensors_bytes(values, file.metadata); })) return 0;
  const SafetensorsFile again = read_safetensors_bytes(bytes, "fuzz (written back)");
  FUZZ_EXPECT(again.metadata == file.metadata);
  FUZZ_EXPECT(again.entries.size() == file.entries.size());
  for (const SafetensorsEntry& e : file.entries) {
    const SafetensorsEntry* a = again.find(e.name);
    FUZZ_EXPECT(a != nullptr);
    FUZZ_EXPECT(a->dtype == e.dtype && a->shape == e.shape);
    FUZZ_EXPECT(std::equal(a->bytes.begin(), a->bytes.end(), e.bytes.begin(), e.bytes.end()));
  }
  return 0;
}
