// Causal attention with grouped KV heads (kernels: tensor/attention.hpp).
//
// Forward, per query row i (flash-attention: tiles of keys, online softmax):
//   s_ij = scale · q_i·k_j  (j ≤ i),  p_ij = softmax_j(s_ij),  o_i = Σ_j p_ij v_j
// Backward (flash-attention-2), with g = dL/do:
//   D_i   = Σ_c g_ic · o_ic                 (= Σ_j p_ij · dp_ij)
//   p_ij  = exp(s_ij − lse_i)               recomputed, never stored
//   dv_j += p_ij · g_i
//   dp_ij = g_i · v_j,   ds_ij = p_ij · (dp_ij − D_i)
//   dq_i += scale · ds_ij · k_j,   dk_j += scale · ds_ij · q_i
// Query heads that share a KV head sum their dk, dv into it.
//
// Saved for backward: q, k, v (the inputs), the output and the row
// log-sum-exp lse [B, H, Tq]. Nothing T×T lives between the two passes.
#include "attnlab/tensor/attention.hpp"
#include "attnlab/autograd/ops.hpp"

namespace attnlab {

Variable causal_attention(const Variable& q, const Variable& k, const Variable& v, double scale) {
  AttentionResult fwd = attention_forward(q.value(), k.value(), v.value(), scale);
  Tensor out = fwd.out, lse = fwd.lse;
  return record("causal_attention", fwd.out, {q, k, v},
                [q, k, v, out, lse, scale](const Tensor& g) {
                  AttentionGrads grads =
                      attention_backward(g, q.value(), k.value(), v.value(), out, lse, scale);
                  accumulate_grad(q, grads.dq);
                  accumulate_grad(k, grads.dk);
                  accumulate_grad(v, grads.dv);
                });
}

}  // namespace attnlab
