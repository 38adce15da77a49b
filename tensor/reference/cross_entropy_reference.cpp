#include "attnlab/tensor/reference/cross_entropy_reference.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace attnlab::reference {
namespace {

// log Σ_c e^(x_c) of one row, against its max so that e^ cannot overflow.
double log_sum_exp(const double* x, int64_t V) {
  const double m = *std::max_element(x, x + V);
  double sum = 0;
  for (int64_t c = 0; c < V; ++c) sum += std::exp(x[c] - m);
  return m + std::log(sum);
}

}  // namespace

double cross_entropy_forward(const Tensor& logits, std::span<const int32_t> targets) {
  const int64_t V = logits.size(-1), N = logits.numel() / V;
  const std::vector<double> x = logits.to_vector();
  double loss = 0;
  for (int64_t i = 0; i < N; ++i) loss += log_sum_exp(&x[i * V], V) - x[i * V + targets[i]];
  return loss / static_cast<double>(N);
}

Tensor cross_entropy_backward(const Tensor& logits, std::span<const int32_t> targets,
                              double scale) {
  const int64_t V = logits.size(-1), N = logits.numel() / V;
  const std::vector<double> x = logits.to_vector();
  std::vector<double> grad(N * V);
  for (int64_t i = 0; i < N; ++i) {
    const double lse = log_sum_exp(&x[i * V], V);
    for (int64_t c = 0; c < V; ++c)
      grad[i * V + c] =
          scale * (std::exp(x[i * V + c] - lse) - (c == targets[i] ? 1.0 : 0.0)) / double(N);
  }
  return Tensor::from_data<double>({N, V}, grad);
}

}  // namespace attnlab::reference
