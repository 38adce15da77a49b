// Attention with dropout on its probabilities, for training with --dropout.
//
// The fused causal_attention op never forms the T×T probabilities (it keeps
// only their row statistics), so there is nothing to drop there. With
// dropout, attention is composed from plain ops instead, as nanoGPT's
// non-flash path does:
//   s = scale · q·kᵀ,  s[i, j] = −∞ for j > i,  p = dropout(softmax(s)),  o = p·v
// It computes exactly what causal_attention computes when p = 0 (a test
// checks this), so the fused op stays the one used whenever dropout is off.
#pragma once

#include "attnlab/autograd/ops.hpp"

namespace attnlab {

// q (B, T, H, dk), k (B, T, Hkv, dk), v (B, T, Hkv, dv) → (B, T, H, dv);
// query head h reads KV head h / (H / Hkv).
Variable causal_attention_with_dropout(const Variable& q, const Variable& k, const Variable& v,
                                       double scale, double p, Rng& rng);

}  // namespace attnlab
