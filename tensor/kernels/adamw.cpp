// One AdamW step over a parameter and its moments, in place (Loshchilov &
// Hutter, "Decoupled Weight Decay Regularization"; see tensor/ops.hpp):
//   m = β1·m + (1−β1)·g
//   v = β2·v + (1−β2)·g²
//   p -= lr · ( m̂ / (√v̂ + ε) + wd·p ),   m̂ = m/(1−β1^t),  v̂ = v/(1−β2^t)
// The weight decay uses p before the step, so it is the same as PyTorch's
// p *= 1 − lr·wd followed by the Adam step.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kernels/adamw.cpp"
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

using kernels::AdamWScalars;

// One vector of the update at p, g, m, v (which may point into a tail buffer).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void AdamWVector(D d, const AdamWScalars<T>& s, T* p, const T* g, T* m, T* v) {
  const auto vg = hn::LoadU(d, g);
  const auto vp = hn::LoadU(d, p);
  const auto vm =
      hn::MulAdd(hn::Set(d, s.beta1), hn::LoadU(d, m), hn::Mul(hn::Set(d, s.one_minus_beta1), vg));
  const auto vv = hn::MulAdd(hn::Set(d, s.beta2), hn::LoadU(d, v),
                             hn::Mul(hn::Set(d, s.one_minus_beta2), hn::Mul(vg, vg)));
  const auto m_hat = hn::Mul(vm, hn::Set(d, s.inv_bias1));
  const auto v_hat = hn::Mul(vv, hn::Set(d, s.inv_bias2));
  const auto adam = hn::Div(m_hat, hn::Add(hn::Sqrt(v_hat), hn::Set(d, s.eps)));
  const auto update = hn::MulAdd(hn::Set(d, s.wd), vp, adam);
  hn::StoreU(hn::NegMulAdd(hn::Set(d, s.lr), update, vp), d, p);
  hn::StoreU(vm, d, m);
  hn::StoreU(vv, d, v);
}

template <typename T>
void AdamW(T* p, const T* g, T* m, T* v, size_t n, const AdamWScalars<T>& s) {
  const hn::ScalableTag<T> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) AdamWVector(d, s, p + i, g + i, m + i, v + i);
  if (i < n) {  // the tail, through buffers (see simd-inl.hpp)
    const size_t r = n - i;
    HWY_ALIGN T bp[kVectorCapacity<T>] = {}, bg[kVectorCapacity<T>] = {};
    HWY_ALIGN T bm[kVectorCapacity<T>] = {}, bv[kVectorCapacity<T>] = {};
    std::memcpy(bp, p + i, r * sizeof(T));
    std::memcpy(bg, g + i, r * sizeof(T));
    std::memcpy(bm, m + i, r * sizeof(T));
    std::memcpy(bv, v + i, r * sizeof(T));
    AdamWVector(d, s, bp, bg, bm, bv);
    std::memcpy(p + i, bp, r * sizeof(T));
    std::memcpy(m + i, bm, r * sizeof(T));
    std::memcpy(v + i, bv, r * sizeof(T));
  }
}

ATTNLAB_KERNEL_F32_F64(AdamW);

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {

ATTNLAB_EXPORT_F32_F64(AdamW);

void adamw_update_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  ATTN_CHECK(param.defined() && grad.defined() && m.defined() && v.defined(),
             "adamw: undefined tensor");
  check_same_shape(param, grad, "adamw: param and grad");
  check_same_shape(param, m, "adamw: param and m");
  check_same_shape(param, v, "adamw: param and v");
  check_same_dtype(param, grad, "adamw: param and grad");
  check_same_dtype(param, m, "adamw: param and m");
  check_same_dtype(param, v, "adamw: param and v");
  ATTN_CHECK(
      param.is_contiguous() && grad.is_contiguous() && m.is_contiguous() && v.is_contiguous(),
      "adamw: param, grad, m and v of shape {} must all be contiguous", shape_str(param.shape()));
  ATTN_CHECK(s.step >= 1, "adamw: step is {}, it counts from 1", s.step);
  if (param.numel() == 0) return;
  dispatch_dtype(param.dtype(), [&]<typename T>() {
    const double t = static_cast<double>(s.step);
    const kernels::AdamWScalars<T> k{
        static_cast<T>(s.lr),
        static_cast<T>(s.beta1),
        static_cast<T>(1.0 - s.beta1),
        static_cast<T>(s.beta2),
        static_cast<T>(1.0 - s.beta2),
        static_cast<T>(s.eps),
        static_cast<T>(s.weight_decay),
        static_cast<T>(1.0 / (1.0 - std::pow(s.beta1, t))),
        static_cast<T>(1.0 / (1.0 - std::pow(s.beta2, t))),
    };
    T* pp = param.data<T>();
    const T* pg = grad.data<T>();
    T* pm = m.data<T>();
    T* pv = v.data<T>();
    // Every element is updated on its own, so blocks may be of any size: small
    // enough that a 128×128 weight still splits among two threads (it is
    // bound by memory: 28 bytes per element read and written).
    constexpr int64_t kAdamWBlock = 4096;
    kernels::parallel_blocks(param.numel(), kAdamWBlock, 4, [&](int64_t i0, int64_t i1) {
      ATTNLAB_DISPATCH(T, AdamW)(pp + i0, pg + i0, pm + i0, pv + i0, i1 - i0, k);
    });
  });
}

}  // namespace attnlab
#endif  // HWY_ONCE
