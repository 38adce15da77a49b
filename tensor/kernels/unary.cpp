// Unary ops y = f(x) and their gradients gout · f'(x), each forward right
// above its backward (see tensor/ops.hpp). Contiguous memory runs the SIMD
// kernel directly; a strided x is copied once (and the copy is then updated
// in place).
//
// Which saved tensor each backward reads (the other may be undefined):
//   neg   -            dx = -g
//   exp   y            dx = g·y
//   log   x            dx = g/x
//   sqrt  y            dx = g·0.5/y
//   rsqrt y            dx = g·(-0.5)·y³
//   tanh  y            dx = g·(1 - y²)
//   relu  x            dx = g·[x > 0]          (0 at the kink x = 0)
//   silu  x            dx = g·s·(1 + x·(1 - s)),  s = sigmoid(x)
//   sigmoid y          dx = g·y·(1 - y)
//   gelu  x            y = ½x(1 + tanh(u)),  u = √(2/π)(x + 0.044715x³)
//                      dx = g·(½(1 + t) + ½x(1 - t²)·√(2/π)(1 + 3·0.044715x²)),  t = tanh(u)

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kernels/unary.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "attnlab/tensor/kernels/dispatch.hpp"
#include "attnlab/tensor/kernels/kernels.hpp"
#include "attnlab/tensor/kernels/simd-inl.hpp"
#include "attnlab/tensor/ops.hpp"

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {

// GELU's tanh approximation (Hendrycks & Gimpel; GPT-2).
inline constexpr double kGeluScale = 0.7978845608028654;  // √(2/π)
inline constexpr double kGeluCubic = 0.044715;

template <UnaryOp kOp, class D, class V = hn::Vec<D>>
HWY_INLINE V UnaryForward(D d, V x) {
  using T = hn::TFromD<D>;
  const V one = hn::Set(d, T(1));
  if constexpr (kOp == UnaryOp::Neg) return hn::Neg(x);
  if constexpr (kOp == UnaryOp::Exp) return ExpFull(d, x);
  if constexpr (kOp == UnaryOp::Log) return LogFull(d, x);
  if constexpr (kOp == UnaryOp::Sqrt) return hn::Sqrt(x);
  if constexpr (kOp == UnaryOp::Rsqrt) return hn::Div(one, hn::Sqrt(x));
  if constexpr (kOp == UnaryOp::Tanh) return hn::Tanh(d, x);
  if constexpr (kOp == UnaryOp::Relu) return hn::Max(x, hn::Zero(d));
  if constexpr (kOp == UnaryOp::Silu) return hn::Div(x, hn::Add(one, ExpFull(d, hn::Neg(x))));
  if constexpr (kOp == UnaryOp::Sigmoid) return hn::Div(one, hn::Add(one, ExpFull(d, hn::Neg(x))));
  if constexpr (kOp == UnaryOp::Gelu) {
    const V x3c = hn::Mul(hn::Mul(hn::Set(d, T(kGeluCubic)), x), hn::Mul(x, x));
    const V t = hn::Tanh(d, hn::Mul(hn::Set(d, T(kGeluScale)), hn::Add(x, x3c)));
    return hn::Mul(hn::Mul(hn::Set(d, T(0.5)), x), hn::Add(one, t));
  }
}

template <UnaryOp kOp, typename T>
void UnaryOpKernel(const T* x, T* y, size_t n) {
  const hn::ScalableTag<T> d;
  Map1(d, x, y, n, [d](auto v) { return UnaryForward<kOp>(d, v); });
}

// dx = g · f'(x); x or y is null when this op's gradient does not read it.
template <UnaryOp kOp, typename T>
void UnaryBackwardOpKernel(const T* x, const T* y, const T* g, T* dx, size_t n) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const V one = hn::Set(d, T(1)), half = hn::Set(d, T(0.5));
  if constexpr (kOp == UnaryOp::Neg) {
    Map1(d, g, dx, n, [](V vg) { return hn::Neg(vg); });
  } else if constexpr (kOp == UnaryOp::Exp) {
    Map2(d, y, g, dx, n, [](V vy, V vg) { return hn::Mul(vg, vy); });
  } else if constexpr (kOp == UnaryOp::Log) {
    Map2(d, x, g, dx, n, [](V vx, V vg) { return hn::Div(vg, vx); });
  } else if constexpr (kOp == UnaryOp::Sqrt) {
    Map2(d, y, g, dx, n, [half](V vy, V vg) { return hn::Div(hn::Mul(half, vg), vy); });
  } else if constexpr (kOp == UnaryOp::Rsqrt) {
    const V minus_half = hn::Set(d, T(-0.5));
    Map2(d, y, g, dx, n, [minus_half](V vy, V vg) {
      return hn::Mul(hn::Mul(minus_half, vg), hn::Mul(vy, hn::Mul(vy, vy)));
    });
  } else if constexpr (kOp == UnaryOp::Tanh) {
    Map2(d, y, g, dx, n, [one](V vy, V vg) { return hn::Mul(vg, hn::NegMulAdd(vy, vy, one)); });
  } else if constexpr (kOp == UnaryOp::Relu) {
    Map2(d, x, g, dx, n,
         [d](V vx, V vg) { return hn::IfThenElseZero(hn::Gt(vx, hn::Zero(d)), vg); });
  } else if constexpr (kOp == UnaryOp::Sigmoid) {
    Map2(d, y, g, dx, n, [one](V vy, V vg) { return hn::Mul(hn::Mul(vg, vy), hn::Sub(one, vy)); });
  } else if constexpr (kOp == UnaryOp::Silu) {
    Map2(d, x, g, dx, n, [d, one](V vx, V vg) {
      const V s = hn::Div(one, hn::Add(one, ExpFull(d, hn::Neg(vx))));
      return hn::Mul(hn::Mul(vg, s), hn::MulAdd(vx, hn::Sub(one, s), one));
    });
  } else if constexpr (kOp == UnaryOp::Gelu) {
    const V scale = hn::Set(d, T(kGeluScale)), cubic = hn::Set(d, T(kGeluCubic));
    const V cubic3 = hn::Set(d, T(3 * kGeluCubic));
    Map2(d, x, g, dx, n, [=](V vx, V vg) {
      const V x2 = hn::Mul(vx, vx);
      const V t = hn::Tanh(d, hn::Mul(scale, hn::MulAdd(hn::Mul(cubic, x2), vx, vx)));
      const V du = hn::Mul(scale, hn::MulAdd(cubic3, x2, one));  // du/dx
      // ½(1 + t) + ½x(1 - t²)·du/dx
      const V left = hn::Mul(half, hn::Add(one, t));
      const V right = hn::Mul(hn::Mul(half, vx), hn::Mul(hn::NegMulAdd(t, t, one), du));
      return hn::Mul(vg, hn::Add(left, right));
    });
  }
}

template <typename T>
void Unary(UnaryOp op, const T* x, T* y, size_t n) {
  switch (op) {
    case UnaryOp::Neg:
      return UnaryOpKernel<UnaryOp::Neg>(x, y, n);
    case UnaryOp::Exp:
      return UnaryOpKernel<UnaryOp::Exp>(x, y, n);
    case UnaryOp::Log:
      return UnaryOpKernel<UnaryOp::Log>(x, y, n);
    case UnaryOp::Sqrt:
      return UnaryOpKernel<UnaryOp::Sqrt>(x, y, n);
    case UnaryOp::Rsqrt:
      return UnaryOpKernel<UnaryOp::Rsqrt>(x, y, n);
    case UnaryOp::Tanh:
      return UnaryOpKernel<UnaryOp::Tanh>(x, y, n);
    case UnaryOp::Relu:
      return UnaryOpKernel<UnaryOp::Relu>(x, y, n);
    case UnaryOp::Silu:
      return UnaryOpKernel<UnaryOp::Silu>(x, y, n);
    case UnaryOp::Sigmoid:
      return UnaryOpKernel<UnaryOp::Sigmoid>(x, y, n);
    case UnaryOp::Gelu:
      return UnaryOpKernel<UnaryOp::Gelu>(x, y, n);
  }
}

template <typename T>
void UnaryBackward(UnaryOp op, const T* x, const T* y, const T* g, T* dx, size_t n) {
  switch (op) {
    case UnaryOp::Neg:
      return UnaryBackwardOpKernel<UnaryOp::Neg>(x, y, g, dx, n);
    case UnaryOp::Exp:
      return UnaryBackwardOpKernel<UnaryOp::Exp>(x, y, g, dx, n);
    case UnaryOp::Log:
      return UnaryBackwardOpKernel<UnaryOp::Log>(x, y, g, dx, n);
    case UnaryOp::Sqrt:
      return UnaryBackwardOpKernel<UnaryOp::Sqrt>(x, y, g, dx, n);
    case UnaryOp::Rsqrt:
      return UnaryBackwardOpKernel<UnaryOp::Rsqrt>(x, y, g, dx, n);
    case UnaryOp::Tanh:
      return UnaryBackwardOpKernel<UnaryOp::Tanh>(x, y, g, dx, n);
    case UnaryOp::Relu:
      return UnaryBackwardOpKernel<UnaryOp::Relu>(x, y, g, dx, n);
    case UnaryOp::Silu:
      return UnaryBackwardOpKernel<UnaryOp::Silu>(x, y, g, dx, n);
    case UnaryOp::Sigmoid:
      return UnaryBackwardOpKernel<UnaryOp::Sigmoid>(x, y, g, dx, n);
    case UnaryOp::Gelu:
      return UnaryBackwardOpKernel<UnaryOp::Gelu>(x, y, g, dx, n);
  }
}

ATTNLAB_KERNEL_F32_F64(Unary);
ATTNLAB_KERNEL_F32_F64(UnaryBackward);

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {

ATTNLAB_EXPORT_F32_F64(Unary);
ATTNLAB_EXPORT_F32_F64(UnaryBackward);

namespace {

using kernels::kBlockElements;
using kernels::parallel_blocks;

bool backward_reads_x(UnaryOp op) {
  return op == UnaryOp::Log || op == UnaryOp::Relu || op == UnaryOp::Silu || op == UnaryOp::Gelu;
}
bool backward_reads_y(UnaryOp op) {
  return op == UnaryOp::Exp || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::Tanh ||
         op == UnaryOp::Sigmoid;
}

}  // namespace

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
      return "neg";
    case UnaryOp::Exp:
      return "exp";
    case UnaryOp::Log:
      return "log";
    case UnaryOp::Sqrt:
      return "sqrt";
    case UnaryOp::Rsqrt:
      return "rsqrt";
    case UnaryOp::Tanh:
      return "tanh";
    case UnaryOp::Relu:
      return "relu";
    case UnaryOp::Silu:
      return "silu";
    case UnaryOp::Sigmoid:
      return "sigmoid";
    case UnaryOp::Gelu:
      return "gelu";
  }
  return "unary";
}

Tensor unary(UnaryOp op, const Tensor& x) {
  ATTN_CHECK(x.defined(), "{}: undefined tensor", unary_name(op));
  // A strided x is copied once and the copy is then updated in place.
  Tensor y = x.is_contiguous() ? Tensor::empty(x.shape(), x.dtype()) : x.contiguous();
  const Tensor& src = x.is_contiguous() ? x : y;
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* px = src.data<T>();
    T* py = y.data<T>();
    parallel_blocks(y.numel(), kBlockElements, 1, [&](int64_t i0, int64_t i1) {
      ATTNLAB_DISPATCH(T, Unary)(op, px + i0, py + i0, i1 - i0);
    });
  });
  return y;
}

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gout) {
  const char* name = unary_name(op);
  ATTN_CHECK(gout.defined(), "{} backward: undefined gradient", name);
  const bool use_x = backward_reads_x(op), use_y = backward_reads_y(op);
  ATTN_CHECK(!use_x || x.defined(), "{} backward needs its input x", name);
  ATTN_CHECK(!use_y || y.defined(), "{} backward needs its output y", name);
  const std::string what = fmt::format("{} backward", name);
  for (const Tensor* t : {use_x ? &x : nullptr, use_y ? &y : nullptr}) {
    if (!t) continue;
    check_same_shape(*t, gout, what.c_str());
    check_same_dtype(*t, gout, what.c_str());
  }
  const Tensor xc = use_x ? x.contiguous() : Tensor();
  const Tensor yc = use_y ? y.contiguous() : Tensor();
  const Tensor gc = gout.contiguous();
  Tensor dx = Tensor::empty(gout.shape(), gout.dtype());
  dispatch_dtype(gout.dtype(), [&]<typename T>() {
    const T* px = use_x ? xc.data<T>() : nullptr;
    const T* py = use_y ? yc.data<T>() : nullptr;
    const T* pg = gc.data<T>();
    T* pd = dx.data<T>();
    parallel_blocks(dx.numel(), kBlockElements, 1, [&](int64_t i0, int64_t i1) {
      const T* xi = px ? px + i0 : nullptr;
      const T* yi = py ? py + i0 : nullptr;
      ATTNLAB_DISPATCH(T, UnaryBackward)(op, xi, yi, pg + i0, pd + i0, i1 - i0);
    });
  });
  return dx;
}

}  // namespace attnlab
#endif  // HWY_ONCE
