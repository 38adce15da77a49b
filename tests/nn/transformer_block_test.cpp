// The pre-norm transformer block in its four shapes (GQA or MLA attention,
// dense or MoE FFN): wiring against its own sub-layers, docs/MODEL-SPEC.md's
// parameter names, and f64 gradient checks of output and aux loss.
#include "attnlab/nn/transformer_block.hpp"
#include "attnlab/nn/attention_dropout.hpp"
#include "tests/nn/nn_test_util.hpp"

using namespace attnlab;
using namespace attnlab::testing;

namespace {

TransformerBlockConfig block_config(AttentionKind attention, int64_t n_experts,
                                    FeedForwardKind ffn = FeedForwardKind::SwiGLU) {
  TransformerBlockConfig c;
  c.d_model = 8;
  c.n_heads = 2;
  c.head_dim = 4;
  c.attention = attention;
  c.n_kv_heads = 1;
  c.rope_fraction = 0.5;
  c.rope_theta = 100.0;
  c.q_lora_rank = 6;
  c.kv_lora_rank = 4;
  c.rope_head_dim = 2;
  c.ffn = ffn;
  c.ffn_hidden = 6;
  c.n_experts = n_experts;
  c.top_k = 2;
  c.n_shared_experts = n_experts > 0 ? 1 : 0;
  c.dtype = DType::F64;
  c.init_std = 0.5;
  c.out_std = 0.5;
  return c;
}

using Names = std::vector<std::pair<std::string, Shape>>;

// Attention half, then FFN half, from the block's own sub-layers.
Tensor reference_block(const TransformerBlock& block, const Tensor& x) {
  NoGradGuard no_grad;
  const Variable xv(x);
  const Variable h = block.attn_norm().forward(xv);
  const Variable attn = block.grouped_query_attention()
                            ? block.grouped_query_attention()->forward(h)
                            : block.multi_latent_attention()->forward(h);
  const Tensor mid = attnlab::add(x, attn.value());
  const Variable g = block.ffn_norm().forward(Variable(mid));
  const Tensor ffn = block.feed_forward() ? block.feed_forward()->forward(g).value()
                                          : block.mixture_of_experts()->forward(g).y.value();
  return attnlab::add(mid, ffn);
}

}  // namespace

TEST_CASE("TransformerBlock: parameter names and shapes as docs/MODEL-SPEC.md, each kind") {
  Rng rng(1);
  const TransformerBlock gqa_dense(block_config(AttentionKind::GQA, 0), rng);
  CHECK(names_and_shapes(gqa_dense) == Names{{"attn_norm.weight", {8}},
                                             {"attn.wq.weight", {8, 8}},
                                             {"attn.wk.weight", {4, 8}},
                                             {"attn.wv.weight", {4, 8}},
                                             {"attn.wo.weight", {8, 8}},
                                             {"ffn_norm.weight", {8}},
                                             {"ffn.w_gate.weight", {6, 8}},
                                             {"ffn.w_up.weight", {6, 8}},
                                             {"ffn.w_down.weight", {8, 6}}});

  const TransformerBlock mla_relu(block_config(AttentionKind::MLA, 0, FeedForwardKind::ReLU), rng);
  CHECK(names_and_shapes(mla_relu) == Names{{"attn_norm.weight", {8}},
                                            {"attn.w_dq.weight", {6, 8}},
                                            {"attn.w_uq.weight", {8, 6}},
                                            {"attn.w_qr.weight", {4, 6}},
                                            {"attn.w_dkv.weight", {4, 8}},
                                            {"attn.w_uk.weight", {8, 4}},
                                            {"attn.w_uv.weight", {8, 4}},
                                            {"attn.w_kr.weight", {2, 8}},
                                            {"attn.wo.weight", {8, 8}},
                                            {"ffn_norm.weight", {8}},
                                            {"ffn.w_up.weight", {6, 8}},
                                            {"ffn.w_up.bias", {6}},
                                            {"ffn.w_down.weight", {8, 6}},
                                            {"ffn.w_down.bias", {8}}});

  const TransformerBlock gqa_moe(block_config(AttentionKind::GQA, 2), rng);
  CHECK(names_and_shapes(gqa_moe) == Names{{"attn_norm.weight", {8}},
                                           {"attn.wq.weight", {8, 8}},
                                           {"attn.wk.weight", {4, 8}},
                                           {"attn.wv.weight", {4, 8}},
                                           {"attn.wo.weight", {8, 8}},
                                           {"ffn_norm.weight", {8}},
                                           {"moe.router.weight", {2, 8}},
                                           {"moe.experts.0.w_gate.weight", {6, 8}},
                                           {"moe.experts.0.w_up.weight", {6, 8}},
                                           {"moe.experts.0.w_down.weight", {8, 6}},
                                           {"moe.experts.1.w_gate.weight", {6, 8}},
                                           {"moe.experts.1.w_up.weight", {6, 8}},
                                           {"moe.experts.1.w_down.weight", {8, 6}},
                                           {"moe.shared.0.w_gate.weight", {6, 8}},
                                           {"moe.shared.0.w_up.weight", {6, 8}},
                                           {"moe.shared.0.w_down.weight", {8, 6}}});

  const TransformerBlock mla_moe(block_config(AttentionKind::MLA, 3), rng);
  const auto names = names_and_shapes(mla_moe);
  CHECK(names.size() == 1 + 8 + 1 + 1 + 3 * 3 + 3);
  CHECK(names[1].first == "attn.w_dq.weight");
  CHECK(names[10].first == "moe.router.weight");
  CHECK(names.back() == std::pair<std::string, Shape>{"moe.shared.0.w_down.weight", {8, 6}});
}

TEST_CASE("TransformerBlock: x + Attn(norm(x)), then + FFN(norm(·)); gradcheck of x and aux") {
  for (AttentionKind attention : {AttentionKind::GQA, AttentionKind::MLA})
    for (int64_t n_experts : {0, 3}) {
      CAPTURE(attention == AttentionKind::GQA ? "gqa" : "mla");
      CAPTURE(n_experts);
      Rng rng(2);
      TransformerBlock block(block_config(attention, n_experts), rng);
      randomize_parameters(block, 3);
      const Tensor x = rand64({2, 3, 8}, 4);
      const TransformerBlockOutput out = block.forward(Variable(x));
      CHECK(out.x.shape() == x.shape());
      CHECK(max_abs_diff(out.x.value(), reference_block(block, x)) < 1e-12);
      CHECK(out.aux.dim() == 0);
      if (n_experts == 0) {
        CHECK(out.aux.item() == 0.0);
        CHECK_FALSE(out.aux.requires_grad());
      } else {
        CHECK(out.aux.requires_grad());
      }
      CHECK_LAYER_GRADCHECK(block, {x}, [&](const Vars& v) {
        const TransformerBlockOutput o = block.forward(v[0]);
        return concat({reshape(o.x, {-1}), reshape(o.aux, {1})}, 0);
      });
    }
}

TEST_CASE("TransformerBlock: dropout acts in training only, and needs its generator") {
  for (AttentionKind attention : {AttentionKind::GQA, AttentionKind::MLA}) {
    TransformerBlockConfig c = block_config(attention, 0);
    c.dropout = 0.3;
    Rng init(5);
    TransformerBlock missing_rng(c, init);
    const Variable x(rand64({2, 3, 8}, 6));
    CHECK_THROWS_WITH_AS(missing_rng.forward(x), doctest::Contains("needs a dropout_rng"), Error);
    Rng drops(7);
    c.dropout_rng = &drops;
    Rng init2(5);
    TransformerBlock block(c, init2);
    const Tensor a = block.forward(x).x.value(), b = block.forward(x).x.value();
    CHECK(max_abs_diff(a, b) > 1e-6);  // fresh masks each call
    block.eval();
    missing_rng.eval();
    const Tensor e1 = block.forward(x).x.value(), e2 = missing_rng.forward(x).x.value();
    CHECK(max_abs_diff(e1, e2) == 0.0);  // evaluation: no dropout, same weights
  }
}

TEST_CASE("attention with dropout 0 equals the fused attention; gradcheck with dropout") {
  for (int64_t kv_heads : {4, 2, 1}) {
    CAPTURE(kv_heads);
    const Tensor q = rand64({2, 5, 4, 3}, 1), k = rand64({2, 5, kv_heads, 3}, 2),
                 v = rand64({2, 5, kv_heads, 2}, 3);
    Rng rng(1);
    const Tensor plain =
        causal_attention_with_dropout(Variable(q), Variable(k), Variable(v), 0.7, 0.0, rng).value();
    const Tensor fused = causal_attention(Variable(q), Variable(k), Variable(v), 0.7).value();
    CHECK(max_abs_diff(plain, fused) < 1e-12);
    CHECK_GRADCHECK(
        [](const Vars& in) {
          Rng fixed(3);  // the same masks on every evaluation
          return causal_attention_with_dropout(in[0], in[1], in[2], 0.7, 0.25, fixed);
        },
        {q, k, v});
  }
}
