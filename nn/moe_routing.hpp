// The routing decision of a mixture of experts (docs/MODEL-SPEC.md, "Mixture of
// experts"), in one place for the trained layer (nn/mixture_of_experts.cpp)
// and the KV-cached decoder (models/decoder.cpp):
//
//     top-k experts of each token by its router logits, best first;
//     among equal logits the lower index wins
//     top_k = 1: gate_e = p_e = softmax(logits)_e          (Switch)
//     top_k > 1: gate_e = softmax of the k chosen logits    (Mixtral)
//
// The choice is discrete and carries no gradient: route_top_k is plain code
// over a [N, E] array of logits. The trained layer computes the gates on the
// tape (it needs their gradient); the decoder, which needs none, calls
// routing_gates.
#pragma once

#include <cstdint>
#include <vector>

namespace attnlab {

// Which experts each of N tokens goes to, and the same grouped by expert.
// Reused from call to call: route_top_k keeps the vectors' capacity, so a
// decoder that reserves them once allocates nothing per step.
struct MoeRouting {
  int64_t n_tokens = 0, n_experts = 0, top_k = 0;
  std::vector<int32_t> chosen;  // [N, k]: token n's experts, best first; choice i = n·k + j
  // Per expert e, in token order: the tokens that chose it and the index
  // n·k + j of each such choice (where its gate sits in a [N·k] list of gates).
  std::vector<std::vector<int32_t>> tokens_of, choices_of;
  std::vector<int32_t> order;  // scratch [E]

  // Tokens routed to expert e: what f_e of the load-balancing loss counts.
  int64_t tokens_per_expert(int64_t e) const { return static_cast<int64_t>(tokens_of[e].size()); }
};

// Route N tokens of logits [N, E] (row-major) to their top k experts.
template <typename T>
void route_top_k(const T* logits, int64_t N, int64_t E, int64_t k, MoeRouting& routing);

// The gates [k] of one token (logits [E], chosen [k] as route_top_k chose
// them), and p = softmax over all E into probs [E] (the P_e of the
// load-balancing loss), without a tape. Exponentials are taken against the
// row's largest logit, the first chosen.
template <typename T>
void routing_gates(const T* logits, int64_t E, const int32_t* chosen, int64_t k, T* gates,
                   T* probs);

}  // namespace attnlab
