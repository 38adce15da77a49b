// packed_linear (tensor/packed_matrix.hpp): out = x · Wᵀ (+ out) with W
// stored as f32, bf16 or int8 + a scale per group of 32, widened to f32 in
// registers. One output element is one dot product of a row of x with a row
// of W, always in this order (L = lanes of the target):
//
//   f32, bf16  chunks of L columns, even chunks into accumulator a0, odd ones
//              into a1 (two FMA chains in flight); the last partial chunk is
//              zero-padded; result = ReduceSum(a0 + a1).
//   int8       per group g of 32 columns: the chunks of the group into p0/p1
//              as above (w = f32(q)), then a_(g mod 2) += (p0 + p1) · s_g;
//              result = ReduceSum(a0 + a1).
//
// DotRows<R> takes R rows of x against one row of W, so that a batch reads
// each row of W once (from memory once; the other rows find it in cache);
// every row of x gets the same arithmetic as it would alone (R = 1).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kernels/packed_linear.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "attnlab/tensor/kernels/kernels.hpp"
#include "attnlab/tensor/kernels/simd-inl.hpp"
#include "attnlab/tensor/packed_matrix.hpp"

#ifndef ATTNLAB_PACKED_ROWS_DEFINED
#define ATTNLAB_PACKED_ROWS_DEFINED
namespace attnlab::kernels {
// A packed matrix as the SIMD code sees it: raw pointers, one of the three
// value arrays set.
struct PackedRows {
  WeightFormat format;
  const float* f32;
  const uint16_t* bf16;
  const int8_t* int8;
  const float* scales;  // int8: [rows, groups]
  int64_t cols, groups;
};
}  // namespace attnlab::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {

using kernels::PackedRows;

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
HWY_INLINE hn::Vec<D> LoadWeights(D d, const int8_t* w, size_t c, size_t count) {
  const hn::Rebind<int8_t, D> d8;
  const hn::RebindToSigned<D> di;
  hn::Vec<decltype(d8)> q;
  if (count == hn::Lanes(d)) {
    q = hn::LoadU(d8, w + c);
  } else {
    HWY_ALIGN int8_t buf[kVectorCapacity<float>] = {};
    std::memcpy(buf, w + c, count);
    q = hn::Load(d8, buf);
  }
  return hn::ConvertTo(d, hn::PromoteTo(di, q));
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

// acc[r] += (w · x_r over group g, a group of G = 32 columns) · scale[g].
template <size_t R, class D>
HWY_INLINE void GroupFma(D d, const int8_t* w, const float* scales, const float* const* x, size_t k,
                         size_t g, hn::Vec<D>* acc) {
  using V = hn::Vec<D>;
  const size_t L = hn::Lanes(d), G = static_cast<size_t>(kInt8GroupSize);
  const size_t c0 = g * G, end = std::min(k, c0 + G);
  V p0[R], p1[R];
  for (size_t r = 0; r < R; ++r) p0[r] = p1[r] = hn::Zero(d);
  if (end - c0 == G) {  // a whole group: G / L chunks, L a power of two < G
    for (size_t c = c0; c < end; c += 2 * L) {
      ChunkFma<R>(d, w, x, c, L, p0);
      ChunkFma<R>(d, w, x, c + L, L, p1);
    }
  } else {  // the shorter last group of a row
    bool odd = false;
    for (size_t c = c0; c < end; c += L, odd = !odd)
      ChunkFma<R>(d, w, x, c, std::min(L, end - c), odd ? p1 : p0);
  }
  const V s = hn::Set(d, scales[g]);
  for (size_t r = 0; r < R; ++r) acc[r] = hn::MulAdd(hn::Add(p0[r], p1[r]), s, acc[r]);
}

// out[r] = w · x_r for int8 weights w [k] with scales [groups]: even groups
// into a0, odd ones into a1.
template <size_t R>
HWY_INLINE void DotRowsInt8(const int8_t* w, const float* scales, const float* const* x, size_t k,
                            float* out) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t groups = (k + kInt8GroupSize - 1) / kInt8GroupSize;
  V a0[R], a1[R];
  for (size_t r = 0; r < R; ++r) a0[r] = a1[r] = hn::Zero(d);
  size_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    GroupFma<R>(d, w, scales, x, k, g, a0);
    GroupFma<R>(d, w, scales, x, k, g + 1, a1);
  }
  if (g < groups) GroupFma<R>(d, w, scales, x, k, g, a0);
  for (size_t r = 0; r < R; ++r) out[r] = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0[r], a1[r])));
}

template <size_t R>
HWY_INLINE void DotRows(const PackedRows& w, int64_t j, const float* const* x, float* out) {
  const size_t k = static_cast<size_t>(w.cols);
  switch (w.format) {
    case WeightFormat::F32:
      return DotRowsPlain<R>(w.f32 + j * w.cols, x, k, out);
    case WeightFormat::BF16:
      return DotRowsPlain<R>(w.bf16 + j * w.cols, x, k, out);
    case WeightFormat::Int8:
      return DotRowsInt8<R>(w.int8 + j * w.cols, w.scales + j * w.groups, x, k, out);
  }
}

// Output columns [j0, j1) of out for all rows of x.
void PackedLinearBlock(const PackedRows& w, int64_t j0, int64_t j1, const float* x, int64_t ldx,
                       int64_t rows, float* out, int64_t ldo, float beta) {
  constexpr int64_t R = 4;
  for (int64_t j = j0; j < j1; ++j) {
    int64_t r0 = 0;
    float dots[R] = {};
    auto put = [&](int64_t r, float v) {
      float& o = out[r * ldo + j];
      o = beta == 0.0f ? v : o + v;
    };
    for (; r0 + R <= rows; r0 += R) {
      const float* xs[R] = {x + r0 * ldx, x + (r0 + 1) * ldx, x + (r0 + 2) * ldx,
                            x + (r0 + 3) * ldx};
      DotRows<R>(w, j, xs, dots);
      for (int64_t r = 0; r < R; ++r) put(r0 + r, dots[r]);
    }
    for (; r0 < rows; ++r0) {
      const float* xs[1] = {x + r0 * ldx};
      DotRows<1>(w, j, xs, dots);
      put(r0, dots[0]);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {

HWY_EXPORT(PackedLinearBlock);

void packed_linear(float* out, int64_t ldo, const float* x, int64_t ldx, int64_t rows,
                   const PackedMatrix& w, float beta) {
  ATTN_CHECK(beta == 0.0f || beta == 1.0f, "packed_linear: beta must be 0 or 1, got {}", beta);
  if (rows <= 0 || w.rows() == 0) return;
  const kernels::PackedRows view{.format = w.format(),
                                 .f32 = w.f32_values().data(),
                                 .bf16 = w.bf16_bits().data(),
                                 .int8 = w.int8_values().data(),
                                 .scales = w.int8_scales().data(),
                                 .cols = w.cols(),
                                 .groups = PackedMatrix::groups(w.cols())};
  // Blocks of output columns (rows of W) fixed by the shape: 16 rows of W at
  // least, about kBlockElements weights each.
  const int64_t block = std::max<int64_t>(16, kernels::rows_per_block(w.cols()));
  kernels::parallel_blocks(w.rows(), block, w.cols() * rows, [&](int64_t j0, int64_t j1) {
    HWY_DYNAMIC_DISPATCH(PackedLinearBlock)(view, j0, j1, x, ldx, rows, out, ldo, beta);
  });
}

}  // namespace attnlab
#endif  // HWY_ONCE
