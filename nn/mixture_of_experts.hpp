// Mixture of experts (Shazeer et al., 2017; Switch Transformer, Fedus et al.,
// 2021; Mixtral, 2024; shared experts from DeepSeekMoE, 2024).
//
// A router scores the E experts for each token; the token goes through only
// its top-k experts, and their outputs are mixed by gates:
//     logits = x·routerᵀ                       (N, E), N = B·T tokens
//     p = softmax(logits) over all E
//     top-k experts of each token by logits    ties: the lower index wins
//     top_k = 1: gate_e = p_e                  (Switch)
//     top_k > 1: gate = softmax of the k chosen logits = p_e / Σ_chosen p  (Mixtral)
//     y = Σ_chosen gate_e · Expert_e(x) + Σ_s Shared_s(x)
// The choice itself is a discrete decision and carries no gradient; the
// router learns through the gates (and the load-balancing loss).
//
// Load balancing (Switch form): without it the router tends to send most
// tokens to a few experts. With f_e the share of the N·k choices that picked
// e (a count, no gradient) and P_e the mean router probability of e,
//     aux = E · Σ_e f_e · P_e
// is 1 when the load is perfectly balanced and grows as it concentrates.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "attnlab/nn/feed_forward.hpp"
#include "attnlab/nn/moe_routing.hpp"

namespace attnlab {

struct MixtureOfExpertsOutput {
  Variable y;                              // shaped like x
  Variable aux;                            // the load-balancing loss, a scalar
  std::vector<int64_t> tokens_per_expert;  // (E): tokens routed to each expert
  std::vector<int32_t> chosen;             // (N, k): each token's experts, best first
};

class MixtureOfExperts : public Module {
 public:
  // Parameters, drawn from rng in this order: router.weight [E, D], then
  // experts.{e}.… and shared.{s}.…, each laid out as a FeedForward.
  // Reads d_model, ffn, ffn_hidden, n_experts, top_k, n_shared_experts, dtype,
  // init_std (router, w_gate, w_up) and out_std (w_down).
  MixtureOfExperts(const TransformerBlockConfig& config, Rng& rng);

  // x is (..., D), usually (B, T, D). Every token reaches its k experts (no
  // capacity limit, nothing dropped); an expert no token chose does not run,
  // so its parameters get no gradient from this pass.
  MixtureOfExpertsOutput forward(const Variable& x) const;

  // The k best experts of each row of logits (N, E), best first; among equal
  // logits the lower index wins: route_top_k (nn/moe_routing.hpp) on a tensor.
  static MoeRouting route(const Tensor& logits, int64_t k);

  const TransformerBlockConfig& config() const { return config_; }
  const Linear& router() const { return router_; }
  const FeedForward& expert(int64_t e) const { return *experts_.at(e); }
  const FeedForward& shared_expert(int64_t s) const { return *shared_.at(s); }

 private:
  TransformerBlockConfig config_;
  Linear router_;
  std::vector<std::unique_ptr<FeedForward>> experts_;
  std::vector<std::unique_ptr<FeedForward>> shared_;
};

}  // namespace attnlab
