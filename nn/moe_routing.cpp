#include "attnlab/nn/moe_routing.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "attnlab/tensor/error.hpp"

namespace attnlab {

template <typename T>
void route_top_k(const T* logits, int64_t N, int64_t E, int64_t k, MoeRouting& r) {
  ATTN_CHECK(k >= 1 && k <= E, "top-k of {} experts with k = {}", E, k);
  r.n_tokens = N;
  r.n_experts = E;
  r.top_k = k;
  r.chosen.resize(N * k);
  r.order.resize(E);
  r.tokens_of.resize(E);
  r.choices_of.resize(E);
  for (int64_t e = 0; e < E; ++e) {
    r.tokens_of[e].clear();
    r.choices_of[e].clear();
  }
  for (int64_t n = 0; n < N; ++n) {
    const T* row = logits + n * E;
    std::iota(r.order.begin(), r.order.end(), 0);
    // Higher logit first; among equal logits the lower index first.
    std::partial_sort(
        r.order.begin(), r.order.begin() + k, r.order.end(),
        [row](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    std::copy_n(r.order.begin(), k, r.chosen.begin() + n * k);
  }
  // Grouped by expert, in token order (choice i = n·k + j belongs to token i / k).
  for (int64_t i = 0; i < N * k; ++i) {
    r.tokens_of[r.chosen[i]].push_back(static_cast<int32_t>(i / k));
    r.choices_of[r.chosen[i]].push_back(static_cast<int32_t>(i));
  }
}

template <typename T>
void routing_gates(const T* row, int64_t E, const int32_t* chosen, int64_t k, T* gates, T* probs) {
  const T m = row[chosen[0]];  // the largest logit
  T sum = 0;
  for (int64_t e = 0; e < E; ++e) sum += std::exp(row[e] - m);
  for (int64_t e = 0; e < E; ++e) probs[e] = std::exp(row[e] - m) / sum;
  if (k == 1) {
    gates[0] = probs[chosen[0]];
    return;
  }
  T chosen_sum = 0;  // softmax over the k chosen logits
  for (int64_t j = 0; j < k; ++j) chosen_sum += std::exp(row[chosen[j]] - m);
  for (int64_t j = 0; j < k; ++j) gates[j] = std::exp(row[chosen[j]] - m) / chosen_sum;
}

template void route_top_k<float>(const float*, int64_t, int64_t, int64_t, MoeRouting&);
template void route_top_k<double>(const double*, int64_t, int64_t, int64_t, MoeRouting&);
template void routing_gates<float>(const float*, int64_t, const int32_t*, int64_t, float*, float*);
template void routing_gates<double>(const double*, int64_t, const int32_t*, int64_t, double*,
                                    double*);

}  // namespace attnlab
