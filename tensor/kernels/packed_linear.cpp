// packed_linear (tensor/packed_matrix.hpp): out = x · Wᵀ (+ out) with W
// stored as f32, bf16 or int8 + a scale per group of 32. One output element
// is one dot product of a row of x with a row of W, always in this order
// (L = lanes of the target):
//
//   f32, bf16  W widened to f32 in registers; chunks of L columns, even
//              chunks into accumulator a0, odd ones into a1 (two FMA chains
//              in flight); the last partial chunk is zero-padded;
//              result = ReduceSum(a0 + a1).
//   int8       x quantized per group of 32 (quantize_rows); each group's
//              dot product exact in int32 (AVX-512 VNNI vpdpbusd, or AVX2
//              vpmaddubsw + vpmaddwd, or a plain loop on other targets),
//              combined in f32 in int8_dot_reference's order: the same bits
//              on every target.
//
// DotRows<R> takes R rows of x against one row of W, so that a batch reads
// each row of W once (from memory once; the other rows find it in cache);
// every row of x gets the same arithmetic as it would alone (R = 1).

// AVX3_DL (Ice Lake and later, Zen 4: AVX-512 VNNI) is a target Highway 1.0
// compiles only when asked.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
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
  const int8_t* tiles;  // int8: [rows, groups·32], the tile layout
  const float* scales;  // int8: [rows, groups]
  int64_t cols, groups;
};
}  // namespace attnlab::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {

using attnlab::QuantizedRows;
using kernels::PackedRows;

// LoadWeights, ChunkFma and DotRowsPlain (f32 and bf16 rows) are in simd-inl.hpp.

// ------------------------------------------------------------------ int8
// out[r] = the int8 dot product of W's row (tiles w, scales sw) with the
// quantized row r of x, in int8_dot_reference's order (tensor/packed_matrix.hpp):
// per block of up to 16 groups, one i32 lane per group sums the group's
// products exactly; then per lane acc = fma(f32(dot), s_w · s_x, acc); then
// the tree acc_i += acc_(i+8), (i+4), (i+2), (i+1).
struct Int8Rows {  // R quantized rows of x, as the kernel reads them
  const int8_t* const* tiles;
  const float* const* scales;
  const int32_t* const* sums;
};

#if HWY_TARGET == HWY_AVX3_DL
// vpdpbusd (AVX-512 VNNI): acc_i32[l] += Σ_(b<4) u[4l + b] (as u8) · s[4l + b]
// (as s8), without saturation. Highway 1.0 has no op for it and its AVX3_DL
// target does not enable avx512vnni for the compiler: inline assembly.
HWY_INLINE __m512i DotBytes(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}

// The 8 lanes of v summed as the tree (i + 4), (i + 2), (i + 1).
HWY_INLINE float TreeSum8(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_add_ss(a, _mm_shuffle_ps(a, a, 1)));
}

// u8 × s8 wants one side unsigned: w + 128 (w xor 0x80) is, and
// Σ (w + 128) · x = Σ w · x + 128 · Σ x, with Σ x from quantize_rows.
template <size_t R>
HWY_INLINE void DotRowsInt8(const int8_t* w, const float* sw, const Int8Rows& x, int64_t groups,
                            float* out) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R];
  for (size_t r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g0 = 0; g0 < groups; g0 += 16) {
    const int64_t n = std::min<int64_t>(16, groups - g0), width = 4 * n;
    const __mmask64 bytes = n == 16 ? ~__mmask64{0} : (__mmask64{1} << width) - 1;
    const __mmask16 lanes = static_cast<__mmask16>((1u << n) - 1);
    const int64_t at = g0 * kInt8GroupSize;
    __m512i dot[R];
    for (size_t r = 0; r < R; ++r) dot[r] = _mm512_setzero_si512();
    for (int64_t t = 0; t < 8; ++t) {
      const __m512i wv = _mm512_xor_si512(_mm512_maskz_loadu_epi8(bytes, w + at + t * width), flip);
      for (size_t r = 0; r < R; ++r)
        dot[r] = DotBytes(dot[r], wv, _mm512_maskz_loadu_epi8(bytes, x.tiles[r] + at + t * width));
    }
    const __m512 swv = _mm512_maskz_loadu_ps(lanes, sw + g0);
    for (size_t r = 0; r < R; ++r) {
      const __m512i sum = _mm512_maskz_loadu_epi32(lanes, x.sums[r] + g0);
      const __m512i exact = _mm512_sub_epi32(dot[r], _mm512_slli_epi32(sum, 7));
      const __m512 scale = _mm512_mul_ps(swv, _mm512_maskz_loadu_ps(lanes, x.scales[r] + g0));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), scale, acc[r]);
    }
  }
  for (size_t r = 0; r < R; ++r)
    out[r] =
        TreeSum8(_mm256_add_ps(_mm512_castps512_ps256(acc[r]), _mm512_extractf32x8_ps(acc[r], 1)));
}

// Rows of 4 groups (128 columns: baby's d_model) fill a quarter of a block,
// so DotRowsInt8 would run 8 vpdpbusd at a quarter width per row of W. Here
// 4 rows of W share each instruction: a row's tiles (8 slices of 16 bytes,
// 128 bytes) are read as two vectors of 4 slices each, multiplied with x's
// tiles read the same way, and the 16-byte lanes of the 4 rows' results are
// summed in integers (exact, so in any order) into one vector, 128-bit lane
// q holding row q's 4 group dots. From there each lane follows
// int8_dot_reference: fma(f32(dot), s_w · s_x, 0), + 0 (the 12 empty lanes
// of the h = 8 and h = 4 steps of the tree), then (a0 + a2) + (a1 + a3).
template <size_t R>
HWY_INLINE void DotQuadRowsInt8(const int8_t* w, const float* sw, const Int8Rows& x,
                                float (*out)[4]) {
  constexpr int64_t kRowBytes = 4 * kInt8GroupSize;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i wv[4][2];
  for (int64_t q = 0; q < 4; ++q)
    for (int64_t m = 0; m < 2; ++m)
      wv[q][m] = _mm512_xor_si512(_mm512_loadu_si512(w + q * kRowBytes + 64 * m), flip);
  const __m512 swv = _mm512_loadu_ps(sw);  // rows j … j + 3, 4 groups each
  for (size_t r = 0; r < R; ++r) {
    const __m512i x0 = _mm512_loadu_si512(x.tiles[r]), x1 = _mm512_loadu_si512(x.tiles[r] + 64);
    __m512i d[4];
    for (int64_t q = 0; q < 4; ++q)
      d[q] = DotBytes(DotBytes(_mm512_setzero_si512(), wv[q][0], x0), wv[q][1], x1);
    // Lane s·4 + g of d[q]: group g's products over slices s and s + 4.
    const __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i32x4(d[0], d[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                         _mm512_shuffle_i32x4(d[0], d[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i32x4(d[2], d[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                         _mm512_shuffle_i32x4(d[2], d[3], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512i dot = _mm512_add_epi32(_mm512_shuffle_i32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                                         _mm512_shuffle_i32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i sum =
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.sums[r])));
    const __m512i exact = _mm512_sub_epi32(dot, _mm512_slli_epi32(sum, 7));
    const __m512 scale = _mm512_mul_ps(swv, _mm512_broadcast_f32x4(_mm_loadu_ps(x.scales[r])));
    __m512 acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact), scale, _mm512_setzero_ps());
    acc = _mm512_add_ps(acc, _mm512_setzero_ps());
    acc = _mm512_add_ps(acc, _mm512_permute_ps(acc, _MM_SHUFFLE(1, 0, 3, 2)));
    acc = _mm512_add_ps(acc, _mm512_permute_ps(acc, _MM_SHUFFLE(2, 3, 0, 1)));
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, acc);
    for (int64_t q = 0; q < 4; ++q) out[r][q] = lanes[4 * q];
  }
}

#elif HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
// AVX2: vpmaddubsw (u8 × s8 → i16 pairs) on |x| and w with x's sign
// (|pair| ≤ 2 · 127² < 2¹⁵: no saturation), vpmaddwd with ones → i32 lanes
// of 4 products. A block's 16 lanes are two 256-bit halves.
HWY_INLINE float TreeSum8(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_add_ss(a, _mm_shuffle_ps(a, a, 1)));
}

// Lanes [0, n) of 32-bit elements at p (the rest 0); n ≤ 8.
HWY_INLINE __m256i LoadLanes(const void* p, int64_t n, __m256i mask) {
  if (n == 8) return _mm256_loadu_si256(static_cast<const __m256i*>(p));
  return _mm256_maskload_epi32(static_cast<const int*>(p), mask);
}

HWY_INLINE __m256i DotBytes(__m256i acc, __m256i w, __m256i x) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(w, x));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

template <size_t R>
HWY_INLINE void DotRowsInt8(const int8_t* w, const float* sw, const Int8Rows& x, int64_t groups,
                            float* out) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 lo[R], hi[R];
  for (size_t r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < groups; g0 += 16) {
    const int64_t n = std::min<int64_t>(16, groups - g0), width = 4 * n;
    const int64_t nlo = std::min<int64_t>(8, n), nhi = n - nlo;
    const __m256i mlo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nlo)), index);
    const __m256i mhi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nhi)), index);
    const int64_t at = g0 * kInt8GroupSize;
    __m256i dlo[R], dhi[R];
    for (size_t r = 0; r < R; ++r) dlo[r] = dhi[r] = _mm256_setzero_si256();
    for (int64_t t = 0; t < 8; ++t) {
      const int8_t* ws = w + at + t * width;
      const __m256i wlo = LoadLanes(ws, nlo, mlo), whi = LoadLanes(ws + 32, nhi, mhi);
      for (size_t r = 0; r < R; ++r) {
        const int8_t* xs = x.tiles[r] + at + t * width;
        dlo[r] = DotBytes(dlo[r], wlo, LoadLanes(xs, nlo, mlo));
        dhi[r] = DotBytes(dhi[r], whi, LoadLanes(xs + 32, nhi, mhi));
      }
    }
    const __m256 swlo = _mm256_castsi256_ps(LoadLanes(sw + g0, nlo, mlo));
    const __m256 swhi = _mm256_castsi256_ps(LoadLanes(sw + g0 + 8, nhi, mhi));
    for (size_t r = 0; r < R; ++r) {
      const float* sx = x.scales[r] + g0;
      const __m256 slo = _mm256_mul_ps(swlo, _mm256_castsi256_ps(LoadLanes(sx, nlo, mlo)));
      const __m256 shi = _mm256_mul_ps(swhi, _mm256_castsi256_ps(LoadLanes(sx + 8, nhi, mhi)));
      lo[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dlo[r]), slo, lo[r]);
      hi[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dhi[r]), shi, hi[r]);
    }
  }
  for (size_t r = 0; r < R; ++r) out[r] = TreeSum8(_mm256_add_ps(lo[r], hi[r]));
}

#else
// Other targets: the reference loop itself.
template <size_t R>
HWY_INLINE void DotRowsInt8(const int8_t* w, const float* sw, const Int8Rows& x, int64_t groups,
                            float* out) {
  for (size_t r = 0; r < R; ++r)
    out[r] = int8_dot_reference(w, sw, x.tiles[r], x.scales[r], groups);
}
#endif

// Which int8 path this target takes (int8_kernel_name).
const char* Int8KernelName() {
#if HWY_TARGET == HWY_AVX3_DL
  return "avx512-vnni";
#elif HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
  return "avx2";
#else
  return "portable";
#endif
}

// Rows [r0, r0 + R) of x against row j of W.
template <size_t R>
HWY_INLINE void DotRows(const PackedRows& w, int64_t j, const float* x, int64_t ldx,
                        const QuantizedRows* xq, int64_t r0, float* out) {
  if (w.format == WeightFormat::Int8) {
    const int64_t width = xq->groups * kInt8GroupSize;
    const int8_t* tiles[R];
    const float* scales[R];
    const int32_t* sums[R];
    for (size_t r = 0; r < R; ++r) {
      const int64_t row = r0 + static_cast<int64_t>(r);
      tiles[r] = xq->tiles.data() + row * width;
      scales[r] = xq->scales.data() + row * xq->groups;
      sums[r] = xq->sums.data() + row * xq->groups;
    }
    return DotRowsInt8<R>(w.tiles + j * width, w.scales + j * w.groups, {tiles, scales, sums},
                          w.groups, out);
  }
  const float* xs[R];
  for (size_t r = 0; r < R; ++r) xs[r] = x + (r0 + static_cast<int64_t>(r)) * ldx;
  const size_t k = static_cast<size_t>(w.cols);
  if (w.format == WeightFormat::F32) return DotRowsPlain<R>(w.f32 + j * w.cols, xs, k, out);
  return DotRowsPlain<R>(w.bf16 + j * w.cols, xs, k, out);
}

#if HWY_TARGET == HWY_AVX3_DL
// Rows [j, j + 4) of W (4 groups each) against rows [r0, r0 + R) of x.
template <size_t R>
HWY_INLINE void QuadRows(const PackedRows& w, int64_t j, const QuantizedRows& xq, int64_t r0,
                         float (*dots)[4]) {
  const int8_t* tiles[R];
  const float* scales[R];
  const int32_t* sums[R];
  for (size_t r = 0; r < R; ++r) {
    const int64_t row = r0 + static_cast<int64_t>(r);
    tiles[r] = xq.tiles.data() + row * 4 * kInt8GroupSize;
    scales[r] = xq.scales.data() + row * 4;
    sums[r] = xq.sums.data() + row * 4;
  }
  DotQuadRowsInt8<R>(w.tiles + j * 4 * kInt8GroupSize, w.scales + j * 4, {tiles, scales, sums},
                     dots);
}
#endif

// Output columns [j0, j1) of out for all rows of x (int8: xq, x quantized).
void PackedLinearBlock(const PackedRows& w, int64_t j0, int64_t j1, const float* x, int64_t ldx,
                       const QuantizedRows* xq, int64_t rows, float* out, int64_t ldo, float beta) {
  constexpr int64_t R = 4;
#if HWY_TARGET == HWY_AVX3_DL
  if (w.format == WeightFormat::Int8 && w.groups == 4) {
    // Four rows of W at a time (DotQuadRowsInt8), the same bits as one.
    float dots[R][4];
    auto put = [&](int64_t r, int64_t j, float v) {
      float& o = out[r * ldo + j];
      o = beta == 0.0f ? v : o + v;
    };
    for (; j0 + 4 <= j1; j0 += 4) {
      int64_t r0 = 0;
      for (; r0 + R <= rows; r0 += R) {
        QuadRows<R>(w, j0, *xq, r0, dots);
        for (int64_t r = 0; r < R; ++r)
          for (int64_t q = 0; q < 4; ++q) put(r0 + r, j0 + q, dots[r][q]);
      }
      for (; r0 < rows; ++r0) {
        QuadRows<1>(w, j0, *xq, r0, dots);
        for (int64_t q = 0; q < 4; ++q) put(r0, j0 + q, dots[0][q]);
      }
    }
  }
#endif
  for (int64_t j = j0; j < j1; ++j) {
    int64_t r0 = 0;
    float dots[R] = {};
    auto put = [&](int64_t r, float v) {
      float& o = out[r * ldo + j];
      o = beta == 0.0f ? v : o + v;
    };
    for (; r0 + R <= rows; r0 += R) {
      DotRows<R>(w, j, x, ldx, xq, r0, dots);
      for (int64_t r = 0; r < R; ++r) put(r0 + r, dots[r]);
    }
    for (; r0 < rows; ++r0) {
      DotRows<1>(w, j, x, ldx, xq, r0, dots);
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
HWY_EXPORT(Int8KernelName);

std::string_view int8_kernel_name() {
  return HWY_DYNAMIC_DISPATCH(Int8KernelName)();
}

void packed_linear(float* out, int64_t ldo, const float* x, int64_t ldx, int64_t rows,
                   const PackedMatrix& w, float beta) {
  ATTN_CHECK(beta == 0.0f || beta == 1.0f, "packed_linear: beta must be 0 or 1, got {}", beta);
  if (rows <= 0 || w.rows() == 0) return;
  const kernels::PackedRows view{.format = w.format(),
                                 .f32 = w.f32_values().data(),
                                 .bf16 = w.bf16_bits().data(),
                                 .tiles = w.int8_tiles().data(),
                                 .scales = w.int8_scales().data(),
                                 .cols = w.cols(),
                                 .groups = PackedMatrix::groups(w.cols())};
  // Blocks of output columns (rows of W) fixed by the shape: 16 rows of W at
  // least, about kBlockElements weights each.
  // int8: x quantized once, before the threads share W's rows (a buffer per
  // calling thread, kept between calls: a decoded token makes many products).
  thread_local QuantizedRows quantized;
  const QuantizedRows* xq = nullptr;
  if (w.format() == WeightFormat::Int8) {
    quantize_rows(x, ldx, rows, w.cols(), quantized);
    xq = &quantized;
  }
  const int64_t block = std::max<int64_t>(16, kernels::rows_per_block(w.cols()));
  kernels::parallel_blocks(w.rows(), block, w.cols() * rows, [&](int64_t j0, int64_t j1) {
    HWY_DYNAMIC_DISPATCH(PackedLinearBlock)(view, j0, j1, x, ldx, xq, rows, out, ldo, beta);
  });
}

}  // namespace attnlab
#endif  // HWY_ONCE
