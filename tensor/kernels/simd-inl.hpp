// SIMD building blocks shared by the kernel files (per-target code, compiled
// once for every Highway target: include it after <hwy/highway.h> inside a
// file that uses foreach_target.h). Each helper takes the descriptor `d`, like
// Highway's own ops, and works for float and double lanes.
//
// Tails. A length that is not a multiple of the vector width ends in a
// partial vector. We copy it into a full-width stack buffer, run the very
// same vector code on the buffer and copy back only the real elements: no
// lane ever reads or writes past the end, and every element gets exactly the
// same arithmetic wherever it sits (so results do not depend on how an array
// is split into blocks between threads).

// Per-target include guard: the usual Highway toggle.
#if defined(ATTNLAB_TENSOR_KERNELS_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ATTNLAB_TENSOR_KERNELS_SIMD_INL_H_
#undef ATTNLAB_TENSOR_KERNELS_SIMD_INL_H_
#else
#define ATTNLAB_TENSOR_KERNELS_SIMD_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Room for one vector of T on this target.
template <typename T>
inline constexpr size_t kVectorCapacity = HWY_MAX_BYTES / sizeof(T);

// Loads the n < Lanes(d) elements at p; the other lanes hold `pad`.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE hn::Vec<D> LoadTail(D d, const T* p, size_t n, T pad) {
  HWY_ALIGN T buf[kVectorCapacity<T>];
  for (size_t i = 0; i < hn::Lanes(d); ++i) buf[i] = pad;
  std::memcpy(buf, p, n * sizeof(T));
  return hn::Load(d, buf);
}

// Stores the first n < Lanes(d) lanes of v at p.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void StoreTail(D d, hn::Vec<D> v, T* p, size_t n) {
  HWY_ALIGN T buf[kVectorCapacity<T>];
  hn::Store(v, d, buf);
  std::memcpy(p, buf, n * sizeof(T));
}

// out[i] = f(x[i]) for i < n, one vector at a time. out may be x.
template <class D, class F, typename T = hn::TFromD<D>>
HWY_INLINE void Map1(D d, const T* x, T* out, size_t n, F f) {
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(f(hn::LoadU(d, x + i)), d, out + i);
  if (i < n) StoreTail(d, f(LoadTail(d, x + i, n - i, T(1))), out + i, n - i);
}

// out[i] = f(a[i], b[i]). out may be a or b.
template <class D, class F, typename T = hn::TFromD<D>>
HWY_INLINE void Map2(D d, const T* a, const T* b, T* out, size_t n, F f) {
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(f(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  if (i < n) {
    const size_t r = n - i;
    StoreTail(d, f(LoadTail(d, a + i, r, T(1)), LoadTail(d, b + i, r, T(1))), out + i, r);
  }
}

// out[i] = f(a[i], b[i], c[i]). out may be any of the inputs.
template <class D, class F, typename T = hn::TFromD<D>>
HWY_INLINE void Map3(D d, const T* a, const T* b, const T* c, T* out, size_t n, F f) {
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(f(hn::LoadU(d, a + i), hn::LoadU(d, b + i), hn::LoadU(d, c + i)), d, out + i);
  if (i < n) {
    const size_t r = n - i;
    StoreTail(
        d, f(LoadTail(d, a + i, r, T(1)), LoadTail(d, b + i, r, T(1)), LoadTail(d, c + i, r, T(1))),
        out + i, r);
  }
}

// e^x over the whole range. Highway's Exp is only valid up to x ≈ 104 (f32)
// or 706 (f64) and maps NaN to 0; here large x gives +inf and NaN stays NaN,
// as std::exp does.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V ExpFull(D d, V x) {
  using T = hn::TFromD<D>;
  // Above these e^x overflows anyway (log of the largest finite value ≈ 88.72 / 709.78).
  const V limit = hn::Set(d, static_cast<T>(sizeof(T) == 4 ? 89.0 : 710.0));
  const V e = hn::Exp(d, hn::Min(x, limit));
  return hn::IfThenElse(hn::IsNaN(x), x, hn::IfThenElse(hn::Gt(x, limit), hn::Inf(d), e));
}

// Natural log with std::log's special values: log(0) = -inf, log(x<0) = NaN,
// log(inf) = inf, log(NaN) = NaN. (Highway's Log is only valid on (0, max].)
template <class D, class V = hn::Vec<D>>
HWY_INLINE V LogFull(D d, V x) {
  const V zero = hn::Zero(d);
  V y = hn::Log(d, x);
  y = hn::IfThenElse(hn::Eq(x, zero), hn::Neg(hn::Inf(d)), y);
  y = hn::IfThenElse(hn::Eq(x, hn::Inf(d)), x, y);
  return hn::IfThenElse(hn::Or(hn::Lt(x, zero), hn::IsNaN(x)), hn::NaN(d), y);
}

// Σ over a row of n elements, given as vectors: full(i) is the vector of
// elements [i, i + lanes) and tail(i, count) the last partial one (its unused
// lanes 0). Four accumulators keep the adds independent; they are emptied
// into a running total every block of ~1024 elements, so no accumulator adds
// up more than a few hundred terms. (One long f32 accumulator drifts: the sum
// of 100k softmax terms on a 1-lane target was off by 5e-5.)
template <class D, class Full, class Tail>
HWY_INLINE hn::TFromD<D> BlockedSum(D d, size_t n, Full full, Tail tail) {
  const size_t lanes = hn::Lanes(d), group = 4 * lanes;
  const size_t block = std::max<size_t>(1, 1024 / group) * group;
  auto total = hn::Zero(d);
  size_t i = 0;
  while (i + group <= n) {
    const size_t end = std::min(n - (n - i) % group, i + block);
    auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    for (; i < end; i += group) {
      s0 = hn::Add(s0, full(i));
      s1 = hn::Add(s1, full(i + lanes));
      s2 = hn::Add(s2, full(i + 2 * lanes));
      s3 = hn::Add(s3, full(i + 3 * lanes));
    }
    total = hn::Add(total, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)));
  }
  auto rest = hn::Zero(d);
  for (; i + lanes <= n; i += lanes) rest = hn::Add(rest, full(i));
  if (i < n) rest = hn::Add(rest, tail(i, n - i));
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(total, rest)));
}

// Sum of x[0..n).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE T RowSum(D d, const T* HWY_RESTRICT x, size_t n) {
  return BlockedSum(
      d, n, [d, x](size_t i) { return hn::LoadU(d, x + i); },
      [d, x](size_t i, size_t count) { return LoadTail(d, x + i, count, T(0)); });
}

// Maximum of x[0..n) (-inf when n is 0). With NaNs in x the result is
// unspecified (it depends on the target).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE T RowMax(D d, const T* HWY_RESTRICT x, size_t n) {
  const size_t lanes = hn::Lanes(d);
  const T lowest = -std::numeric_limits<T>::infinity();
  auto m0 = hn::Set(d, lowest), m1 = m0, m2 = m0, m3 = m0;
  size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    m0 = hn::Max(m0, hn::LoadU(d, x + i));
    m1 = hn::Max(m1, hn::LoadU(d, x + i + lanes));
    m2 = hn::Max(m2, hn::LoadU(d, x + i + 2 * lanes));
    m3 = hn::Max(m3, hn::LoadU(d, x + i + 3 * lanes));
  }
  for (; i + lanes <= n; i += lanes) m0 = hn::Max(m0, hn::LoadU(d, x + i));
  if (i < n) m1 = hn::Max(m1, LoadTail(d, x + i, n - i, lowest));
  return hn::GetLane(hn::MaxOfLanes(d, hn::Max(hn::Max(m0, m1), hn::Max(m2, m3))));
}

// ------------------------------------------ dot products with f32 or bf16 rows
// Used by packed_linear (a row of W against rows of x) and by the decoder's
// bf16 KV cache (tensor/bf16_rows.hpp: a cached key against query rows).
// f32 lanes only.

// Up to Lanes(d) weights of row `w` at column c as f32 (count < Lanes: the
// rest are 0).
template <class D>
HWY_INLINE hn::Vec<D> LoadWeights(D d, const float* w, size_t c, size_t count) {
  if (count == hn::Lanes(d)) return hn::LoadU(d, w + c);
  return LoadTail(d, w + c, count, 0.0f);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadWeights(D d, const uint16_t* w, size_t c, size_t count) {
  const hn::Rebind<uint16_t, D> d16;
  const hn::RebindToUnsigned<D> du;
  hn::Vec<decltype(d16)> bits;
  if (count == hn::Lanes(d)) {
    bits = hn::LoadU(d16, w + c);
  } else {
    HWY_ALIGN uint16_t buf[kVectorCapacity<float>] = {};
    std::memcpy(buf, w + c, count * sizeof(uint16_t));
    bits = hn::Load(d16, buf);
  }
  // bf16 is the upper half of an f32: widening is a shift.
  return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du, bits)));
}
template <class D>
HWY_INLINE hn::Vec<D> LoadActivations(D d, const float* x, size_t c, size_t count) {
  if (count == hn::Lanes(d)) return hn::LoadU(d, x + c);
  return LoadTail(d, x + c, count, 0.0f);
}

// acc[r] += w[c, c + count) · x_r[c, c + count), lane-wise.
template <size_t R, class D, typename W>
HWY_INLINE void ChunkFma(D d, const W* w, const float* const* x, size_t c, size_t count,
                         hn::Vec<D>* acc) {
  const auto wv = LoadWeights(d, w, c, count);
  for (size_t r = 0; r < R; ++r)
    acc[r] = hn::MulAdd(wv, LoadActivations(d, x[r], c, count), acc[r]);
}

// out[r] = w · x_r for f32 or bf16 weights w [k].
template <size_t R, typename W>
HWY_INLINE void DotRowsPlain(const W* w, const float* const* x, size_t k, float* out) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t L = hn::Lanes(d);
  V a0[R], a1[R];
  for (size_t r = 0; r < R; ++r) a0[r] = a1[r] = hn::Zero(d);
  size_t c = 0;
  for (; c + 2 * L <= k; c += 2 * L) {
    ChunkFma<R>(d, w, x, c, L, a0);
    ChunkFma<R>(d, w, x, c + L, L, a1);
  }
  if (c + L <= k) {
    ChunkFma<R>(d, w, x, c, L, a0);
    c += L;
  }
  if (c < k) ChunkFma<R>(d, w, x, c, k - c, a1);
  for (size_t r = 0; r < R; ++r) out[r] = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0[r], a1[r])));
}

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#endif  // ATTNLAB_TENSOR_KERNELS_SIMD_INL_H_
