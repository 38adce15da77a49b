// Grouped-query attention (as MHA, GQA and MQA, with full, partial and no
// RoPE) and multi-latent attention: values against loop references built
// from docs/MODEL-SPEC.md, and f64 gradient checks w.r.t. the input and every weight.
#include "attnlab/nn/grouped_query_attention.hpp"
#include "attnlab/nn/multi_latent_attention.hpp"
#include "tests/nn/nn_test_util.hpp"

using namespace attnlab;
using namespace attnlab::testing;

namespace {

// docs/MODEL-SPEC.md's mha/gqa/mqa attention, from the layer's weights.
Tensor reference_gqa(const GroupedQueryAttention& attn, const Tensor& x) {
  const auto& c = attn.config();
  const int64_t B = x.size(0), T = x.size(1), H = c.n_heads, Hkv = c.n_kv_heads, dh = c.head_dim;
  const int64_t r = 2 * static_cast<int64_t>(std::floor(c.rope_fraction * dh / 2.0));
  const Tensor q =
      ref_rope(ref_linear(x, attn.wq().weight().value()).reshape({B, T, H, dh}), r, c.rope_theta);
  const Tensor k =
      ref_rope(ref_linear(x, attn.wk().weight().value()).reshape({B, T, Hkv, dh}), r, c.rope_theta);
  const Tensor v = ref_linear(x, attn.wv().weight().value()).reshape({B, T, Hkv, dh});
  const Tensor o = ref_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(dh)));
  return ref_linear(o.reshape({B, T, H * dh}), attn.wo().weight().value());
}

// docs/MODEL-SPEC.md's MLA, from the layer's weights: k_r copied into every head by hand.
Tensor reference_mla(const MultiLatentAttention& attn, const Tensor& x) {
  const auto& c = attn.config();
  const int64_t B = x.size(0), T = x.size(1), H = c.n_heads, dh = c.head_dim, dr = c.rope_head_dim;
  const Tensor c_q = ref_linear(x, attn.w_dq().weight().value());
  const Tensor q_c = ref_linear(c_q, attn.w_uq().weight().value()).reshape({B, T, H, dh});
  const Tensor q_r = ref_rope(ref_linear(c_q, attn.w_qr().weight().value()).reshape({B, T, H, dr}),
                              dr, c.rope_theta);
  const Tensor c_kv = ref_linear(x, attn.w_dkv().weight().value());
  const Tensor k_c = ref_linear(c_kv, attn.w_uk().weight().value()).reshape({B, T, H, dh});
  const Tensor v = ref_linear(c_kv, attn.w_uv().weight().value()).reshape({B, T, H, dh});
  const Tensor k_r = ref_rope(ref_linear(x, attn.w_kr().weight().value()).reshape({B, T, 1, dr}),
                              dr, c.rope_theta);
  Tensor q = Tensor::zeros({B, T, H, dh + dr}, DType::F64), k = q.clone();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        q.select(0, b).select(0, t).select(0, h).narrow(0, 0, dh).copy_(
            q_c.select(0, b).select(0, t).select(0, h));
        q.select(0, b).select(0, t).select(0, h).narrow(0, dh, dr).copy_(
            q_r.select(0, b).select(0, t).select(0, h));
        k.select(0, b).select(0, t).select(0, h).narrow(0, 0, dh).copy_(
            k_c.select(0, b).select(0, t).select(0, h));
        k.select(0, b).select(0, t).select(0, h).narrow(0, dh, dr).copy_(
            k_r.select(0, b).select(0, t).select(0, 0));
      }
  const Tensor o = ref_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(dh + dr)));
  return ref_linear(o.reshape({B, T, H * dh}), attn.wo().weight().value());
}

TransformerBlockConfig gqa_config(int64_t n_kv_heads, double rope_fraction) {
  TransformerBlockConfig c;
  c.d_model = 8;
  c.n_heads = 4;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = 4;
  c.rope_fraction = rope_fraction;
  c.rope_theta = 100.0;  // a small base turns the pairs noticeably at T ≤ 5
  c.dtype = DType::F64;
  c.init_std = 0.5;
  c.out_std = 0.5;
  return c;
}

TransformerBlockConfig mla_config() {
  TransformerBlockConfig c;
  c.d_model = 8;
  c.n_heads = 2;
  c.head_dim = 4;
  c.q_lora_rank = 6;
  c.kv_lora_rank = 5;
  c.rope_head_dim = 4;
  c.rope_theta = 100.0;
  c.dtype = DType::F64;
  c.init_std = 0.5;
  c.out_std = 0.5;
  return c;
}

}  // namespace

TEST_CASE("GroupedQueryAttention: MHA, GQA, MQA × full, partial, no RoPE × T = 1, 5") {
  for (int64_t n_kv : {4, 2, 1})
    for (double fraction : {1.0, 0.5, 0.0})
      for (int64_t T : {1, 5}) {
        CAPTURE(n_kv);
        CAPTURE(fraction);
        CAPTURE(T);
        Rng rng(10 + n_kv);
        GroupedQueryAttention attn(gqa_config(n_kv, fraction), rng);
        CHECK(attn.rotary().rotary_dims() == (fraction == 1.0 ? 4 : fraction == 0.5 ? 2 : 0));
        CHECK(names_and_shapes(attn) ==
              std::vector<std::pair<std::string, Shape>>{{"wq.weight", {16, 8}},
                                                         {"wk.weight", {n_kv * 4, 8}},
                                                         {"wv.weight", {n_kv * 4, 8}},
                                                         {"wo.weight", {8, 16}}});
        const Tensor x = rand64({2, T, 8}, 20 + T);
        const Variable y = attn.forward(Variable(x));
        CHECK(y.shape() == Shape{2, T, 8});
        CHECK(max_abs_diff(y.value(), reference_gqa(attn, x)) < 1e-10);
        CHECK_LAYER_GRADCHECK(attn, {x}, [&](const Vars& v) { return attn.forward(v[0]); });
      }
}

TEST_CASE("GroupedQueryAttention: causal — a later token does not change earlier outputs") {
  Rng rng(5);
  GroupedQueryAttention attn(gqa_config(2, 1.0), rng);
  Tensor x = rand64({1, 4, 8}, 9);
  const Tensor before = attn.forward(Variable(x)).value().clone();
  x.select(1, 3).fill_(7.0);
  const Tensor after = attn.forward(Variable(x)).value();
  CHECK(max_abs_diff(before.narrow(1, 0, 3), after.narrow(1, 0, 3)) == 0);
  CHECK(max_abs_diff(before.narrow(1, 3, 1), after.narrow(1, 3, 1)) > 1e-3);
}

TEST_CASE("GroupedQueryAttention: project() with an offset rotates as later positions") {
  Rng rng(6);
  GroupedQueryAttention attn(gqa_config(2, 1.0), rng);
  const Tensor x = rand64({1, 3, 8}, 10);
  const auto qkv = attn.project(Variable(x), 4);
  const Tensor q = ref_linear(x, attn.wq().weight().value()).reshape({1, 3, 4, 4});
  CHECK(max_abs_diff(qkv.q.value(), ref_rope(q, 4, 100.0, 4)) < 1e-12);
  CHECK(qkv.k.shape() == Shape{1, 3, 2, 4});
  CHECK(qkv.v.shape() == Shape{1, 3, 2, 4});
}

TEST_CASE("GroupedQueryAttention: bad configs are refused by name") {
  Rng rng(7);
  CHECK_THROWS_WITH_AS(GroupedQueryAttention(gqa_config(3, 1.0), rng),
                       "n_kv_heads (3) must divide n_heads (4)", Error);
  CHECK_THROWS_AS(GroupedQueryAttention(gqa_config(2, 1.5), rng), Error);
}

TEST_CASE("MultiLatentAttention: decoupled RoPE, k_r shared by all heads, T = 1 and 5") {
  for (int64_t T : {1, 5}) {
    CAPTURE(T);
    Rng rng(8);
    MultiLatentAttention attn(mla_config(), rng);
    CHECK(names_and_shapes(attn) ==
          std::vector<std::pair<std::string, Shape>>{{"w_dq.weight", {6, 8}},
                                                     {"w_uq.weight", {8, 6}},
                                                     {"w_qr.weight", {8, 6}},
                                                     {"w_dkv.weight", {5, 8}},
                                                     {"w_uk.weight", {8, 5}},
                                                     {"w_uv.weight", {8, 5}},
                                                     {"w_kr.weight", {4, 8}},
                                                     {"wo.weight", {8, 8}}});
    CHECK(attn.scale() == doctest::Approx(1.0 / std::sqrt(8.0)));
    const Tensor x = rand64({2, T, 8}, 30 + T);
    const Variable y = attn.forward(Variable(x));
    CHECK(y.shape() == Shape{2, T, 8});
    CHECK(max_abs_diff(y.value(), reference_mla(attn, x)) < 1e-10);
    // The latents a decoder would cache.
    const auto latents = attn.project(Variable(x), 0);
    CHECK(latents.q.shape() == Shape{2, T, 2, 8});
    CHECK(latents.c_kv.shape() == Shape{2, T, 5});
    CHECK(latents.k_r.shape() == Shape{2, T, 1, 4});
    CHECK_LAYER_GRADCHECK(attn, {x}, [&](const Vars& v) { return attn.forward(v[0]); });
  }
}

TEST_CASE("MultiLatentAttention: more heads, a wider RoPE part") {
  TransformerBlockConfig c = mla_config();
  c.n_heads = 3;
  c.head_dim = 2;
  c.rope_head_dim = 6;
  Rng rng(9);
  MultiLatentAttention attn(c, rng);
  const Tensor x = rand64({2, 3, 8}, 40);
  CHECK(max_abs_diff(attn.forward(Variable(x)).value(), reference_mla(attn, x)) < 1e-10);
  CHECK_LAYER_GRADCHECK(attn, {x}, [&](const Vars& v) { return attn.forward(v[0]); });
  c.rope_head_dim = 3;
  CHECK_THROWS_AS(MultiLatentAttention(c, rng), Error);
}
