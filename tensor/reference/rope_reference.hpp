// RoPE in plain loops, straight from docs/MODEL-SPEC.md ("RoPE"): the readable
// twin of tensor/rope.hpp's kernel, held to it by the tests. On x [B, T,
// heads, d], token t at position offset + t, the first r channels of each
// head rotate in adjacent pairs:
//   θ_j = theta^(−2j / r),  angle = position · θ_j
//   x'[2j]   = x[2j]·cos(angle) − x[2j+1]·sin(angle)
//   x'[2j+1] = x[2j]·sin(angle) + x[2j+1]·cos(angle)
// Channels r … d − 1 pass unchanged. A rotation's inverse is its transpose,
// so the backward rotates dout by −angle. Double inside, F64 tensors out.
#pragma once

#include <cstdint>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab::reference {

Tensor rope_forward(const Tensor& x, int64_t rotary_dims, double theta, int64_t offset = 0);
Tensor rope_backward(const Tensor& dout, int64_t rotary_dims, double theta, int64_t offset = 0);

}  // namespace attnlab::reference
