// RMSNorm in plain loops: the readable twin of tensor/rms_norm.hpp's kernel,
// held to it by tests/tensor/fused_kernels_test.cpp. For each row x of D numbers:
//   rstd = 1 / sqrt(mean(x²) + eps),  x̂ = x · rstd,  y = x̂ ⊙ w
// Backward, given g = dL/dy:
//   dx = rstd · (g⊙w − x̂ · mean(g⊙w⊙x̂)),   dw = Σ_rows g ⊙ x̂
// Any dtype in, double inside, F64 tensors out.
#pragma once

#include "attnlab/tensor/tensor.hpp"

namespace attnlab::reference {

struct RmsNormOutput {
  Tensor y;     // shaped like x
  Tensor rstd;  // x's shape without its last axis
};
RmsNormOutput rms_norm_forward(const Tensor& x, const Tensor& weight, double eps);

struct RmsNormGradients {
  Tensor dx, dweight;
};
RmsNormGradients rms_norm_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                                   double eps);

}  // namespace attnlab::reference
