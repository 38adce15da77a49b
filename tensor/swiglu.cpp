// SwiGLU kernels: the math is in swiglu.hpp. Compiled once per SIMD target
// (Highway's foreach_target); HWY_DYNAMIC_DISPATCH picks one at run time.
#include "attnlab/tensor/swiglu.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/swiglu.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include "attnlab/tensor/kernels/dispatch.hpp"
#include "attnlab/tensor/kernels/simd-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace attnlab::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Elements per block of work; blocks are split over OpenMP threads when there
// are more than one. Fixed, so which thread does what depends only on n.
constexpr int64_t kBlock = int64_t{1} << 14;

// s = 1 / (1 + e^(−a)), with e^x's special values (ExpFull): a → −inf gives s = 0.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V Sigmoid(D d, V a) {
  const V one = hn::Set(d, hn::TFromD<D>(1));
  return hn::Div(one, hn::Add(one, ExpFull(d, hn::Neg(a))));
}

template <typename T>
T SigmoidScalar(T a) {
  return T(1) / (T(1) + std::exp(-a));
}

// y[i] = a[i] · s[i] · b[i] for i in [begin, end)
template <typename T>
void ForwardRange(T* HWY_RESTRICT y, const T* HWY_RESTRICT a, const T* HWY_RESTRICT b,
                  int64_t begin, int64_t end) {
  const hn::ScalableTag<T> d;
  const int64_t L = hn::Lanes(d);
  int64_t i = begin;
  for (; i + L <= end; i += L) {
    const auto va = hn::LoadU(d, a + i);
    hn::StoreU(hn::Mul(hn::Mul(va, Sigmoid(d, va)), hn::LoadU(d, b + i)), d, y + i);
  }
  for (; i < end; ++i) y[i] = a[i] * SigmoidScalar(a[i]) * b[i];
}

// da[i] = g·b·s·(1 + a·(1 − s)), db[i] = g·a·s for i in [begin, end)
template <typename T>
void BackwardRange(T* HWY_RESTRICT da, T* HWY_RESTRICT db, const T* HWY_RESTRICT g,
                   const T* HWY_RESTRICT a, const T* HWY_RESTRICT b, int64_t begin, int64_t end) {
  const hn::ScalableTag<T> d;
  const int64_t L = hn::Lanes(d);
  const auto one = hn::Set(d, T(1));
  int64_t i = begin;
  for (; i + L <= end; i += L) {
    const auto va = hn::LoadU(d, a + i), vg = hn::LoadU(d, g + i);
    const auto s = Sigmoid(d, va);
    const auto silu = hn::Mul(va, s);
    // s·(1 + a·(1 − s)) = s + silu·(1 − s)
    const auto dsilu = hn::MulAdd(silu, hn::Sub(one, s), s);
    hn::StoreU(hn::Mul(hn::Mul(vg, hn::LoadU(d, b + i)), dsilu), d, da + i);
    hn::StoreU(hn::Mul(vg, silu), d, db + i);
  }
  for (; i < end; ++i) {
    const T s = SigmoidScalar(a[i]), silu = a[i] * s;
    da[i] = g[i] * b[i] * (s + silu * (T(1) - s));
    db[i] = g[i] * silu;
  }
}

template <typename T>
void Forward(T* y, const T* a, const T* b, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t k = 0; k < blocks; ++k)
    ForwardRange(y, a, b, k * kBlock, std::min(n, (k + 1) * kBlock));
}

template <typename T>
void Backward(T* da, T* db, const T* g, const T* a, const T* b, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t k = 0; k < blocks; ++k)
    BackwardRange(da, db, g, a, b, k * kBlock, std::min(n, (k + 1) * kBlock));
}

ATTNLAB_KERNEL_F32_F64(Forward);
ATTNLAB_KERNEL_F32_F64(Backward);

}  // namespace attnlab::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {

ATTNLAB_EXPORT_F32_F64(Forward);
ATTNLAB_EXPORT_F32_F64(Backward);

template <typename T>
void swiglu_forward(T* y, const T* a, const T* b, int64_t n) {
  ATTNLAB_DISPATCH(T, Forward)(y, a, b, n);
}

template <typename T>
void swiglu_backward(T* da, T* db, const T* g, const T* a, const T* b, int64_t n) {
  ATTNLAB_DISPATCH(T, Backward)(da, db, g, a, b, n);
}

template void swiglu_forward<float>(float*, const float*, const float*, int64_t);
template void swiglu_forward<double>(double*, const double*, const double*, int64_t);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*,
                                     int64_t);
template void swiglu_backward<double>(double*, double*, const double*, const double*, const double*,
                                      int64_t);

Tensor swiglu_forward(const Tensor& gate_in, const Tensor& up_in) {
  check_same_shape(gate_in, up_in, "swiglu: gate and up");
  check_same_dtype(gate_in, up_in, "swiglu");
  const Tensor a = gate_in.contiguous(), b = up_in.contiguous();
  Tensor y = Tensor::empty(a.shape(), a.dtype());
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    swiglu_forward<T>(y.data<T>(), a.data<T>(), b.data<T>(), a.numel());
  });
  return y;
}

SwiGluGrads swiglu_backward(const Tensor& dout_in, const Tensor& gate_in, const Tensor& up_in) {
  check_same_shape(gate_in, up_in, "swiglu backward: gate and up");
  check_same_shape(dout_in, gate_in, "swiglu backward: dout and gate");
  check_same_dtype(gate_in, up_in, "swiglu backward");
  check_same_dtype(gate_in, dout_in, "swiglu backward");
  const Tensor a = gate_in.contiguous(), b = up_in.contiguous(), g = dout_in.contiguous();
  SwiGluGrads grads{Tensor::empty(a.shape(), a.dtype()), Tensor::empty(a.shape(), a.dtype())};
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    swiglu_backward<T>(grads.dgate.data<T>(), grads.dup.data<T>(), g.data<T>(), a.data<T>(),
                       b.data<T>(), a.numel());
  });
  return grads;
}

}  // namespace attnlab
#endif  // HWY_ONCE
