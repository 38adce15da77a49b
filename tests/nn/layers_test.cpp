// Linear, Embedding, RMSNorm, RoPE's rotary width, and the two feed-forward
// kinds: values against docs/MODEL-SPEC.md's formulas, and f64 gradient checks
// with respect to inputs and parameters.
#include "attnlab/nn/embedding.hpp"
#include "attnlab/nn/feed_forward.hpp"
#include "attnlab/nn/linear.hpp"
#include "attnlab/nn/rms_norm.hpp"
#include "attnlab/nn/rotary_embedding.hpp"
#include "tests/nn/nn_test_util.hpp"

using namespace attnlab;
using namespace attnlab::testing;

namespace {

TransformerBlockConfig ffn_config(FeedForwardKind kind) {
  TransformerBlockConfig c;
  c.ffn = kind;
  c.d_model = 8;
  c.ffn_hidden = 12;
  c.dtype = DType::F64;
  c.init_std = 0.5;
  c.out_std = 0.5;
  return c;
}

}  // namespace

TEST_CASE("Linear: weight [out, in], optional bias, y = x·Wᵀ + b") {
  Rng rng(1);
  Linear plain(8, 5, false, DType::F64, rng, 0.5);
  Linear biased(8, 5, true, DType::F64, rng, 0.5);
  CHECK(names_and_shapes(plain) == std::vector<std::pair<std::string, Shape>>{{"weight", {5, 8}}});
  CHECK(names_and_shapes(biased) ==
        std::vector<std::pair<std::string, Shape>>{{"weight", {5, 8}}, {"bias", {5}}});
  CHECK(biased.bias().value().to_vector() == std::vector<double>(5, 0.0));  // biases start at 0
  CHECK_FALSE(plain.has_bias());
  CHECK_THROWS_AS(plain.bias(), Error);

  randomize_parameters(biased);
  const Tensor x = rand64({2, 3, 8}, 2);
  const Tensor want = attnlab::add(ref_linear(x, biased.weight().value()), biased.bias().value());
  CHECK(max_abs_diff(biased.forward(Variable(x)).value(), want) < 1e-12);

  CHECK_LAYER_GRADCHECK(plain, {x}, [&](const Vars& v) { return plain.forward(v[0]); });
  CHECK_LAYER_GRADCHECK(biased, {x}, [&](const Vars& v) { return biased.forward(v[0]); });
  // A 2-d input too.
  CHECK_LAYER_GRADCHECK(biased, {rand64({4, 8}, 3)},
                        [&](const Vars& v) { return biased.forward(v[0]); });
}

TEST_CASE("Embedding: rows of the table; a repeated id gets both gradients") {
  Rng rng(2);
  Embedding emb(6, 8, DType::F64, rng, 0.5);
  CHECK(names_and_shapes(emb) == std::vector<std::pair<std::string, Shape>>{{"weight", {6, 8}}});
  const std::vector<int32_t> ids = {3, 0, 3, 5, 1, 3};  // (2, 3), id 3 three times, 2 and 4 unused
  const Variable y = emb.forward(ids, {2, 3});
  CHECK(y.shape() == Shape{2, 3, 8});
  for (int64_t i = 0; i < 6; ++i)
    CHECK(max_abs_diff(y.value().reshape({6, 8}).select(0, i),
                       emb.weight().value().select(0, ids[i])) == 0);
  CHECK_LAYER_GRADCHECK(emb, {}, [&](const Vars&) { return emb.forward(ids, {2, 3}); });
}

TEST_CASE("RMSNorm: x / sqrt(mean(x²) + eps) · g") {
  RMSNorm norm(8, 1e-6, DType::F64);
  CHECK(names_and_shapes(norm) == std::vector<std::pair<std::string, Shape>>{{"weight", {8}}});
  CHECK(norm.weight().value().to_vector() == std::vector<double>(8, 1.0));  // gains start at 1
  randomize_parameters(norm);
  const Tensor x = rand64({2, 3, 8}, 4);
  const Variable y = norm.forward(Variable(x));
  const std::vector<double> xv = x.to_vector(), yv = y.value().to_vector(),
                            g = norm.weight().value().to_vector();
  double worst = 0;
  for (int64_t row = 0; row < 6; ++row) {
    double ms = 0;
    for (int64_t c = 0; c < 8; ++c) ms += xv[row * 8 + c] * xv[row * 8 + c] / 8;
    for (int64_t c = 0; c < 8; ++c)
      worst = std::max(worst,
                       std::abs(yv[row * 8 + c] - xv[row * 8 + c] / std::sqrt(ms + 1e-6) * g[c]));
  }
  CHECK(worst < 1e-12);
  CHECK_LAYER_GRADCHECK(norm, {x}, [&](const Vars& v) { return norm.forward(v[0]); });
}

TEST_CASE("RotaryEmbedding: r = 2·floor(fraction·dh/2); r = 0 is the identity") {
  CHECK(RotaryEmbedding::rotary_dims_for(8, 1.0) == 8);
  CHECK(RotaryEmbedding::rotary_dims_for(8, 0.5) == 4);
  CHECK(RotaryEmbedding::rotary_dims_for(8, 0.3) == 2);  // 2.4 / 2 → 1 pair
  CHECK(RotaryEmbedding::rotary_dims_for(6, 0.5) == 2);  // 1.5 → 1 pair
  CHECK(RotaryEmbedding::rotary_dims_for(4, 0.0) == 0);
  CHECK(RotaryEmbedding::rotary_dims_for(5, 1.0) == 4);  // an odd head keeps its last channel
  CHECK_THROWS_AS(RotaryEmbedding::rotary_dims_for(8, 1.5), Error);
  CHECK_THROWS_AS(RotaryEmbedding(3, 10000.0), Error);

  const Variable x(rand64({2, 3, 2, 6}, 5));
  CHECK(RotaryEmbedding(0, 10000.0).apply(x).impl() == x.impl());
  const RotaryEmbedding rope(4, 100.0);
  CHECK(max_abs_diff(rope.apply(x, 7).value(), ref_rope(x.value(), 4, 100.0, 7)) < 1e-12);
}

TEST_CASE("FeedForward SwiGLU: w_down(silu(x·w_gateᵀ) ⊙ x·w_upᵀ), no biases") {
  Rng rng(3);
  FeedForward ffn(ffn_config(FeedForwardKind::SwiGLU), rng);
  CHECK(names_and_shapes(ffn) ==
        std::vector<std::pair<std::string, Shape>>{
            {"w_gate.weight", {12, 8}}, {"w_up.weight", {12, 8}}, {"w_down.weight", {8, 12}}});
  const Tensor x = rand64({2, 3, 8}, 6);
  const Tensor gate = ref_linear(x, ffn.parameter("w_gate.weight").value());
  const Tensor silu_gate = attnlab::mul(gate, attnlab::unary(UnaryOp::Sigmoid, gate));
  const Tensor want =
      ref_linear(attnlab::mul(silu_gate, ref_linear(x, ffn.parameter("w_up.weight").value())),
                 ffn.parameter("w_down.weight").value());
  CHECK(max_abs_diff(ffn.forward(Variable(x)).value(), want) < 1e-12);
  CHECK_LAYER_GRADCHECK(ffn, {x}, [&](const Vars& v) { return ffn.forward(v[0]); });
}

TEST_CASE("FeedForward ReLU: w_down(relu(x·w_upᵀ + b_up)) + b_down") {
  Rng rng(4);
  FeedForward ffn(ffn_config(FeedForwardKind::ReLU), rng);
  CHECK(names_and_shapes(ffn) ==
        std::vector<std::pair<std::string, Shape>>{{"w_up.weight", {12, 8}},
                                                   {"w_up.bias", {12}},
                                                   {"w_down.weight", {8, 12}},
                                                   {"w_down.bias", {8}}});
  randomize_parameters(ffn);
  const Tensor x = rand64({2, 3, 8}, 7);
  const Tensor hidden = attnlab::add(ref_linear(x, ffn.parameter("w_up.weight").value()),
                                     ffn.parameter("w_up.bias").value());
  const Tensor want = attnlab::add(
      ref_linear(attnlab::unary(UnaryOp::Relu, hidden), ffn.parameter("w_down.weight").value()),
      ffn.parameter("w_down.bias").value());
  CHECK(max_abs_diff(ffn.forward(Variable(x)).value(), want) < 1e-12);
  // (Random f64 pre-activations are never within ε of relu's kink.)
  CHECK_LAYER_GRADCHECK(ffn, {x}, [&](const Vars& v) { return ffn.forward(v[0]); });
}
