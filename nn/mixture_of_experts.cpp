#include "attnlab/nn/mixture_of_experts.hpp"

#include <algorithm>

#include "attnlab/autograd/ops.hpp"

namespace attnlab {
namespace {

const TransformerBlockConfig& validated(const TransformerBlockConfig& c) {
  ATTN_CHECK(c.n_experts > 0, "a mixture of experts needs n_experts > 0, got {}", c.n_experts);
  ATTN_CHECK(c.top_k >= 1 && c.top_k <= c.n_experts, "top_k must lie in 1 … {}, got {}",
             c.n_experts, c.top_k);
  ATTN_CHECK(c.n_shared_experts >= 0, "n_shared_experts must be ≥ 0, got {}", c.n_shared_experts);
  return c;
}

}  // namespace

MixtureOfExperts::MixtureOfExperts(const TransformerBlockConfig& config, Rng& rng)
    : config_(validated(config)),
      router_(config.d_model, config.n_experts, false, config.dtype, rng, config.init_std) {
  register_module("router", router_);
  for (int64_t e = 0; e < config.n_experts; ++e) {
    experts_.push_back(std::make_unique<FeedForward>(config, rng));
    register_module("experts." + std::to_string(e), *experts_.back());
  }
  for (int64_t s = 0; s < config.n_shared_experts; ++s) {
    shared_.push_back(std::make_unique<FeedForward>(config, rng));
    register_module("shared." + std::to_string(s), *shared_.back());
  }
}

MoeRouting MixtureOfExperts::route(const Tensor& logits, int64_t k) {
  const int64_t E = logits.size(-1), N = logits.numel() / std::max<int64_t>(E, 1);
  const Tensor lc = logits.contiguous();
  MoeRouting routing;
  dispatch_dtype(lc.dtype(), [&]<typename T>() { route_top_k<T>(lc.data<T>(), N, E, k, routing); });
  return routing;
}

MixtureOfExpertsOutput MixtureOfExperts::forward(const Variable& x) const {
  const int64_t D = config_.d_model, E = config_.n_experts, k = config_.top_k;
  ATTN_CHECK(x.dim() >= 1 && x.size(-1) == D, "MoE input must be (..., {}), got shape {}", D,
             shape_str(x.shape()));
  const int64_t N = x.numel() / D;
  ATTN_CHECK(N > 0, "MoE input of shape {} has no tokens", shape_str(x.shape()));
  const Variable tokens = reshape(x, {N, D});           // (N, D)
  const Variable logits = router_.forward(tokens);      // (N, E)
  const Variable probs = softmax(logits);               // (N, E)
  MoeRouting routing = route(logits.value(), k);        // nn/moe_routing.hpp
  const std::vector<int32_t>& chosen = routing.chosen;  // (N, k)
  // gates (N, k), in the order of `chosen`
  const Variable gates = k == 1 ? gather(probs, chosen, 1) : softmax(gather(logits, chosen, k));
  const Variable gates_flat = reshape(gates, {N * k, 1});  // choice i = n·k + j
  // Each expert's choices, in token order: which tokens it sees
  // (routing.tokens_of), and where its gates sit in gates_flat (routing.choices_of).
  const auto& tokens_of = routing.tokens_of;
  const auto& choices_of = routing.choices_of;

  // Run each expert on its own tokens only, weighted by their gates; then add
  // every weighted output back into its token's row at once.
  std::vector<Variable> weighted;    // per expert: (n_e, D)
  std::vector<int32_t> destination;  // the token of each row of concat(weighted)
  std::vector<int64_t> tokens_per_expert(E);
  for (int64_t e = 0; e < E; ++e) {
    tokens_per_expert[e] = routing.tokens_per_expert(e);
    if (tokens_of[e].empty()) continue;  // no token chose e: it does not run
    const Variable routed = index_select(tokens, tokens_of[e]);     // (n_e, D)
    const Variable gate = index_select(gates_flat, choices_of[e]);  // (n_e, 1)
    weighted.push_back(mul(experts_[e]->forward(routed), gate));    // (n_e, D)
    destination.insert(destination.end(), tokens_of[e].begin(), tokens_of[e].end());
  }
  Variable y = index_add(concat(weighted, 0), destination, N);  // (N, D)
  for (const auto& shared : shared_) y = add(y, shared->forward(tokens));

  // Load-balancing loss. f_e is a count: a constant of the graph.
  std::vector<double> fraction(E);
  for (int64_t e = 0; e < E; ++e)
    fraction[e] = static_cast<double>(tokens_per_expert[e]) / static_cast<double>(N * k);
  const Variable f(Tensor::from_data<double>({E}, fraction).to(x.dtype()));
  const Variable mean_prob = mean(probs, {0});                                      // P_e, (E)
  const Variable aux = mul_scalar(sum(mul(f, mean_prob)), static_cast<double>(E));  // scalar
  return {reshape(y, x.shape()), aux, std::move(tokens_per_expert), std::move(routing.chosen)};
}

}  // namespace attnlab
