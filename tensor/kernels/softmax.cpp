// Softmax and log-softmax over the last axis, each with its backward (see
// tensor/ops.hpp). One SIMD call handles a block of rows; a row is
//   m = max(x)                       (subtracting it keeps exp from overflowing)
//   softmax:     e = exp(x - m),  s = Σ e,  y = e / s
//   log_softmax: s = Σ exp(x - m),  y = (x - m) - log(s)
// Backward, with g the gradient of y:
//   softmax:     dx = y ⊙ (g − Σ_j g_j y_j)
//   log_softmax: dx = g − exp(y) · Σ_j g_j

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kernels/softmax.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "attnlab/tensor/kernels/dispatch.hpp"

#include <cmath>

#include "attnlab/tensor/kernels/kernels.hpp"
#include "attnlab/tensor/kernels/simd-inl.hpp"
#include "attnlab/tensor/ops.hpp"

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {

// One row: y = softmax(x) or log_softmax(x), x and y of length n.
template <typename T>
void SoftmaxRow(const T* HWY_RESTRICT x, T* HWY_RESTRICT y, size_t n, bool log) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const V vmax = hn::Set(d, RowMax(d, x, n));
  // exp(x - m) of elements [i, i + lanes), and of a tail padded with -inf
  // (exp(-inf - m) = 0 adds nothing).
  const auto exp_at = [d, x, vmax](size_t i) {
    return ExpFull(d, hn::Sub(hn::LoadU(d, x + i), vmax));
  };
  const auto exp_tail = [d, x, vmax](size_t i, size_t count) {
    const T lowest = -std::numeric_limits<T>::infinity();
    return ExpFull(d, hn::Sub(LoadTail(d, x + i, count, lowest), vmax));
  };
  if (!log) {  // e = exp(x - m) into y, summed as we go; then y = e / Σe
    const T s = BlockedSum(
        d, n,
        [&](size_t i) {
          const V e = exp_at(i);
          hn::StoreU(e, d, y + i);
          return e;
        },
        [&](size_t i, size_t count) {
          const V e = exp_tail(i, count);
          StoreTail(d, e, y + i, count);
          return e;
        });
    const V inv = hn::Set(d, T(1) / s);
    Map1(d, y, y, n, [inv](V e) { return hn::Mul(e, inv); });
    return;
  }
  const V log_sum = hn::Set(d, std::log(BlockedSum(d, n, exp_at, exp_tail)));
  Map1(d, x, y, n, [vmax, log_sum](V v) { return hn::Sub(hn::Sub(v, vmax), log_sum); });
}

// Σ_i a[i]·b[i].
template <typename T>
T RowDot(const T* HWY_RESTRICT a, const T* HWY_RESTRICT b, size_t n) {
  const hn::ScalableTag<T> d;
  return BlockedSum(
      d, n, [d, a, b](size_t i) { return hn::Mul(hn::LoadU(d, a + i), hn::LoadU(d, b + i)); },
      [d, a, b](size_t i, size_t count) {
        return hn::Mul(LoadTail(d, a + i, count, T(0)), LoadTail(d, b + i, count, T(0)));
      });
}

// One row of the backward: dx from y (the forward's output) and g.
template <typename T>
void SoftmaxBackwardRow(const T* HWY_RESTRICT y, const T* HWY_RESTRICT g, T* HWY_RESTRICT dx,
                        size_t n, bool log) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  if (!log) {  // dx = y ⊙ (g − Σ g·y)
    const V dot = hn::Set(d, RowDot(y, g, n));
    Map2(d, y, g, dx, n, [dot](V vy, V vg) { return hn::Mul(vy, hn::Sub(vg, dot)); });
  } else {  // dx = g − exp(y) · Σ g
    const V sum = hn::Set(d, RowSum(d, g, n));
    Map2(d, y, g, dx, n, [d, sum](V vy, V vg) { return hn::NegMulAdd(ExpFull(d, vy), sum, vg); });
  }
}

template <typename T>
void SoftmaxRows(const T* x, T* y, size_t rows, size_t n, bool log) {
  for (size_t r = 0; r < rows; ++r) SoftmaxRow(x + r * n, y + r * n, n, log);
}
template <typename T>
void SoftmaxBackwardRows(const T* y, const T* g, T* dx, size_t rows, size_t n, bool log) {
  for (size_t r = 0; r < rows; ++r) SoftmaxBackwardRow(y + r * n, g + r * n, dx + r * n, n, log);
}

ATTNLAB_KERNEL_F32_F64(SoftmaxRows);
ATTNLAB_KERNEL_F32_F64(SoftmaxBackwardRows);

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {

ATTNLAB_EXPORT_F32_F64(SoftmaxRows);
ATTNLAB_EXPORT_F32_F64(SoftmaxBackwardRows);

namespace {

using kernels::parallel_blocks;
using kernels::rows_per_block;

// The rows of the last axis (a 0-d tensor is one row of one value).
int64_t row_length(const Tensor& t) {
  return t.dim() == 0 ? 1 : t.shape().back();
}

Tensor softmax_forward(const Tensor& x, bool log) {
  const char* what = log ? "log_softmax" : "softmax";
  ATTN_CHECK(x.defined(), "{}: undefined tensor", what);
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = row_length(x);
  if (y.numel() == 0) return y;
  const int64_t rows = y.numel() / n;
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* px = xc.data<T>();
    T* py = y.data<T>();
    parallel_blocks(rows, rows_per_block(n), n, [&](int64_t r0, int64_t r1) {
      ATTNLAB_DISPATCH(T, SoftmaxRows)(px + r0 * n, py + r0 * n, r1 - r0, n, log);
    });
  });
  return y;
}

Tensor softmax_backward_impl(const Tensor& y, const Tensor& gout, bool log) {
  const char* what = log ? "log_softmax backward" : "softmax backward";
  ATTN_CHECK(y.defined() && gout.defined(), "{}: undefined tensor", what);
  check_same_shape(y, gout, what);
  check_same_dtype(y, gout, what);
  const Tensor yc = y.contiguous(), gc = gout.contiguous();
  Tensor dx = Tensor::empty(y.shape(), y.dtype());
  const int64_t n = row_length(y);
  if (dx.numel() == 0) return dx;
  const int64_t rows = dx.numel() / n;
  dispatch_dtype(y.dtype(), [&]<typename T>() {
    const T* py = yc.data<T>();
    const T* pg = gc.data<T>();
    T* pd = dx.data<T>();
    parallel_blocks(rows, rows_per_block(n), n, [&](int64_t r0, int64_t r1) {
      const int64_t o = r0 * n;
      ATTNLAB_DISPATCH(T, SoftmaxBackwardRows)(py + o, pg + o, pd + o, r1 - r0, n, log);
    });
  });
  return dx;
}

}  // namespace

Tensor softmax(const Tensor& x) {
  return softmax_forward(x, /*log=*/false);
}
Tensor log_softmax(const Tensor& x) {
  return softmax_forward(x, /*log=*/true);
}
Tensor softmax_backward(const Tensor& y, const Tensor& gout) {
  return softmax_backward_impl(y, gout, /*log=*/false);
}
Tensor log_softmax_backward(const Tensor& y, const Tensor& gout) {
  return softmax_backward_impl(y, gout, /*log=*/true);
}

}  // namespace attnlab
#endif  // HWY_ONCE
