// Rotary position embedding, RoPE (Su et al., RoFormer, 2021).
//
// Rotates adjacent channel pairs (x[2j], x[2j+1]) of the first `rotary_dims`
// channels of each head by the angle pos·θ_j, θ_j = theta^(−2j / rotary_dims):
//     x'[2j]   = x[2j]·cos(pos·θ_j) − x[2j+1]·sin(pos·θ_j)
//     x'[2j+1] = x[2j]·sin(pos·θ_j) + x[2j+1]·cos(pos·θ_j)
// so that q·k of two rotated vectors depends only on their distance in
// positions. The remaining channels pass unchanged ("partial RoPE"). There is
// nothing to learn: this holds the two numbers and calls the fused op.
#pragma once

#include <cstdint>

#include "attnlab/autograd/variable.hpp"

namespace attnlab {

class RotaryEmbedding {
 public:
  // rotary_dims is even, 0 allowed (rotates nothing).
  RotaryEmbedding(int64_t rotary_dims, double theta);

  // docs/MODEL-SPEC.md: r = 2·floor(fraction·head_dim / 2), computed in double.
  static int64_t rotary_dims_for(int64_t head_dim, double fraction);

  // x is (B, T, heads, d), d ≥ rotary_dims; token t sits at position
  // position_offset + t (a decoder passes the number of cached tokens).
  Variable apply(const Variable& x, int64_t position_offset = 0) const;

  int64_t rotary_dims() const { return rotary_dims_; }
  double theta() const { return theta_; }

 private:
  int64_t rotary_dims_;
  double theta_;
};

}  // namespace attnlab
