// RMSNorm over the last axis (docs/MODEL-SPEC.md):
//
//   y = x · rstd · w,   rstd = 1 / sqrt(mean(x²) + eps)      x [N, D], w [D]
//
// Forward keeps rstd per row, as llm.c's layernorm keeps mean and rstd, so
// that backward needs no second reduction over x:
//
//   x̂ = x · rstd
//   dx = rstd · (g⊙w − x̂ · mean(g⊙w⊙x̂))
//   dw = Σ_rows g ⊙ x̂
//
// Rows are split over OpenMP threads; dw is summed over fixed chunks of rows
// and the chunks then in order, so the result does not depend on the thread
// count. SIMD: Highway, dispatched at run time to the best target of this CPU.
//
// The same in plain loops, to read first: tensor/reference/rms_norm_reference.hpp
// (the tests hold this kernel to it).
#pragma once

#include <cstdint>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

// ------------------------------------------------------------- raw kernels
// T is float or double; all arrays contiguous.
// out (N, D), rstd (N) ← x (N, D), weight (D). rstd may be null.
template <typename T>
void rms_norm_forward(T* out, T* rstd, const T* x, const T* weight, int64_t N, int64_t D, T eps);

// dx (N, D), dweight (D) ← dout (N, D), x (N, D), weight (D), rstd (N).
// Both outputs are overwritten; dweight may be null (weight needs no gradient).
template <typename T>
void rms_norm_backward(T* dx, T* dweight, const T* dout, const T* x, const T* weight, const T* rstd,
                       int64_t N, int64_t D);

// ------------------------------------------------------- on tensors
// x [..., D], weight [D] → y shaped like x. With rstd non-null, *rstd receives
// 1/sqrt(mean(x²) + eps) of each row, shaped like x without its last axis.
// Usable as is by the decoder (no autograd involved).
Tensor rms_norm_forward(const Tensor& x, const Tensor& weight, double eps, Tensor* rstd = nullptr);

struct RmsNormGrads {
  Tensor dx;       // shaped like x
  Tensor dweight;  // [D]
};
RmsNormGrads rms_norm_backward(const Tensor& dout, const Tensor& x, const Tensor& weight,
                               const Tensor& rstd);

}  // namespace attnlab
