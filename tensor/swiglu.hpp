// SwiGLU's gate, fused (docs/MODEL-SPEC.md, FFN):
//
//   y = silu(a) ⊙ b,   silu(a) = a · s,   s = sigmoid(a) = 1 / (1 + e^(−a))
//
// where a = x·w_gateᵀ and b = x·w_upᵀ. Backward, with g = dL/dy:
//
//   da = g ⊙ b ⊙ s ⊙ (1 + a ⊙ (1 − s))      (d silu/da = s + a·s·(1 − s))
//   db = g ⊙ silu(a)
//
// One pass over a, b (and g) instead of the three of separate silu, mul and
// their backwards; s is recomputed in backward, so nothing but a and b is
// saved. Elementwise, so the result does not depend on the thread count.
// SIMD: Highway, dispatched at run time to the best target of this CPU.
//
// The same in plain loops, to read first: tensor/reference/swiglu_reference.hpp
// (the tests hold this kernel to it).
#pragma once

#include <cstdint>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

// ------------------------------------------------------------- raw kernels
// T is float or double; all arrays contiguous, n elements each.
// y ← silu(a) ⊙ b
template <typename T>
void swiglu_forward(T* y, const T* a, const T* b, int64_t n);

// da, db ← g, a, b (both overwritten).
template <typename T>
void swiglu_backward(T* da, T* db, const T* g, const T* a, const T* b, int64_t n);

// ------------------------------------------------------- on tensors
// gate, up: the same shape (any views) → y of that shape.
Tensor swiglu_forward(const Tensor& gate, const Tensor& up);

struct SwiGluGrads {
  Tensor dgate;  // shaped like gate
  Tensor dup;    // shaped like up
};
SwiGluGrads swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up);

}  // namespace attnlab
