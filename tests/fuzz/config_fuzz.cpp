// Fuzz target: the model config parser (models/config.hpp), fed JSON text:
// types, unknown keys, every rule of docs/MODEL-SPEC.md, absurd sizes that must not
// overflow. An accepted config must survive config_to_json → config_from_json
// unchanged (the documented round trip), give a parameter count equal to the
// sum over its parameter shapes (checked when it has few tensors), and give a
// finite, non-negative memory estimate (models/memory_estimate.hpp).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "attnlab/models/config.hpp"
#include "attnlab/models/memory_estimate.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ModelConfig c;
  if (!fuzz::refuse_or_run([&] { c = config_from_json(text, "fuzz"); })) return 0;

  const std::string json = config_to_json(c);
  FUZZ_EXPECT(config_from_json(json, "fuzz (written back)") == c);

  const int64_t count = c.parameter_count();  // validated: fits in int64
  FUZZ_EXPECT(count > 0);
  // Listing every tensor costs a string per tensor: only for small listings.
  const double tensors_per_layer =
      12.0 + 4.0 * static_cast<double>(c.n_experts) + 4.0 * static_cast<double>(c.n_shared_experts);
  if (static_cast<double>(c.n_layers) * tensors_per_layer < 20000) {
    int64_t sum = 0;
    for (const auto& [name, shape] : c.parameter_shapes()) sum += shape_numel(shape);
    FUZZ_EXPECT(sum == count);
  }

  for (int64_t batch : {int64_t{1}, int64_t{12}, int64_t{1} << 20}) {
    const MemoryEstimate m = estimate_training_memory(c, batch, c.max_seq_len, 0.1, 1 << 20);
    FUZZ_EXPECT(std::isfinite(m.total_bytes) && m.total_bytes > 0);
    const MemoryEstimate s = estimate_sampling_memory(c, batch, c.max_seq_len);
    FUZZ_EXPECT(std::isfinite(s.total_bytes) && s.total_bytes > 0);
  }
  return 0;
}
