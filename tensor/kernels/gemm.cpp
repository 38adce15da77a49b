// gemm_f32 (kernels.hpp): C [m, n] = alpha · op(A) · op(B) + beta · C in f32,
// row-major, with one fixed order of accumulation, whatever the target:
//
//   acc = 0;  for p = 0, 1, …, k−1:  acc = fma(op(A)[i, p], op(B)[p, j], acc)
//   C[i, j] = fma(beta, C[i, j], alpha · acc)      (beta = 0: alpha · acc,
//                                                   and C is never read)
//
// Every vector lane holds a different element of C, so neither the vector
// width nor the blocking changes an element's sequence of FMAs: the bits are
// those of the scalar loop above on every CPU with FMA (an FMA rounds once,
// the same everywhere; tests/tensor/gemm_test.cpp holds every target to it).
// Targets without a native FMA (SSE4, SSSE3, EMU128, SCALAR: Highway's MulAdd
// is a multiply then an add there, two roundings) run that scalar loop with
// std::fma instead: slow, but the same bits.
//
// How it is fast. C is cut into panels of W = kVectors vectors of columns.
// Each panel of op(B) (k × W) is packed into a contiguous buffer (rows of B
// ldb apart would share cache sets; transposed B is gathered; zero past n).
// A tile of kRows rows × W columns of C keeps its kRows · kVectors
// accumulators in registers: per p, kVectors loads of B, kRows broadcasts of
// op(A) (read in place, or packed when it will not stay in L2 between
// panels), kRows · kVectors FMAs. A long k goes in passes of at most kPass,
// so that the part of the panel every row tile reads stays cached; between
// passes the accumulators wait in a buffer, as f32, and go on with the same
// sequence. C is written once, at the end: never zeroed, never read for
// beta = 0.
//
// The FMAs are explicit (hn::MulAdd, std::fma): a multiply and an add that
// the compiler is free to fuse or not would make the bits depend on it.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kernels/gemm.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include <hwy/aligned_allocator.h>

#include "attnlab/tensor/kernels/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One element of C from its accumulator: the contract's last line.
inline float FinishScalar(float acc, float alpha, float beta, const float* c) {
  const float scaled = alpha * acc;
  return beta == 0.0f ? scaled : std::fma(beta, *c, scaled);
}

// The contract as a plain loop: targets without a native FMA.
[[maybe_unused]] void GemmScalar(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                                 const float* a, size_t lda, const float* b, size_t ldb, float beta,
                                 float* c, size_t ldc) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (size_t p = 0; p < k; ++p)
        acc = std::fma(ta ? a[p * lda + i] : a[i * lda + p], tb ? b[j * ldb + p] : b[p * ldb + j],
                       acc);
      c[i * ldc + j] = FinishScalar(acc, alpha, beta, c + i * ldc + j);
    }
}

#if HWY_NATIVE_FMA

// Tile shape: accumulators plus the kVectors loads of B and one broadcast of
// A must fit the register file (32 vectors on AVX-512, 16 on AVX2).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr size_t kRows = 8, kVectors = 3;  // 24 accumulators
#else
constexpr size_t kRows = 6, kVectors = 2;  // 12 accumulators
#endif

// op(A) as the tile reads it: element (i, p) at a[i · row + p · step].
struct AView {
  const float* a;
  size_t row, step;
};

// The part [p0, p1) of k that a pass over a panel's rows covers, and where
// the accumulators wait between passes (a tile's R rows at part + r · width).
struct KRange {
  size_t p0, p1, k;
  float* part;
  size_t width;
};

// C[i0 .. i0+R, j0 .. j0+cols) from op(B)'s panel b (row p at b + p · ldb,
// V vectors wide; cols ≤ V · lanes, lanes past cols are never stored), over
// p in kr: the accumulators start at 0 (p0 = 0) or where the last pass left
// them, and go on to C (p1 = k) or back to kr.part. Stored and reloaded as
// f32, they continue the same sequence of FMAs.
template <size_t R, size_t V>
HWY_INLINE void Tile(AView av, const float* HWY_RESTRICT b, size_t ldb, const KRange& kr,
                     float alpha, float beta, float* c, size_t ldc, size_t cols) {
  const hn::ScalableTag<float> d;
  using Vec = hn::Vec<decltype(d)>;
  const size_t L = hn::Lanes(d);
  Vec acc[R][V];
  for (size_t r = 0; r < R; ++r)
    for (size_t v = 0; v < V; ++v)
      acc[r][v] = kr.p0 == 0 ? hn::Zero(d) : hn::Load(d, kr.part + r * kr.width + v * L);
  const float* a_row[R];
  for (size_t r = 0; r < R; ++r) a_row[r] = av.a + r * av.row;
  for (size_t p = kr.p0; p < kr.p1; ++p) {
    Vec bv[V];
    for (size_t v = 0; v < V; ++v) bv[v] = hn::LoadU(d, b + p * ldb + v * L);
    for (size_t r = 0; r < R; ++r) {
      const Vec x = hn::Set(d, a_row[r][p * av.step]);
      for (size_t v = 0; v < V; ++v) acc[r][v] = hn::MulAdd(x, bv[v], acc[r][v]);
    }
  }
  if (kr.p1 < kr.k) {
    for (size_t r = 0; r < R; ++r)
      for (size_t v = 0; v < V; ++v) hn::Store(acc[r][v], d, kr.part + r * kr.width + v * L);
    return;
  }
  const Vec va = hn::Set(d, alpha), vb = hn::Set(d, beta);
  for (size_t r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    for (size_t v = 0; v < V; ++v) {
      const size_t j = v * L;
      if (j >= cols) break;
      const size_t count = std::min(L, cols - j);
      Vec out = hn::Mul(va, acc[r][v]);
      if (count == L) {
        if (beta != 0.0f) out = hn::MulAdd(vb, hn::LoadU(d, cr + j), out);
        hn::StoreU(out, d, cr + j);
      } else {
        HWY_ALIGN float buf[HWY_MAX_BYTES / sizeof(float)];
        hn::Store(out, d, buf);
        for (size_t t = 0; t < count; ++t)
          cr[j + t] = beta == 0.0f ? buf[t] : std::fma(beta, cr[j + t], buf[t]);
      }
    }
  }
}

// Rows [i, i + rows) of op(A) for a tile: read in place, or from packed
// micro-panels (a tile's rows side by side, row p of the tile at p · rows).
struct ARows {
  AView in_place;
  const float* packed;  // null: in place
  size_t k;
  AView tile(size_t i, size_t rows) const {
    if (!packed) return {in_place.a + i * in_place.row, in_place.row, in_place.step};
    return {packed + i * k, 1, rows};
  }
};

// A tile of the `rows` < R left at the bottom of C: Tile<rows, V>.
template <size_t R, size_t V>
HWY_INLINE void RestTile(size_t rows, AView av, const float* b, size_t ldb, const KRange& kr,
                         float alpha, float beta, float* c, size_t ldc, size_t cols) {
  if constexpr (R > 1) {
    if (rows < R) return RestTile<R - 1, V>(rows, av, b, ldb, kr, alpha, beta, c, ldc, cols);
  }
  Tile<R, V>(av, b, ldb, kr, alpha, beta, c, ldc, cols);
}

// All rows of C against one panel V vectors wide: tiles of kRows, then the
// rest of the rows in one smaller tile.
template <size_t V>
void PanelRows(const ARows& ar, size_t m, const float* b, size_t ldb, KRange kr, float alpha,
               float beta, float* c, size_t ldc, size_t cols) {
  float* const part = kr.part;
  size_t i = 0;
  for (; i + kRows <= m; i += kRows) {
    kr.part = part ? part + i * kr.width : nullptr;
    Tile<kRows, V>(ar.tile(i, kRows), b, ldb, kr, alpha, beta, c + i * ldc, ldc, cols);
  }
  if (i == m) return;
  kr.part = part ? part + i * kr.width : nullptr;
  RestTile<kRows - 1, V>(m - i, ar.tile(i, m - i), b, ldb, kr, alpha, beta, c + i * ldc, ldc, cols);
}

// PanelRows<vectors> for a panel of `vectors` ≤ V vectors (the last panel
// takes only the vectors it needs).
template <size_t V = kVectors>
void PanelRowsOfWidth(size_t vectors, const ARows& ar, size_t m, const float* b, size_t ldb,
                      const KRange& kr, float alpha, float beta, float* c, size_t ldc,
                      size_t cols) {
  if constexpr (V > 1) {
    if (vectors < V)
      return PanelRowsOfWidth<V - 1>(vectors, ar, m, b, ldb, kr, alpha, beta, c, ldc, cols);
  }
  PanelRows<V>(ar, m, b, ldb, kr, alpha, beta, c, ldc, cols);
}

// out[p · width + j] = src[j · ld + p] for p < k, j < count: `count` rows of
// src, each read along k, side by side; a vector of j at a time by a gather.
// By blocks of 16 p, so that every cache line of src is used whole while it
// is in L1, even when the rows are 4 KiB apart and share one set of it.
void PackTransposed(const float* src, size_t ld, size_t count, size_t k, size_t width,
                    float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const hn::RebindToSigned<decltype(d)> di;
  const size_t L = hn::Lanes(d);
  // The gather's offsets are int32: rows further apart than that go one by one.
  const size_t gathered = ld * L <= size_t(INT32_MAX) ? count : 0;
  const auto rows = hn::Mul(hn::Iota(di, 0), hn::Set(di, static_cast<int32_t>(ld)));
  constexpr size_t kBlock = 16;
  for (size_t p0 = 0; p0 < k; p0 += kBlock) {
    const size_t p1 = std::min(k, p0 + kBlock);
    size_t j = 0;
    for (; j + L <= gathered; j += L) {
      const float* base = src + j * ld;
      for (size_t p = p0; p < p1; ++p)
        hn::StoreU(hn::GatherIndex(d, base + p, rows), d, out + p * width + j);
    }
    for (; j < count; ++j) {
      const float* row = src + j * ld;
      for (size_t p = p0; p < p1; ++p) out[p * width + j] = row[p];
    }
  }
}

// op(B)[0..k, j0 .. j0+cols) into out, row p at out + p · width, zero past cols.
void PackPanel(bool tb, const float* b, size_t ldb, size_t k, size_t j0, size_t cols, size_t width,
               float* HWY_RESTRICT out) {
  if (tb) {
    PackTransposed(b + j0 * ldb, ldb, cols, k, width, out);  // op(B)[p, j] = B[j, p]
  } else {
    for (size_t p = 0; p < k; ++p)
      std::memcpy(out + p * width, b + p * ldb + j0, cols * sizeof(float));
  }
  if (cols < width)
    for (size_t p = 0; p < k; ++p) std::fill(out + p * width + cols, out + (p + 1) * width, 0.0f);
}

// All of op(A) [m, k] as ARows::tile reads it packed: tiles of kRows rows,
// then the rest, each k × rows.
void PackA(bool ta, const float* a, size_t lda, size_t m, size_t k, float* HWY_RESTRICT out) {
  for (size_t i = 0; i < m; i += kRows) {
    const size_t rows = std::min(kRows, m - i);
    float* o = out + i * k;
    if (ta) {  // op(A)[i, p] = A[p, i]: the tile's rows are side by side in A's row p
      for (size_t p = 0; p < k; ++p)
        std::memcpy(o + p * rows, a + p * lda + i, rows * sizeof(float));
    } else {
      PackTransposed(a + i * lda, lda, rows, k, rows, o);
    }
  }
}

// A thread's scratch buffer of at least `size` floats, kept between calls.
struct Scratch {
  hwy::AlignedFreeUniquePtr<float[]> data;
  size_t size = 0;
  float* get(size_t need) {
    if (size < need) {
      data = hwy::AllocateAligned<float>(need);
      if (!data) throw std::bad_alloc();
      size = need;
    }
    return data.get();
  }
};

void GemmF32(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float* a,
             size_t lda, const float* b, size_t ldb, float beta, float* c, size_t ldc) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d), width = kVectors * L;
  thread_local Scratch panel, packed_a, partial;
  // op(A) is read once per panel. When it stays in L2 between panels (up to
  // kPackA floats) it is read in place; a larger one comes from L3 or memory
  // each time, and packed it is one contiguous stream the prefetchers follow,
  // instead of kRows rows lda apart, or (trans_a) a new row of A per p.
  constexpr size_t kPackA = size_t(1) << 18;
  ARows ar{ta ? AView{a, 1, lda} : AView{a, lda, 1}, nullptr, k};
  if (n > width && m * k >= kPackA) {
    ar.packed = packed_a.get(m * k);
    PackA(ta, a, lda, m, k, packed_a.data.get());
  }
  // A long k is taken in passes of at most kPass, so that the part of the
  // panel that all row tiles read in turn stays in L2 with room to spare; the
  // accumulators wait in `partial` between passes.
  constexpr size_t kPass = 768;
  const size_t passes = (k + kPass - 1) / kPass, pass = passes ? (k + passes - 1) / passes : 0;
  float* part = passes > 1 ? partial.get(m * width) : nullptr;
  float* pb = panel.get(k * width);
  for (size_t j0 = 0; j0 < n; j0 += width) {
    // op(B)'s panel is always packed: rows of B ldb apart share cache sets too.
    const size_t cols = std::min(width, n - j0);
    PackPanel(tb, b, ldb, k, j0, cols, width, pb);
    const size_t vectors = (cols + L - 1) / L;
    for (size_t p0 = 0; p0 < k || p0 == 0; p0 += pass) {
      const KRange kr{p0, std::min(k, p0 + pass), k, part, width};
      PanelRowsOfWidth(vectors, ar, m, pb, width, kr, alpha, beta, c + j0, ldc, cols);
      if (pass == 0) break;  // k = 0: one pass, C = beta · C
    }
  }
}

#else  // no native FMA: the contract's loop

void GemmF32(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float* a,
             size_t lda, const float* b, size_t ldb, float beta, float* c, size_t ldc) {
  GemmScalar(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#endif  // HWY_NATIVE_FMA

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab::kernels {

HWY_EXPORT(GemmF32);

void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
              int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const auto s = [](int64_t x) { return static_cast<size_t>(x); };
  HWY_DYNAMIC_DISPATCH(GemmF32)
  (trans_a, trans_b, s(m), s(n), s(std::max<int64_t>(k, 0)), alpha, a, s(lda), b, s(ldb), beta, c,
   s(ldc));
}

}  // namespace attnlab::kernels
#endif  // HWY_ONCE
