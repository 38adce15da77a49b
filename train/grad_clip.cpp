#include "attnlab/train/grad_clip.hpp"

#include <cmath>

#include "attnlab/tensor/ops.hpp"

namespace attnlab {

double global_grad_norm(const std::vector<std::pair<std::string, Variable>>& params) {
  double sum_sq = 0;
  for (const auto& [name, p] : params) {
    if (!p.grad().defined()) continue;
    sum_sq += sum_of_squares(p.grad());
  }
  return std::sqrt(sum_sq);
}

double clip_grad_norm(std::vector<std::pair<std::string, Variable>>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  if (max_norm > 0 && norm > max_norm && std::isfinite(norm)) {
    const double scale = max_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
    for (auto& [name, p] : params)
      if (p.grad().defined()) {
        Tensor g = p.grad();
        scale_(g, scale);
      }
  }
  return norm;
}

}  // namespace attnlab
