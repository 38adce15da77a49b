// RMSNorm kernels: the math is in rms_norm.hpp. Compiled once per SIMD target
// (Highway's foreach_target); HWY_DYNAMIC_DISPATCH picks one at run time.
#include "attnlab/tensor/rms_norm.hpp"

#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/rms_norm.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include "attnlab/tensor/kernels/dispatch.hpp"

HWY_BEFORE_NAMESPACE();
namespace attnlab::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows per chunk of the backward's dw sum (fixed, so the order of additions,
// and thus the bits of dw, do not depend on the number of threads).
constexpr int64_t kChunkRows = 32;
// Below this many elements the kernels run on the calling thread.
constexpr int64_t kParallelElements = int64_t{1} << 16;

// out (N, D), rstd (N) ← x (N, D), weight (D)
template <typename T>
void Forward(T* HWY_RESTRICT out, T* HWY_RESTRICT rstd, const T* HWY_RESTRICT x,
             const T* HWY_RESTRICT weight, int64_t N, int64_t D, T eps) {
  const hn::ScalableTag<T> d;
  const int64_t L = hn::Lanes(d);
#pragma omp parallel for schedule(static) if (N * D >= kParallelElements)
  for (int64_t row = 0; row < N; ++row) {
    const T* xr = x + row * D;
    T* yr = out + row * D;
    auto vsum = hn::Zero(d);
    int64_t c = 0;
    for (; c + L <= D; c += L) {
      const auto xv = hn::LoadU(d, xr + c);
      vsum = hn::MulAdd(xv, xv, vsum);
    }
    T sum_sq = hn::GetLane(hn::SumOfLanes(d, vsum));
    for (; c < D; ++c) sum_sq += xr[c] * xr[c];
    const T r = T(1) / std::sqrt(sum_sq / static_cast<T>(D) + eps);
    if (rstd) rstd[row] = r;
    const auto vr = hn::Set(d, r);
    for (c = 0; c + L <= D; c += L)
      hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, xr + c), vr), hn::LoadU(d, weight + c)), d, yr + c);
    for (; c < D; ++c) yr[c] = xr[c] * r * weight[c];
  }
}

// dx (N, D), dweight (D) ← dout (N, D), x (N, D), weight (D), rstd (N)
template <typename T>
void Backward(T* HWY_RESTRICT dx, T* HWY_RESTRICT dweight, const T* HWY_RESTRICT dout,
              const T* HWY_RESTRICT x, const T* HWY_RESTRICT weight, const T* HWY_RESTRICT rstd,
              int64_t N, int64_t D) {
  const hn::ScalableTag<T> d;
  const int64_t L = hn::Lanes(d);
  const int64_t chunks = (N + kChunkRows - 1) / kChunkRows;
  // partial[chunk] = Σ over the chunk's rows of g ⊙ x̂
  auto partial = hwy::AllocateAligned<T>(dweight ? chunks * D : 0);
  if (dweight) std::fill(partial.get(), partial.get() + chunks * D, T(0));
#pragma omp parallel for schedule(static) if (N * D >= kParallelElements)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    T* dw = dweight ? partial.get() + chunk * D : nullptr;
    for (int64_t row = chunk * kChunkRows; row < std::min(N, (chunk + 1) * kChunkRows); ++row) {
      const T *xr = x + row * D, *gr = dout + row * D;
      T* dxr = dx + row * D;
      const T r = rstd[row];
      // mean(g⊙w⊙x̂) = rstd · Σ g⊙w⊙x / D
      auto vdot = hn::Zero(d);
      int64_t c = 0;
      for (; c + L <= D; c += L)
        vdot = hn::MulAdd(hn::Mul(hn::LoadU(d, gr + c), hn::LoadU(d, weight + c)),
                          hn::LoadU(d, xr + c), vdot);
      T dot = hn::GetLane(hn::SumOfLanes(d, vdot));
      for (; c < D; ++c) dot += gr[c] * weight[c] * xr[c];
      const T mean_gwx = r * dot / static_cast<T>(D);
      // dx = rstd · (g⊙w − x̂ · mean_gwx),  dw += g ⊙ x̂
      const auto vr = hn::Set(d, r), vmean = hn::Set(d, mean_gwx);
      for (c = 0; c + L <= D; c += L) {
        const auto g = hn::LoadU(d, gr + c);
        const auto xhat = hn::Mul(hn::LoadU(d, xr + c), vr);
        const auto gw = hn::Mul(g, hn::LoadU(d, weight + c));
        hn::StoreU(hn::Mul(vr, hn::NegMulAdd(xhat, vmean, gw)), d, dxr + c);
        if (dw) hn::StoreU(hn::MulAdd(g, xhat, hn::LoadU(d, dw + c)), d, dw + c);
      }
      for (; c < D; ++c) {
        const T xhat = xr[c] * r;
        dxr[c] = r * (gr[c] * weight[c] - xhat * mean_gwx);
        if (dw) dw[c] += gr[c] * xhat;
      }
    }
  }
  if (!dweight) return;
  std::fill(dweight, dweight + D, T(0));
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t c = 0; c < D; ++c) dweight[c] += partial[chunk * D + c];
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
void rms_norm_forward(T* out, T* rstd, const T* x, const T* weight, int64_t N, int64_t D, T eps) {
  ATTNLAB_DISPATCH(T, Forward)(out, rstd, x, weight, N, D, eps);
}

template <typename T>
void rms_norm_backward(T* dx, T* dweight, const T* dout, const T* x, const T* weight, const T* rstd,
                       int64_t N, int64_t D) {
  ATTNLAB_DISPATCH(T, Backward)(dx, dweight, dout, x, weight, rstd, N, D);
}

template void rms_norm_forward<float>(float*, float*, const float*, const float*, int64_t, int64_t,
                                      float);
template void rms_norm_forward<double>(double*, double*, const double*, const double*, int64_t,
                                       int64_t, double);
template void rms_norm_backward<float>(float*, float*, const float*, const float*, const float*,
                                       const float*, int64_t, int64_t);
template void rms_norm_backward<double>(double*, double*, const double*, const double*,
                                        const double*, const double*, int64_t, int64_t);

// ------------------------------------------------------------- on tensors
namespace {

void check_weight(const Tensor& x, const Tensor& weight) {
  ATTN_CHECK(x.dim() >= 1, "rms_norm: x must have at least one axis, got shape {}",
             shape_str(x.shape()));
  ATTN_CHECK(weight.dim() == 1 && weight.size(0) == x.size(-1),
             "rms_norm: weight {} must be [D] for x {}", shape_str(weight.shape()),
             shape_str(x.shape()));
  check_same_dtype(x, weight, "rms_norm");
}

Shape row_shape(const Tensor& x) {
  return Shape(x.shape().begin(), x.shape().end() - 1);
}

}  // namespace

Tensor rms_norm_forward(const Tensor& x_in, const Tensor& weight_in, double eps, Tensor* rstd) {
  check_weight(x_in, weight_in);
  ATTN_CHECK(std::isfinite(eps) && eps >= 0, "rms_norm: eps must be finite and ≥ 0, got {}", eps);
  const Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
  const int64_t D = x.size(-1), N = D == 0 ? 0 : x.numel() / D;
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  Tensor r = rstd ? Tensor::empty(row_shape(x), x.dtype()) : Tensor();
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    rms_norm_forward<T>(out.data<T>(), rstd ? r.data<T>() : nullptr, x.data<T>(), weight.data<T>(),
                        N, D, static_cast<T>(eps));
  });
  if (rstd) *rstd = r;
  return out;
}

RmsNormGrads rms_norm_backward(const Tensor& dout_in, const Tensor& x_in, const Tensor& weight_in,
                               const Tensor& rstd_in) {
  check_weight(x_in, weight_in);
  check_same_shape(dout_in, x_in, "rms_norm backward: dout and x");
  ATTN_CHECK(rstd_in.shape() == row_shape(x_in), "rms_norm backward: rstd {} must be {} for x {}",
             shape_str(rstd_in.shape()), shape_str(row_shape(x_in)), shape_str(x_in.shape()));
  check_same_dtype(x_in, dout_in, "rms_norm backward");
  check_same_dtype(x_in, rstd_in, "rms_norm backward");
  const Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
  const Tensor dout = dout_in.contiguous(), rstd = rstd_in.contiguous();
  const int64_t D = x.size(-1), N = D == 0 ? 0 : x.numel() / D;
  RmsNormGrads g{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({D}, x.dtype())};
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    rms_norm_backward<T>(g.dx.data<T>(), g.dweight.data<T>(), dout.data<T>(), x.data<T>(),
                         weight.data<T>(), rstd.data<T>(), N, D);
  });
  return g;
}

}  // namespace attnlab
#endif  // HWY_ONCE
