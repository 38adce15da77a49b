// RMSNorm over the last axis (kernels: tensor/rms_norm.hpp).
//   y = x · rstd · w,   rstd = 1/sqrt(mean(x²) + eps),   x̂ = x · rstd
//   dx = rstd · (g⊙w − x̂ · mean(g⊙w⊙x̂))
//   dw = Σ_rows g ⊙ x̂
// Saved for backward: x, w (the inputs) and rstd, one number per row.
#include "attnlab/tensor/rms_norm.hpp"
#include "attnlab/autograd/ops.hpp"

namespace attnlab {

Variable rms_norm(const Variable& x, const Variable& weight, double eps) {
  Tensor rstd;
  Tensor y = rms_norm_forward(x.value(), weight.value(), eps, &rstd);
  return record("rms_norm", y, {x, weight}, [x, weight, rstd](const Tensor& g) {
    RmsNormGrads grads = rms_norm_backward(g, x.value(), weight.value(), rstd);
    accumulate_grad(x, grads.dx);
    accumulate_grad(weight, grads.dweight);
  });
}

}  // namespace attnlab
