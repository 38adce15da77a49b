// Compute on tensors: the kernels under autograd's ops.
//
// Every function here takes and returns Tensors, knows nothing of gradients,
// and works for f32 and f64. Contiguous inputs run SIMD kernels (Google
// Highway, dispatched at run time to the best target of this CPU); strided
// inputs take a slower path that is still correct. Results are fresh,
// contiguous tensors unless the name ends in `_` (in place).
//
// Backward kernels that are not themselves ops of this list (for unary ops,
// softmax) sit here too, right under their forward, so autograd/ can stay a
// thin layer that only records.
#pragma once

#include <cstdint>
#include <vector>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

// ---------------------------------------------------------------- elementwise
// Binary ops broadcast like numpy; both inputs must have the same dtype.
enum class BinaryOp { Add, Sub, Mul, Div, Max, Min };
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
inline Tensor add(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Add, a, b);
}
inline Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Sub, a, b);
}
inline Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Mul, a, b);
}
inline Tensor div(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::Div, a, b);
}

Tensor add_scalar(const Tensor& a, double s);  // a + s
Tensor mul_scalar(const Tensor& a, double s);  // a * s

// In place. dst must be contiguous; src broadcasts to dst's shape.
void add_(Tensor& dst, const Tensor& src);                 // dst += src
void axpy_(Tensor& dst, double alpha, const Tensor& src);  // dst += alpha * src
void scale_(Tensor& dst, double alpha);                    // dst *= alpha

enum class UnaryOp { Neg, Exp, Log, Sqrt, Rsqrt, Tanh, Relu, Silu, Sigmoid, Gelu };
const char* unary_name(UnaryOp op);
Tensor unary(UnaryOp op, const Tensor& x);
// Gradient of y = f(x): returns gout * f'(x). Kernels use whichever of x and
// y = f(x) is cheaper (exp: y; tanh: y; silu: x), so both are passed.
// gelu is the tanh approximation (as GPT-2).
Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gout);

// ----------------------------------------------------------------- reductions
// Over the given axes (negative count from the end; empty = all axes).
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
// Σ x², over all elements, with no temporary (the global gradient norm).
// Summed in blocks whose f32/f64 partial sums are added in order in f64.
double sum_of_squares(const Tensor& x);
// Maximum over one axis. With argmax non-null, *argmax receives the index of
// the (first) maximum along that axis, laid out like the result.
Tensor max(const Tensor& x, int64_t axis, bool keepdim = false,
           std::vector<int64_t>* argmax = nullptr);
// Undoes broadcasting: sums g over the axes along which `shape` was expanded,
// so that the result has exactly `shape`. Every op that broadcasts uses it to
// bring a gradient back to its input's shape.
Tensor sum_to(const Tensor& g, const Shape& shape);

// ---------------------------------------------------- softmax over last axis
Tensor softmax(const Tensor& x);      // y = exp(x - max) / sum(exp(x - max))
Tensor log_softmax(const Tensor& x);  // y = x - max - log(sum(exp(x - max)))
// dx = y ⊙ (g − Σ_j g_j y_j)
Tensor softmax_backward(const Tensor& y, const Tensor& gout);
// dx = g − softmax(x) · Σ_j g_j, with softmax(x) = exp(y)
Tensor log_softmax_backward(const Tensor& y, const Tensor& gout);

// --------------------------------------------------------------------- matmul
// out[..., M, N] = a[..., M, K] · b[..., K, N] through cblas_?gemm.
// A view whose last two axes are transposed (transpose(-1, -2) of a
// contiguous matrix) is passed to BLAS as CblasTrans: no copy. Batch axes
// (all but the last two) must match, or one side may have none (it is shared
// by every batch, e.g. activations [B,T,D] times a weight [D,N]).
Tensor matmul(const Tensor& a, const Tensor& b);
// out = alpha · a·b + beta · out, into an existing contiguous tensor (beta = 1
// accumulates a gradient without a temporary).
void matmul_into(Tensor& out, const Tensor& a, const Tensor& b, double alpha = 1.0,
                 double beta = 0.0);

// ---------------------------------------------------------------- optimizer
struct AdamWStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled: p -= lr · wd · p
  int64_t step = 1;           // 1-based, for bias correction
};
// One AdamW update of a parameter, in place (all four contiguous, same shape):
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//   p -= lr · ( m/(1−β1^t) / (sqrt(v/(1−β2^t)) + ε) + wd·p )
void adamw_update_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s);

}  // namespace attnlab
