// SwiGLU's gate in plain loops: the readable twin of tensor/swiglu.hpp's
// kernel, held to it by the tests. Elementwise, with s = 1 / (1 + e^(−a)):
//   y  = silu(a) · b = a·s·b
//   da = g·b·s·(1 + a·(1 − s))      (d silu/da = s + a·s·(1 − s))
//   db = g·a·s
// Double inside, F64 tensors out.
#pragma once

#include "attnlab/tensor/tensor.hpp"

namespace attnlab::reference {

Tensor swiglu_forward(const Tensor& gate, const Tensor& up);

struct SwiGluGradients {
  Tensor dgate, dup;
};
SwiGluGradients swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up);

}  // namespace attnlab::reference
