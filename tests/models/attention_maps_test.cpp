// Attention maps: through the KV-cached decoder (either checkpoint form; for
// mla the absorbed form) they equal those of the training form, every
// variant; rows are probability distributions over the keys a query sees;
// a MoE's experts agree too.
#include <doctest/doctest.h>

#include <cmath>

#include "attnlab/models/attention_maps.hpp"
#include "tests/models/decoder_test_util.hpp"

using namespace attnlab;
using namespace attnlab::test;

TEST_CASE("attention maps: decoder (absorbed for mla) equals the training form, every variant") {
  for (const Variant& v : {Variant{.attention = "mha"}, Variant{.attention = "gqa"},
                           Variant{.attention = "mqa", .rope_fraction = 0.5},
                           Variant{.attention = "mla"}, Variant{.attention = "mla", .moe = true},
                           Variant{.attention = "gqa", .moe = true, .top_k = 1}}) {
    CAPTURE(v.name());
    const ModelConfig config = small_config(v);
    const auto model = random_model(config, DType::F64, 5);
    const std::vector<int32_t> ids = random_ids(9, config.vocab_size, 6);
    const AttentionMaps train = training_attention_maps(*model, ids);
    const AttentionMaps dec =
        decoder_attention_maps(absorb_weights(*model, DType::F64), ids, DType::F64);
    REQUIRE(dec.tokens == 9);
    REQUIRE(dec.probabilities.size() == static_cast<size_t>(config.n_layers));
    double worst = 0, peak = 0;
    for (int64_t l = 0; l < config.n_layers; ++l)
      for (int64_t h = 0; h < config.n_heads; ++h) {
        const std::vector<double>& p = dec.probabilities[l][h];
        for (int64_t t = 0; t < 9; ++t) {
          double sum = 0;
          for (int64_t j = 0; j < 9; ++j) {
            const double x = p[t * 9 + j];
            if (j > t) CHECK(x == 0.0);  // causal: a query never sees a later key
            sum += x;
            peak = std::max(peak, t > 0 ? x : 0.0);
            worst = std::max(worst, std::abs(x - train.probabilities[l][h][t * 9 + j]));
          }
          CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));
        }
      }
    CHECK(worst < 1e-12);
    CHECK(peak > 0.3);  // not uniform: a wrong map could not hide
    CHECK(dec.experts == train.experts);
    CHECK(dec.experts.empty() == !v.moe);
    if (v.moe) CHECK(dec.experts[0].size() == static_cast<size_t>(9 * v.top_k));
  }
}

TEST_CASE("attention maps: refused for an empty or too long sequence") {
  const ModelConfig config = small_config(Variant{});
  const auto model = random_model(config, DType::F64, 5);
  CHECK(contains(error_of([&] { training_attention_maps(*model, {}); }), "1 … max_seq_len 12"));
  const std::vector<int32_t> long_ids = random_ids(13, config.vocab_size, 6);
  CHECK(contains(
      error_of([&] { decoder_attention_maps(absorb_weights(*model, DType::F32), long_ids); }),
      "got 13"));
}
