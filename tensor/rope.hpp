// Rotary position embedding (docs/MODEL-SPEC.md, "RoPE") on x [B, T, heads, d].
//
// Token t sits at position p = position_offset + t. The first r = rotary_dims
// channels of every head turn in adjacent pairs, j = 0 … r/2 − 1:
//
//   θ_j = theta^(−2j / r)                  (frequencies use r, not d)
//   x'[2j]   = x[2j]·cos(p·θ_j) − x[2j+1]·sin(p·θ_j)
//   x'[2j+1] = x[2j]·sin(p·θ_j) + x[2j+1]·cos(p·θ_j)
//
// and channels r … d−1 pass unchanged (r = 0 is the identity). A rotation is
// orthogonal, so the backward is the same rotation by −p·θ_j.
//
// Angles are computed in double, once per (r, theta) and position: a small
// per-thread table, extended as longer positions come, is then read in the
// tensor's dtype. Plain loops (memory-bound; no Highway needed), rows split
// over OpenMP threads when there are many.
//
// The same in plain loops, to read first: tensor/reference/rope_reference.hpp
// (the tests hold this kernel to it).
#pragma once

#include <cstdint>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

struct RopeDims {
  int64_t batch = 0, tokens = 0, heads = 0, head_dim = 0;
  int64_t rotary_dims = 0;  // r: even, 0 ≤ r ≤ head_dim
  double theta = 10000.0;
  int64_t position_offset = 0;  // position of token 0
};

// ------------------------------------------------------------- raw kernels
// out (B, T, heads, d) ← x (B, T, heads, d), both contiguous; out may be x.
template <typename T>
void rope_forward(T* out, const T* x, const RopeDims& dims);
// dx (B, T, heads, d) ← dout (B, T, heads, d): the rotation by −angle; dx may be dout.
template <typename T>
void rope_backward(T* dx, const T* dout, const RopeDims& dims);

// ------------------------------------------------------- on tensors
// Checks (Error naming the shape and r otherwise) that x is [B, T, heads, d]
// and r is even with 0 ≤ r ≤ d, theta > 0, offset ≥ 0. A non-contiguous x is
// copied first; the result is a fresh contiguous tensor.
Tensor rope_forward(const Tensor& x, int64_t rotary_dims, double theta,
                    int64_t position_offset = 0);
Tensor rope_backward(const Tensor& dout, int64_t rotary_dims, double theta,
                     int64_t position_offset = 0);

}  // namespace attnlab
