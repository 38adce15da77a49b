// Causal scaled-dot-product attention with grouped KV heads, flash-attention
// style: the T×T score matrix is never materialised.
//
//   q [B, Tq, H, dk], k [B, Tk, Hkv, dk], v [B, Tk, Hkv, dv] → out [B, Tq, H, dv]
//
// Query head h reads KV head h / (H / Hkv), so one kernel is MHA (Hkv = H),
// GQA (1 < Hkv < H) and MQA (Hkv = 1); dk may differ from dv (MLA). Query i
// sits at position Tk − Tq + i (the last Tq positions: a training pass has
// Tq = Tk, a KV-cached decoder feeds its new tokens against the whole cache)
// and sees keys 0 … Tk − Tq + i.
//
// Forward (per query tile of 64 rows, looping over key tiles of 64):
//   s = scale · q·kᵀ;  online softmax: running row max m and sum l,
//   o ← o · e^(m_old − m_new) + e^(s − m_new) · v;  out = o / l,
//   lse = m + log l   (saved for backward, [B, H, Tq])
// Backward (flash-attention-2), recomputing p from lse instead of storing it:
//   D_i = Σ_c dout_ic · out_ic
//   p_ij = e^(scale · q_i·k_j − lse_i)
//   dv_j += p_ij · dout_i;   dp_ij = dout_i · v_j;   ds_ij = p_ij (dp_ij − D_i)
//   dq_i += scale · ds_ij · k_j;   dk_j += scale · ds_ij · q_i
//
// The [B, T, heads, d] layout is what a Linear produces after a view: the
// rows of one head are strided by heads·d, and the kernels walk them in place,
// so no permute copies are needed (nor for a narrowed slice of a fused
// projection: any strides, as long as the last axis is contiguous).
//
// Threads (OpenMP): the forward splits over (batch, query head); the backward
// over (batch, KV head), each task looping over the query heads that share
// its KV head, so the grouped heads' gradients are summed into dk/dv by one
// thread, without races or atomics. Results do not depend on the thread count.
// SIMD: Highway, dispatched at run time to the best target of this CPU.
//
// The same in plain loops, to read first: tensor/reference/attention_reference.hpp
// (the tests hold this kernel to it).
#pragma once

#include <cstdint>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

// The sizes of one attention call.
struct AttentionDims {
  int64_t batch = 0;
  int64_t q_len = 0;     // Tq
  int64_t kv_len = 0;    // Tk ≥ Tq
  int64_t heads = 0;     // H, a multiple of kv_heads
  int64_t kv_heads = 0;  // Hkv
  int64_t qk_dim = 0;    // dk
  int64_t v_dim = 0;     // dv
};

// A [B, T, heads, d] operand whose last axis is contiguous: element
// (b, t, h, c) is data[b·batch_stride + t·token_stride + h·head_stride + c].
template <typename T>
struct HeadsView {
  T* data = nullptr;
  int64_t batch_stride = 0, token_stride = 0, head_stride = 0;
};

// ------------------------------------------------------------- raw kernels
// T is float or double. Layouts as in the header comment; lse is contiguous
// [B, H, Tq] and may be null when the caller needs no backward (decoding).
template <typename T>
void attention_forward(HeadsView<T> out, T* lse, HeadsView<const T> q, HeadsView<const T> k,
                       HeadsView<const T> v, const AttentionDims& dims, T scale);

// dq [B, Tq, H, dk], dk [B, Tk, Hkv, dk], dv [B, Tk, Hkv, dv] are overwritten.
// Needs only what the forward kept: q, k, v, out and lse.
template <typename T>
void attention_backward(HeadsView<T> dq, HeadsView<T> dk, HeadsView<T> dv, HeadsView<const T> dout,
                        HeadsView<const T> q, HeadsView<const T> k, HeadsView<const T> v,
                        HeadsView<const T> out, const T* lse, const AttentionDims& dims, T scale);

// ------------------------------------------------------- on tensors
// Checks shapes (Error naming them), then runs the kernels above. Operands
// whose last axis is not contiguous are copied first; results are contiguous.
struct AttentionResult {
  Tensor out;  // [B, Tq, H, dv]
  Tensor lse;  // [B, H, Tq], the log-sum-exp of each row of scores
};
AttentionResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale);

struct AttentionGrads {
  Tensor dq, dk, dv;
};
AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& out, const Tensor& lse,
                                  double scale);

// The dims of q, k, v after checking them (Error naming the shapes otherwise).
AttentionDims attention_dims(const Tensor& q, const Tensor& k, const Tensor& v);

}  // namespace attnlab
