// Cross-entropy kernels: the math is in cross_entropy.hpp. Compiled once per
// SIMD target (Highway's foreach_target); HWY_DYNAMIC_DISPATCH picks one at
// run time.
#include "attnlab/tensor/cross_entropy.hpp"

#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/cross_entropy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include "attnlab/tensor/kernels/dispatch.hpp"

#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace attnlab::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Below this many logits the kernels run on the calling thread.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// losses (N), lse (N) ← logits (N, V), targets (N)
template <typename T>
void Forward(T* HWY_RESTRICT losses, T* HWY_RESTRICT lse, const T* HWY_RESTRICT logits,
             const int32_t* HWY_RESTRICT targets, int64_t N, int64_t V) {
  const hn::ScalableTag<T> d;
  const int64_t L = hn::Lanes(d);
#pragma omp parallel for schedule(static) if (N * V >= kParallelElements)
  for (int64_t row = 0; row < N; ++row) {
    const T* x = logits + row * V;
    auto vmax = hn::Set(d, -std::numeric_limits<T>::infinity());
    int64_t c = 0;
    for (; c + L <= V; c += L) vmax = hn::Max(vmax, hn::LoadU(d, x + c));
    T max = hn::GetLane(hn::MaxOfLanes(d, vmax));
    for (; c < V; ++c) max = std::max(max, x[c]);
    const auto vm = hn::Set(d, max);
    auto vsum = hn::Zero(d);
    for (c = 0; c + L <= V; c += L)
      vsum = hn::Add(vsum, hn::Exp(d, hn::Sub(hn::LoadU(d, x + c), vm)));
    T sum = hn::GetLane(hn::SumOfLanes(d, vsum));
    for (; c < V; ++c) sum += std::exp(x[c] - max);
    lse[row] = max + std::log(sum);
    if (losses) losses[row] = lse[row] - x[targets[row]];
  }
}

// dlogits (N, V) ← logits (N, V), targets (N), lse (N); each row's share of dloss is dloss / N.
template <typename T>
void Backward(T* HWY_RESTRICT dlogits, const T* HWY_RESTRICT logits,
              const int32_t* HWY_RESTRICT targets, const T* HWY_RESTRICT lse, int64_t N, int64_t V,
              T dloss) {
  const hn::ScalableTag<T> d;
  const int64_t L = hn::Lanes(d);
  const T g = dloss / static_cast<T>(N);
  const auto vg = hn::Set(d, g);
#pragma omp parallel for schedule(static) if (N * V >= kParallelElements)
  for (int64_t row = 0; row < N; ++row) {
    const T* x = logits + row * V;
    T* dx = dlogits + row * V;
    const auto vlse = hn::Set(d, lse[row]);
    int64_t c = 0;
    for (; c + L <= V; c += L)
      hn::StoreU(hn::Mul(hn::Exp(d, hn::Sub(hn::LoadU(d, x + c), vlse)), vg), d, dx + c);
    for (; c < V; ++c) dx[c] = std::exp(x[c] - lse[row]) * g;
    dx[targets[row]] -= g;
  }
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
void cross_entropy_forward(T* losses, T* lse, const T* logits, const int32_t* targets, int64_t N,
                           int64_t V) {
  ATTNLAB_DISPATCH(T, Forward)(losses, lse, logits, targets, N, V);
}

template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const int32_t* targets, const T* lse,
                            int64_t N, int64_t V, T dloss) {
  ATTNLAB_DISPATCH(T, Backward)(dlogits, logits, targets, lse, N, V, dloss);
}

template void cross_entropy_forward<float>(float*, float*, const float*, const int32_t*, int64_t,
                                           int64_t);
template void cross_entropy_forward<double>(double*, double*, const double*, const int32_t*,
                                            int64_t, int64_t);
template void cross_entropy_backward<float>(float*, const float*, const int32_t*, const float*,
                                            int64_t, int64_t, float);
template void cross_entropy_backward<double>(double*, const double*, const int32_t*, const double*,
                                             int64_t, int64_t, double);

// ------------------------------------------------------------- on tensors
namespace {

// Rows and classes of logits [..., V], after checking the targets against them.
std::pair<int64_t, int64_t> check_targets(const Tensor& logits, std::span<const int32_t> targets,
                                          const char* what) {
  ATTN_CHECK(logits.dim() >= 1, "{}: logits must be [..., V], got shape {}", what,
             shape_str(logits.shape()));
  const int64_t V = logits.size(-1), N = V == 0 ? 0 : logits.numel() / V;
  ATTN_CHECK(V > 0, "{}: logits {} have no classes", what, shape_str(logits.shape()));
  ATTN_CHECK(static_cast<int64_t>(targets.size()) == N, "{}: {} targets for {} rows of logits {}",
             what, targets.size(), N, shape_str(logits.shape()));
  for (int64_t i = 0; i < N; ++i)
    ATTN_CHECK(targets[i] >= 0 && targets[i] < V,
               "{}: target {} of row {} is outside [0, {}) (logits {})", what, targets[i], i, V,
               shape_str(logits.shape()));
  return {N, V};
}

}  // namespace

CrossEntropyResult cross_entropy_forward(const Tensor& logits_in,
                                         std::span<const int32_t> targets) {
  const auto [N, V] = check_targets(logits_in, targets, "cross_entropy");
  ATTN_CHECK(N > 0, "cross_entropy: the mean over 0 rows is undefined (logits {})",
             shape_str(logits_in.shape()));
  const Tensor logits = logits_in.contiguous();
  CrossEntropyResult r{Tensor(), Tensor::empty({N}, logits.dtype())};
  dispatch_dtype(logits.dtype(), [&]<typename T>() {
    auto losses = hwy::AllocateAligned<T>(N);
    cross_entropy_forward<T>(losses.get(), r.lse.data<T>(), logits.data<T>(), targets.data(), N, V);
    double total = 0;
    for (int64_t i = 0; i < N; ++i) total += losses[i];
    r.loss = Tensor::scalar(total / static_cast<double>(N), logits.dtype());
  });
  return r;
}

Tensor cross_entropy_backward(const Tensor& logits_in, std::span<const int32_t> targets,
                              const Tensor& lse_in, double dloss) {
  const auto [N, V] = check_targets(logits_in, targets, "cross_entropy backward");
  ATTN_CHECK(lse_in.shape() == Shape{N}, "cross_entropy backward: lse {} must be [{}]",
             shape_str(lse_in.shape()), N);
  check_same_dtype(logits_in, lse_in, "cross_entropy backward");
  const Tensor logits = logits_in.contiguous(), lse = lse_in.contiguous();
  Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype());
  dispatch_dtype(logits.dtype(), [&]<typename T>() {
    cross_entropy_backward<T>(dlogits.data<T>(), logits.data<T>(), targets.data(), lse.data<T>(), N,
                              V, static_cast<T>(dloss));
  });
  return dlogits;
}

}  // namespace attnlab
#endif  // HWY_ONCE
