#include "attnlab/train/grad_clip.hpp"

#include <cmath>

#include "attnlab/tensor/ops.hpp"

namespace attnlab {

std::vector<double> gradient_sums_of_squares(const NamedParameterList& params) {
  std::vector<double> pieces;
  for (const auto& [name, p] : params)
    pieces.push_back(p.grad().defined() ? sum_of_squares(p.grad()) : 0.0);
  return pieces;
}

double global_norm_of(std::span<const double> pieces) {
  double sum_sq = 0;
  for (double s : pieces) sum_sq += s;
  return std::sqrt(sum_sq);
}

double global_grad_norm(const NamedParameterList& params) {
  return global_norm_of(gradient_sums_of_squares(params));
}

void clip_to_norm(NamedParameterList& params, double norm, double max_norm) {
  if (!(max_norm > 0 && norm > max_norm && std::isfinite(norm))) return;
  const double scale = max_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
  for (auto& [name, p] : params)
    if (p.grad().defined()) {
      Tensor g = p.grad();
      scale_(g, scale);
    }
}

double clip_grad_norm(NamedParameterList& params, double max_norm) {
  const double norm = global_grad_norm(params);
  clip_to_norm(params, norm, max_norm);
  return norm;
}

}  // namespace attnlab
