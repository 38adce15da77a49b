// Fuzz target: the batch file of `attnlab inspect` (models/batch_file.hpp),
// fed whole safetensors files: beyond the safetensors reader itself, the
// inputs/targets tensors (dtype, rank, empty or mismatched shapes, token ids
// outside a vocabulary of 65). An accepted batch holds B·T ids of each, all
// in the vocabulary.
#include <cstddef>
#include <cstdint>

#include "attnlab/models/batch_file.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kVocab = 65;
  TokenBatch batch;
  if (!fuzz::refuse_or_run([&] { batch = read_batch_bytes({data, size}, "fuzz", kVocab); }))
    return 0;
  FUZZ_EXPECT(batch.b > 0 && batch.t > 0);
  FUZZ_EXPECT(batch.inputs.size() == static_cast<size_t>(batch.b * batch.t));
  FUZZ_EXPECT(batch.targets.size() == batch.inputs.size());
  for (size_t i = 0; i < batch.inputs.size(); ++i) {
    FUZZ_EXPECT(batch.inputs[i] >= 0 && batch.inputs[i] < kVocab);
    FUZZ_EXPECT(batch.targets[i] >= 0 && batch.targets[i] < kVocab);
  }
  return 0;
}
