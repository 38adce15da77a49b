// Cross-entropy of logits [..., V] against one target per row, mean over the
// N rows (kernels: tensor/cross_entropy.hpp):
//   loss = 1/N Σ_i (lse_i − x_i,t_i),   lse_i = log Σ_c exp(x_ic)
//   dx_ic = g · (exp(x_ic − lse_i) − [c = t_i]) / N
// Saved for backward: the logits (the input), the targets and lse, one
// number per row; the softmax is recomputed in the backward's single pass.
#include <vector>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/tensor/cross_entropy.hpp"

namespace attnlab {

Variable cross_entropy(const Variable& logits, std::span<const int32_t> targets) {
  CrossEntropyResult fwd = cross_entropy_forward(logits.value(), targets);
  Tensor lse = fwd.lse;
  return record(
      "cross_entropy", fwd.loss, {logits},
      [logits, lse, t = std::vector<int32_t>(targets.begin(), targets.end())](const Tensor& g) {
        accumulate_grad(logits, cross_entropy_backward(logits.value(), t, lse, g.item()));
      });
}

}  // namespace attnlab
