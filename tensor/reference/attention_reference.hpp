// Causal attention in plain loops: the readable twin of the fused kernel of
// tensor/attention.hpp (which never forms the score matrix), held to it by
// tests/tensor/fused_kernels_test.cpp. Read this one first.
//
// Shapes: q [B, Tq, H, dk], k [B, Tk, Hkv, dk], v [B, Tk, Hkv, dv]. Query head
// h reads KV head g = h / (H / Hkv) (MHA: Hkv = H, GQA, MQA: Hkv = 1). Query
// i sits at position Tk − Tq + i and sees keys j = 0 … Tk − Tq + i.
//
// Forward, for each (b, h, i):
//   s_ij  = scale · q_i·k_j                      (scale = 1/sqrt(dk) in a model)
//   lse_i = log Σ_j e^(s_ij)
//   p_ij  = e^(s_ij − lse_i)                     softmax over the keys it sees
//   o_i   = Σ_j p_ij · v_j
// Backward, given dout_i = dL/do_i:
//   dv_j  += p_ij · dout_i
//   dp_ij  = dout_i · v_j
//   ds_ij  = p_ij · (dp_ij − Σ_j' p_ij' dp_ij')  the softmax's Jacobian
//   dq_i  += scale · Σ_j ds_ij · k_j
//   dk_j  += scale · Σ_i ds_ij · q_i
// (the dk and dv of a KV head sum over the query heads that read it). The
// fused kernel computes the same, tile by tile, recomputing p from lse.
//
// Any dtype in, double inside, F64 tensors out.
#pragma once

#include "attnlab/tensor/tensor.hpp"

namespace attnlab::reference {

struct AttentionOutput {
  Tensor out;  // [B, Tq, H, dv]
  Tensor lse;  // [B, H, Tq]
};
AttentionOutput attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale);

struct AttentionGradients {
  Tensor dq, dk, dv;  // shaped like q, k, v
};
AttentionGradients attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                      const Tensor& v, double scale);

// p [B, H, Tq, Tk]: row i holds query i's probabilities over the keys, 0 for
// the keys it does not see. What attention maps show.
Tensor attention_probabilities(const Tensor& q, const Tensor& k, double scale);

}  // namespace attnlab::reference
