// Every differentiable op of attnlab, in one place (as PyTorch's
// derivatives.yaml): find an op here, then its forward and, right under it,
// its backward in autograd/ops/<family>.cpp.
//
// Shapes follow numpy: binary ops broadcast, and the gradient of a broadcast
// input is summed back to its shape by accumulate_grad (variable.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "attnlab/autograd/variable.hpp"
#include "attnlab/tensor/ops.hpp"

namespace attnlab {

// The names every Node carries. The gradient-check suite fails if one of
// these has no gradcheck test, or if an op records a name not listed here.
const std::vector<std::string_view>& differentiable_ops();

// ---------------------------------------------- elementwise (ops/elementwise.cpp)
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable add_scalar(const Variable& a, double s);
Variable mul_scalar(const Variable& a, double s);
Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable rsqrt(const Variable& x);
Variable tanh(const Variable& x);
Variable relu(const Variable& x);
Variable silu(const Variable& x);
Variable sigmoid(const Variable& x);
Variable gelu(const Variable& x);  // tanh approximation (GPT-2)

// ------------------------------------------------ reductions (ops/reduction.cpp)
Variable sum(const Variable& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Variable mean(const Variable& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Variable max(const Variable& x, int64_t axis, bool keepdim = false);  // gradient to the first max

// ------------------------------------------------------------ matmul (ops/matmul.cpp)
// [..., M, K] · [..., K, N]; see tensor/ops.hpp for batching. Transposed views
// of either side cost no copy, forward or backward.
Variable matmul(const Variable& a, const Variable& b);
// x · wᵀ for a PyTorch-layout weight w [out, in]: the Linear layer's product.
Variable linear(const Variable& x, const Variable& w);

// ------------------------------------------------------ shape (ops/shape.cpp)
Variable reshape(const Variable& x, const Shape& shape);
Variable permute(const Variable& x, const std::vector<int64_t>& order);
Variable transpose(const Variable& x, int64_t a, int64_t b);
Variable narrow(const Variable& x, int64_t axis, int64_t start, int64_t length);  // a slice
Variable concat(const std::vector<Variable>& xs, int64_t axis);
std::vector<Variable> split(const Variable& x, const std::vector<int64_t>& sizes, int64_t axis);
Variable contiguous(const Variable& x);

// ---------------------------------------------------- indexing (ops/indexing.cpp)
// Rows of x [N, ...] picked by index: out[i] = x[index[i]]. Backward
// scatter-adds into the picked rows (a row picked twice gets both).
Variable index_select(const Variable& x, std::span<const int32_t> index);
// Rows of x [N, D] added into a zero [rows, D] at positions index[i]:
// out[index[i]] += x[i]. The transpose of index_select (MoE combines experts with it).
Variable index_add(const Variable& x, std::span<const int32_t> index, int64_t rows);
// Token embedding: weight [V, D] looked up at ids (shape ids_shape) → [..ids_shape, D].
Variable embedding(const Variable& weight, std::span<const int32_t> ids, const Shape& ids_shape);
// out[..., j] = x[..., index[..., j]] along the last axis; index is laid out
// like out (shape: x's leading axes + [k]).
Variable gather(const Variable& x, std::span<const int32_t> index, int64_t k);
// out = mask ? a : b, mask a 0/1 tensor that broadcasts (no gradient to it).
Variable where(const Tensor& mask, const Variable& a, const Variable& b);
// out = mask ? value : x.
Variable masked_fill(const Variable& x, const Tensor& mask, double value);

// ------------------------------- softmax (ops/softmax.cpp, ops/cross_entropy.cpp)
Variable softmax(const Variable& x);      // over the last axis
Variable log_softmax(const Variable& x);  // over the last axis
// Mean over rows of −log softmax(logits)[target], logits [..., V], one target
// per row. Fused: forward keeps the per-row log-sum-exp, backward is (p − onehot)/N.
Variable cross_entropy(const Variable& logits, std::span<const int32_t> targets);

// ---------------------------------------------------- dropout (ops/dropout.cpp)
// Keeps each element with probability 1 − p, scaled by 1/(1 − p); draws its
// mask from rng. p = 0 returns x itself.
Variable dropout(const Variable& x, double p, Rng& rng);

// ------------------------------------ fused layers (ops/rms_norm.cpp, rope.cpp, swiglu.cpp,
// attention.cpp) Kernels in tensor/rms_norm.hpp, rope.hpp, swiglu.hpp, attention.hpp (usable
// without the tape). RMSNorm over the last axis: y = x / sqrt(mean(x²) + eps) · weight, weight [D].
// Saves rstd, one number per row.
Variable rms_norm(const Variable& x, const Variable& weight, double eps);
// RoPE of docs/MODEL-SPEC.md on x [B, T, heads, d]: rotates the first `rotary_dims`
// channels of each head in adjacent pairs, token t at position
// position_offset + t, θ_j = theta^(−2j / rotary_dims); the rest pass through.
// rotary_dims must be even and ≤ d (0: the identity).
Variable rope(const Variable& x, int64_t rotary_dims, double theta, int64_t position_offset = 0);
// SwiGLU's gate (tensor/swiglu.hpp): silu(gate) ⊙ up, one pass each way.
// gate and up have the same shape. Saves nothing but its inputs.
Variable swiglu(const Variable& gate, const Variable& up);
// Causal scaled-dot-product attention with grouped KV heads:
//   q [B, T, H, dk], k [B, T, Hkv, dk], v [B, T, Hkv, dv] → [B, T, H, dv]
// query head h reads KV head h / (H / Hkv); s = scale · q·kᵀ, causal, softmax
// over keys. Backward recomputes the probabilities from the saved row
// statistics (log-sum-exp), so nothing T×T is kept between the two passes.
// q may hold fewer tokens than k and v (Tq < Tk): they are then the last Tq
// positions. Views whose last axis is contiguous (a Linear's output viewed as
// [B, T, heads, d], a narrowed slice of a fused projection) are read in place.
Variable causal_attention(const Variable& q, const Variable& k, const Variable& v, double scale);

}  // namespace attnlab
