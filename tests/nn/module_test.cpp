// Module: registration order and dotted names, lookup and replacement of
// parameters, train/eval, zero_grad, and seeded, reproducible initialisation.
#include "attnlab/nn/transformer_block.hpp"
#include "tests/nn/nn_test_util.hpp"

using namespace attnlab;
using namespace attnlab::testing;

namespace {

// A toy tree: own parameters, a child, and a child whose name has a dot.
class Toy : public Module {
 public:
  explicit Toy(Rng& rng)
      : scale_(register_parameter("scale", Tensor::ones({3}, DType::F64))),
        first_(3, 2, true, DType::F64, rng),
        second_(2, 3, false, DType::F64, rng) {
    register_module("first", first_);
    register_module("blocks.0", second_);
  }
  Variable forward(const Variable& x) const {
    return mul(second_.forward(first_.forward(x)), scale_);
  }
  void register_again() { register_parameter("scale", Tensor::ones({1})); }

 private:
  const Variable& scale_;
  Linear first_, second_;
};

}  // namespace

TEST_CASE("Module: dotted names in registration order, own parameters first") {
  Rng rng(1);
  Toy toy(rng);
  CHECK(names_and_shapes(toy) ==
        std::vector<std::pair<std::string, Shape>>{{"scale", {3}},
                                                   {"first.weight", {2, 3}},
                                                   {"first.bias", {2}},
                                                   {"blocks.0.weight", {3, 2}}});
  CHECK(toy.num_parameters() == 3 + 6 + 2 + 6);
  CHECK(toy.parameters().size() == 4);
  for (const auto& [name, p] : toy.named_parameters()) {
    CAPTURE(name);
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  CHECK(toy.parameter("blocks.0.weight").impl() == toy.named_parameters()[3].second.impl());
  CHECK_THROWS_WITH_AS(toy.parameter("blocks.1.weight"), "no parameter named 'blocks.1.weight'",
                       Error);
  CHECK_THROWS_AS(toy.parameter("first"), Error);
  CHECK_THROWS_AS(toy.register_again(), Error);
}

TEST_CASE("Module: set_parameter rebinds what forward reads") {
  Rng rng(2);
  Toy toy(rng);
  const Variable x(rand64({4, 3}, 3));
  const Tensor before = toy.forward(x).value().clone();
  const Variable doubled(attnlab::mul_scalar(toy.parameter("scale").value(), 2.0), true);
  toy.set_parameter("scale", doubled);
  CHECK(toy.parameter("scale").impl() == doubled.impl());
  CHECK(max_abs_diff(toy.forward(x).value(), mul_scalar(before, 2.0)) < 1e-12);
  // The gradient reaches the new Variable.
  sum(toy.forward(x)).backward();
  CHECK(doubled.grad().defined());
  CHECK_THROWS_AS(toy.set_parameter("scale", Variable(Tensor::ones({4}, DType::F64))), Error);
  CHECK_THROWS_AS(toy.set_parameter("scale", Variable(Tensor::ones({3}, DType::F32))), Error);
  CHECK_THROWS_AS(toy.set_parameter("nope", doubled), Error);
}

TEST_CASE("Module: train/eval reach every descendant; zero_grad clears every gradient") {
  Rng rng(3);
  TransformerBlockConfig c;
  c.d_model = 8;
  c.n_heads = 2;
  c.head_dim = 4;
  c.n_kv_heads = 2;
  c.ffn_hidden = 8;
  c.n_experts = 2;
  c.top_k = 2;
  c.dtype = DType::F64;
  TransformerBlock block(c, rng);
  CHECK(block.is_training());
  block.eval();
  CHECK_FALSE(block.is_training());
  CHECK_FALSE(block.mixture_of_experts()->expert(1).is_training());
  CHECK_FALSE(block.grouped_query_attention()->wq().is_training());
  block.train();
  CHECK(block.mixture_of_experts()->router().is_training());

  const TransformerBlockOutput out = block.forward(Variable(rand64({1, 3, 8}, 4)));
  add(sum(out.x), out.aux).backward();
  for (const auto& [name, p] : block.named_parameters()) CHECK(p.grad().defined());
  block.zero_grad();
  for (const auto& [name, p] : block.named_parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("Module: the same seed gives the same model; init as docs/MODEL-SPEC.md") {
  TransformerBlockConfig c;
  c.d_model = 64;
  c.n_heads = 4;
  c.head_dim = 16;
  c.n_kv_heads = 2;
  c.ffn = FeedForwardKind::ReLU;
  c.ffn_hidden = 128;
  c.out_std = 0.02 / std::sqrt(2.0 * 4);  // L = 4
  Rng a(42), b(42), other(43);
  const TransformerBlock one(c, a), two(c, b), three(c, other);
  const auto p1 = one.named_parameters(), p2 = two.named_parameters(),
             p3 = three.named_parameters();
  for (size_t i = 0; i < p1.size(); ++i) {
    CAPTURE(p1[i].first);
    CHECK(p1[i].second.dtype() == DType::F32);
    CHECK(max_abs_diff(p1[i].second.value(), p2[i].second.value()) == 0);
  }
  CHECK(max_abs_diff(p1[1].second.value(), p3[1].second.value()) > 0);

  auto stddev = [](const Variable& p) {
    const std::vector<double> v = p.value().to_vector();
    double s = 0;
    for (double e : v) s += e * e;
    return std::sqrt(s / static_cast<double>(v.size()));
  };
  auto all_equal = [](const Variable& p, double value) {
    for (double e : p.value().to_vector())
      if (e != value) return false;
    return true;
  };
  CHECK(all_equal(one.parameter("attn_norm.weight"), 1.0));
  CHECK(all_equal(one.parameter("ffn_norm.weight"), 1.0));
  CHECK(all_equal(one.parameter("ffn.w_up.bias"), 0.0));
  CHECK(all_equal(one.parameter("ffn.w_down.bias"), 0.0));
  CHECK(stddev(one.parameter("attn.wq.weight")) == doctest::Approx(0.02).epsilon(0.1));
  CHECK(stddev(one.parameter("ffn.w_up.weight")) == doctest::Approx(0.02).epsilon(0.1));
  CHECK(stddev(one.parameter("attn.wo.weight")) == doctest::Approx(c.out_std).epsilon(0.1));
  CHECK(stddev(one.parameter("ffn.w_down.weight")) == doctest::Approx(c.out_std).epsilon(0.1));
}

TEST_CASE("TransformerBlock: bad configs are refused") {
  Rng rng(5);
  TransformerBlockConfig c;
  c.d_model = 8;
  c.n_heads = 2;
  c.head_dim = 4;
  c.n_kv_heads = 2;
  c.ffn_hidden = 8;
  c.n_shared_experts = 1;  // without experts
  CHECK_THROWS_AS(TransformerBlock(c, rng), Error);
  c.n_shared_experts = 0;
  c.attention = AttentionKind::MLA;  // ranks missing
  CHECK_THROWS_AS(TransformerBlock(c, rng), Error);
}
