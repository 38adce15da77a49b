// Memory estimates (models/memory_estimate.hpp): the parts add up as the
// header says, grow with what they depend on, stay finite for absurd configs,
// and a run that does not fit is refused with both numbers.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "attnlab/models/config.hpp"
#include "attnlab/models/memory_estimate.hpp"
#include "attnlab/tensor/error.hpp"

using namespace attnlab;

namespace {

ModelConfig tiny(const std::string& extra = "") {
  return config_from_json(
      R"({"vocab_size": 65, "d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 64)" +
      extra + "}");
}

std::string error_of(const MemoryEstimate& m, double available) {
  try {
    check_memory_fits(m, "this run", "use less", AvailableMemory{available, "the test"});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the training estimate: 4 copies of the weights and more, and it grows with B and T") {
  const ModelConfig c = tiny();
  const double P = static_cast<double>(c.parameter_count());
  const MemoryEstimate m = estimate_training_memory(c, 12, 64, 0.0, 1000);
  CHECK(m.weights_bytes == 4 * P);
  CHECK(m.gradients_bytes == 12 * P);
  CHECK(m.optimizer_bytes == 8 * P);
  CHECK(m.data_bytes == 5 * 1000 + 8 * 100 * 12 * 64);
  CHECK(m.total_bytes == doctest::Approx(m.weights_bytes + m.gradients_bytes + m.optimizer_bytes +
                                         m.activations_bytes + m.data_bytes + m.overhead_bytes));
  CHECK(m.total_bytes > 32.0 * 1024 * 1024);  // at least the fixed overhead
  CHECK(estimate_training_memory(c, 24, 64, 0.0, 1000).activations_bytes >
        1.9 * m.activations_bytes);
  CHECK(estimate_training_memory(c, 12, 32, 0.0, 1000).activations_bytes <
        0.6 * m.activations_bytes);
  // Dropout materialises the T×T attention scores.
  CHECK(estimate_training_memory(c, 12, 64, 0.1, 1000).activations_bytes > m.activations_bytes);
  // Experts cost memory per routed token.
  const ModelConfig moe = tiny(R"(, "n_experts": 4, "top_k": 2, "n_shared_experts": 1)");
  CHECK(estimate_training_memory(moe, 12, 64, 0.0, 1000).activations_bytes > m.activations_bytes);
  const ModelConfig mla =
      tiny(R"(, "attention": "mla", "q_lora_rank": 32, "kv_lora_rank": 16, "rope_head_dim": 8)");
  CHECK(estimate_training_memory(mla, 12, 64, 0.0, 1000).total_bytes > 0);
}

TEST_CASE("the sampling estimate counts the KV cache of every sequence") {
  const ModelConfig c = tiny();
  const MemoryEstimate one = estimate_sampling_memory(c, 1, 64);
  const MemoryEstimate four = estimate_sampling_memory(c, 4, 64);
  CHECK(one.cache_bytes == 4.0 * 64 * static_cast<double>(c.kv_cache_floats_per_token()));
  CHECK(four.cache_bytes == 4 * one.cache_bytes);
  CHECK(one.weights_bytes == 4.0 * static_cast<double>(c.parameter_count()));
  CHECK(estimate_sampling_memory(c, 1, 64, /*weights_loaded=*/true).weights_bytes == 0);
  // A bf16 cache: half the cache's bytes, nothing else changes.
  const MemoryEstimate bf16 = estimate_sampling_memory(c, 4, 64, false, KvCacheFormat::BF16);
  CHECK(bf16.cache_bytes == four.cache_bytes / 2);
  CHECK(bf16.activations_bytes == four.activations_bytes);
  CHECK(bf16.weights_bytes == four.weights_bytes);
  // A long context costs cache, not prefill activations (chunks of 4096 rows).
  const MemoryEstimate longer = estimate_sampling_memory(c, 1, 64 * 1024);
  CHECK(longer.cache_bytes == 1024 * one.cache_bytes);
  CHECK(longer.activations_bytes == estimate_sampling_memory(c, 1, 4096).activations_bytes);
  CHECK(sampling_load_bytes(c, true) == 40.0 * static_cast<double>(c.parameter_count()));
}

TEST_CASE("absurd configs give finite estimates, not overflows") {
  const ModelConfig c = config_from_json(
      R"({"vocab_size": 1000000, "d_model": 100000, "n_layers": 10000, "n_heads": 100})");
  const MemoryEstimate m = estimate_training_memory(c, 1 << 20, 1 << 20, 0.5, 1 << 30);
  CHECK(std::isfinite(m.total_bytes));
  CHECK(m.total_bytes > 1e18);
  CHECK(format_bytes(m.total_bytes).find("EiB") != std::string::npos);
}

TEST_CASE("a run that does not fit is refused with the estimate and what is available") {
  const MemoryEstimate m = estimate_training_memory(tiny(), 12, 64, 0.0, 0);
  CHECK(error_of(m, m.total_bytes + 1) == "");
  const std::string e = error_of(m, 1024.0 * 1024);
  CHECK(e.rfind("this run needs about ", 0) == 0);
  CHECK(e.find("of memory (weights ") != std::string::npos);
  CHECK(e.find("but only 1.0 MiB is available (the test): use less") != std::string::npos);
  // Nothing known about the machine: nothing refused.
  CHECK_NOTHROW(check_memory_fits(m, "this run", "", std::nullopt));
}

TEST_CASE("format_bytes and available_memory") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(3.0 * 1024 * 1024 * 1024) == "3.0 GiB");
  // On Linux, /proc/meminfo is there.
  const auto available = available_memory();
  REQUIRE(available.has_value());
  CHECK(available->bytes > 0);
  CHECK(!available->source.empty());
}
