// Mixture of experts: routing (top-k, ties to the lower index), gates, the
// output against a dense reference, experts no token chose, the
// load-balancing loss by hand, and f64 gradient checks of output and loss.
#include "attnlab/nn/mixture_of_experts.hpp"
#include "tests/nn/nn_test_util.hpp"

using namespace attnlab;
using namespace attnlab::testing;

namespace {

TransformerBlockConfig moe_config(int64_t n_experts, int64_t top_k, int64_t n_shared = 0,
                                  FeedForwardKind kind = FeedForwardKind::SwiGLU) {
  TransformerBlockConfig c;
  c.ffn = kind;
  c.d_model = 8;
  c.ffn_hidden = 6;
  c.n_experts = n_experts;
  c.top_k = top_k;
  c.n_shared_experts = n_shared;
  c.dtype = DType::F64;
  c.init_std = 0.5;
  c.out_std = 0.5;
  return c;
}

// docs/MODEL-SPEC.md's MoE computed densely: every expert runs on every token, and
// each token sums the outputs of its chosen experts by their gates.
Tensor reference_moe(const MixtureOfExperts& moe, const Tensor& x) {
  NoGradGuard no_grad;
  const auto& c = moe.config();
  const int64_t D = c.d_model, N = x.numel() / D, E = c.n_experts, k = c.top_k;
  const Tensor tokens = x.reshape({N, D});
  const Tensor logits = ref_linear(tokens, moe.router().weight().value());
  const std::vector<double> lv = logits.to_vector();
  std::vector<Tensor> outputs;
  for (int64_t e = 0; e < E; ++e)
    outputs.push_back(moe.expert(e).forward(Variable(tokens)).value());
  Tensor y = Tensor::zeros({N, D}, DType::F64);
  for (int64_t n = 0; n < N; ++n) {
    // Top-k by sorting (index, logit) pairs: higher logit first, then lower index.
    std::vector<int64_t> order(E);
    for (int64_t e = 0; e < E; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return lv[n * E + a] > lv[n * E + b]; });
    double z_all = 0, z_chosen = 0;
    for (int64_t e = 0; e < E; ++e) z_all += std::exp(lv[n * E + e]);
    for (int64_t j = 0; j < k; ++j) z_chosen += std::exp(lv[n * E + order[j]]);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = order[j];
      const double gate = std::exp(lv[n * E + e]) / (k == 1 ? z_all : z_chosen);
      Tensor row = y.select(0, n);
      row.copy_(attnlab::add(row, mul_scalar(outputs[e].select(0, n), gate)));
    }
  }
  for (int64_t s = 0; s < c.n_shared_experts; ++s)
    y = attnlab::add(y, moe.shared_expert(s).forward(Variable(tokens)).value());
  return y.reshape(x.shape());
}

// Output and aux loss in one vector, so one gradcheck covers both.
Variable output_and_aux(const MixtureOfExperts& moe, const Variable& x) {
  const MixtureOfExpertsOutput out = moe.forward(x);
  return concat({reshape(out.y, {-1}), reshape(out.aux, {1})}, 0);
}

}  // namespace

TEST_CASE("MoE routing: top-k by logit, ties to the lower index, best first") {
  const Tensor logits = Tensor::from_data({3, 4}, {1, 3, 3, 0, 2, 2, 2, 2, 0, 1, 5, 5}, DType::F64);
  using Ids = std::vector<int32_t>;
  CHECK(MixtureOfExperts::route(logits, 1).chosen == Ids{1, 0, 2});
  CHECK(MixtureOfExperts::route(logits, 2).chosen == Ids{1, 2, 0, 1, 2, 3});
  CHECK(MixtureOfExperts::route(logits, 4).chosen == Ids{1, 2, 0, 3, 0, 1, 2, 3, 2, 3, 1, 0});
  CHECK(MixtureOfExperts::route(logits.to(DType::F32), 2).chosen == Ids{1, 2, 0, 1, 2, 3});
  CHECK_THROWS_AS(MixtureOfExperts::route(logits, 5), Error);
}

TEST_CASE("MoE routing: with all logits tied every token goes to the lowest experts") {
  Rng rng(1);
  MixtureOfExperts moe(moe_config(3, 2), rng);
  moe.parameter("router.weight").mutable_value().fill_(0.0);
  const Tensor x = rand64({2, 3, 8}, 2);
  const MixtureOfExpertsOutput out = moe.forward(Variable(x));
  CHECK(out.tokens_per_expert == std::vector<int64_t>{6, 6, 0});
  // Uniform router probabilities: aux = E · Σ f_e · (1/E) = 1 whatever f is.
  CHECK(out.aux.item() == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(max_abs_diff(out.y.value(), reference_moe(moe, x)) < 1e-12);
}

TEST_CASE("MoE routing: two equal best logits send every token to the lower expert") {
  Rng rng(2);
  MixtureOfExperts moe(moe_config(3, 1), rng);
  // Router rows e₀, 2e₀, 2e₀ and tokens with x₀ = 1: logits (a, 2a, 2a), a > 0.
  Tensor router = moe.parameter("router.weight").mutable_value();
  router.fill_(0.0);
  router.select(0, 0).select(0, 0).fill_(1.0);
  router.select(0, 1).select(0, 0).fill_(2.0);
  router.select(0, 2).select(0, 0).fill_(2.0);
  Tensor x = rand64({2, 3, 8}, 3);
  x.select(2, 0).fill_(1.0);
  const MixtureOfExpertsOutput out = moe.forward(Variable(x));
  CHECK(out.tokens_per_expert == std::vector<int64_t>{0, 6, 0});
  CHECK(max_abs_diff(out.y.value(), reference_moe(moe, x)) < 1e-12);
}

TEST_CASE("MoE: output against a dense reference and gradcheck, for several k") {
  struct Case {
    int64_t n_experts, top_k, n_shared;
    FeedForwardKind kind;
  };
  for (const Case& c : {Case{4, 1, 0, FeedForwardKind::SwiGLU},  // Switch
                        Case{4, 2, 0, FeedForwardKind::SwiGLU},  // Mixtral
                        Case{3, 3, 0, FeedForwardKind::SwiGLU},  // every expert
                        Case{4, 2, 2, FeedForwardKind::SwiGLU},  // DeepSeekMoE's shared experts
                        Case{3, 1, 1, FeedForwardKind::ReLU}}) {
    CAPTURE(c.n_experts);
    CAPTURE(c.top_k);
    CAPTURE(c.n_shared);
    Rng rng(3 + c.n_experts * 10 + c.top_k);
    MixtureOfExperts moe(moe_config(c.n_experts, c.top_k, c.n_shared, c.kind), rng);
    randomize_parameters(moe, 5);
    const Tensor x = rand64({2, 3, 8}, 4);
    const MixtureOfExpertsOutput out = moe.forward(Variable(x));
    CHECK(out.y.shape() == x.shape());
    CHECK(out.aux.dim() == 0);
    int64_t routed = 0;
    for (int64_t n : out.tokens_per_expert) routed += n;
    CHECK(routed == 6 * c.top_k);  // no token dropped
    CHECK(max_abs_diff(out.y.value(), reference_moe(moe, x)) < 1e-10);
    CHECK_LAYER_GRADCHECK(moe, {x}, [&](const Vars& v) { return output_and_aux(moe, v[0]); });
  }
}

TEST_CASE("MoE: an expert no token chose does not run and gets no gradient") {
  Rng rng(4);
  MixtureOfExperts moe(moe_config(3, 1), rng);
  randomize_parameters(moe, 6);
  // Router rows u, −u, 0 give logits (a, −a, 0): expert 0 or 1 always beats
  // expert 2 (a tie at a = 0 goes to expert 0).
  Tensor router = moe.parameter("router.weight").mutable_value();
  router.fill_(0.0);
  router.select(0, 0).select(0, 0).fill_(1.0);
  router.select(0, 1).select(0, 0).fill_(-1.0);
  Tensor x = rand64({2, 3, 8}, 7);
  for (int64_t n = 0; n < 6; ++n)
    x.reshape({6, 8}).select(0, n).select(0, 0).fill_(n % 2 ? -1.0 : 1.0);

  const MixtureOfExpertsOutput out = moe.forward(Variable(x));
  CHECK(out.tokens_per_expert == std::vector<int64_t>{3, 3, 0});
  CHECK(max_abs_diff(out.y.value(), reference_moe(moe, x)) < 1e-12);
  moe.zero_grad();
  add(sum(out.y), out.aux).backward();
  for (const auto& [name, p] : moe.named_parameters()) {
    CAPTURE(name);
    CHECK(p.grad().defined() == (name.rfind("experts.2.", 0) != 0));
  }
  // The gradient check agrees: zero for expert 2, finite differences included.
  CHECK_LAYER_GRADCHECK(moe, {x}, [&](const Vars& v) { return output_and_aux(moe, v[0]); });
}

TEST_CASE("MoE load-balancing loss: 1.0 when perfectly balanced") {
  Rng rng(5);
  MixtureOfExperts moe(moe_config(2, 1), rng);
  // Router rows ±e₀ and tokens ±e₀: token 0 gets p = (σ(2), σ(−2)), token 1
  // the mirror image. f = (½, ½), P = (½, ½): aux = 2 · (¼ + ¼) = 1.
  Tensor router = moe.parameter("router.weight").mutable_value();
  router.fill_(0.0);
  router.select(0, 0).select(0, 0).fill_(1.0);
  router.select(0, 1).select(0, 0).fill_(-1.0);
  Tensor x = Tensor::zeros({1, 2, 8}, DType::F64);
  x.select(1, 0).select(1, 0).fill_(1.0);
  x.select(1, 1).select(1, 0).fill_(-1.0);
  const MixtureOfExpertsOutput out = moe.forward(Variable(x));
  CHECK(out.tokens_per_expert == std::vector<int64_t>{1, 1});
  CHECK(out.aux.item() == doctest::Approx(1.0).epsilon(1e-14));
}

TEST_CASE("MoE load-balancing loss: value and router gradient by hand") {
  for (int64_t k : {1, 2}) {
    CAPTURE(k);
    Rng rng(6);
    MixtureOfExperts moe(moe_config(4, k), rng);
    randomize_parameters(moe, 8);
    const int64_t N = 6, D = 8, E = 4;
    const Tensor x = rand64({2, 3, D}, 9);
    const Tensor w = moe.router().weight().value();
    const std::vector<double> xv = x.to_vector(), lv = ref_linear(x.reshape({N, D}), w).to_vector();
    const std::vector<int32_t> chosen =
        MixtureOfExperts::route(Tensor::from_data<double>({N, E}, lv), k).chosen;
    // p, f, P and aux = E Σ f_e P_e.
    std::vector<double> p(N * E), f(E, 0.0), P(E, 0.0);
    for (int64_t n = 0; n < N; ++n) {
      double z = 0;
      for (int64_t e = 0; e < E; ++e) z += std::exp(lv[n * E + e]);
      for (int64_t e = 0; e < E; ++e) P[e] += (p[n * E + e] = std::exp(lv[n * E + e]) / z) / N;
    }
    for (int32_t e : chosen) f[e] += 1.0 / static_cast<double>(N * k);
    double aux = 0;
    for (int64_t e = 0; e < E; ++e) aux += E * f[e] * P[e];

    // d aux / d logit[n, j] = (E/N) Σ_e f_e p_e (δ_ej − p_j);  d router[j] = Σ_n d logit[n, j] x_n.
    std::vector<double> grad(E * D, 0.0);
    for (int64_t n = 0; n < N; ++n) {
      double fp = 0;
      for (int64_t e = 0; e < E; ++e) fp += f[e] * p[n * E + e];
      for (int64_t j = 0; j < E; ++j) {
        const double dlogit = E / static_cast<double>(N) * p[n * E + j] * (f[j] - fp);
        for (int64_t d = 0; d < D; ++d) grad[j * D + d] += dlogit * xv[n * D + d];
      }
    }

    moe.zero_grad();
    const MixtureOfExpertsOutput out = moe.forward(Variable(x));
    CHECK(out.aux.item() == doctest::Approx(aux).epsilon(1e-12));
    out.aux.backward();
    CHECK(max_abs_diff(moe.router().weight().grad(), Tensor::from_data<double>({E, D}, grad)) <
          1e-12);
    // The loss reaches nothing but the router.
    for (const auto& [name, p] : moe.named_parameters())
      if (name != "router.weight") CHECK_FALSE(p.grad().defined());
    CHECK_LAYER_GRADCHECK(moe, {x}, [&](const Vars& v) { return moe.forward(v[0]).aux; });
  }
}

TEST_CASE("MoE: parameter names and bad configs") {
  Rng rng(7);
  MixtureOfExperts moe(moe_config(2, 1, 1, FeedForwardKind::ReLU), rng);
  CHECK(names_and_shapes(moe) ==
        std::vector<std::pair<std::string, Shape>>{{"router.weight", {2, 8}},
                                                   {"experts.0.w_up.weight", {6, 8}},
                                                   {"experts.0.w_up.bias", {6}},
                                                   {"experts.0.w_down.weight", {8, 6}},
                                                   {"experts.0.w_down.bias", {8}},
                                                   {"experts.1.w_up.weight", {6, 8}},
                                                   {"experts.1.w_up.bias", {6}},
                                                   {"experts.1.w_down.weight", {8, 6}},
                                                   {"experts.1.w_down.bias", {8}},
                                                   {"shared.0.w_up.weight", {6, 8}},
                                                   {"shared.0.w_up.bias", {6}},
                                                   {"shared.0.w_down.weight", {8, 6}},
                                                   {"shared.0.w_down.bias", {8}}});
  CHECK_THROWS_AS(MixtureOfExperts(moe_config(2, 3), rng), Error);
  CHECK_THROWS_AS(MixtureOfExperts(moe_config(0, 1), rng), Error);
}
