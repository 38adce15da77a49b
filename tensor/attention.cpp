// Causal attention kernels: the math is in attention.hpp.
//
// Everything is built from one small GEMM on tiles, C (+)= A·B, where A is
// read through any (row, column) strides — so a transposed tile costs
// nothing — and B and C by unit-stride rows. Scores q·kᵀ need kᵀ with
// unit-stride rows, so each task first transposes its head's keys (and, in
// backward, values) into a zero-padded [d, Tk] buffer: O(T·d) work next to
// the O(T²·d) of the products.
// Inside a tile that crosses the diagonal, each product skips, by blocks of
// rows, what the causal mask zeroes (Causal below).
//
// This file is compiled once per SIMD target (Highway's foreach_target) and
// HWY_DYNAMIC_DISPATCH picks the best one for this CPU at run time.
#include "attnlab/tensor/attention.hpp"

#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/attention.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include "attnlab/tensor/kernels/dispatch.hpp"

#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace attnlab::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Queries per query tile and keys per key tile: a 64×64 tile of scores and
// the 64-row slices of q, k, v it reads stay in L1/L2.
constexpr size_t kTile = 64;
static_assert(kTile * sizeof(float) % HWY_MAX_BYTES == 0, "a tile row is whole vectors");

// Tasks below this many multiply-adds run on the calling thread.
constexpr int64_t kParallelWork = int64_t{1} << 17;

// ---------------------------------------------------------------- tile GEMM
// C (+)= A·B for A [M, K], B [K, N], C [M, N]: element (i, k) of A is
// a[i·a_rs + k·a_cs], row k of B starts at b + k·ldb, row i of C at c + i·ldc.
// A block of kRows rows × kVecs vectors of C stays in registers while k runs.
// Two FMA ports with a latency of 4 cycles need at least 8 independent
// accumulators; AVX-512's 32 registers hold 16 (8 rows × 2 vectors, which
// also covers a head width of 32 floats), the 16 of AVX2 and SSE hold 8.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kRows = 8;
#else
constexpr size_t kRows = 4;
#endif
constexpr size_t kVecs = 2;

template <size_t kR, size_t kV, bool kAccumulate, class D, typename T = hn::TFromD<D>>
HWY_INLINE void GemmBlock(D d, size_t K, const T* HWY_RESTRICT a, ptrdiff_t a_rs, ptrdiff_t a_cs,
                          const T* HWY_RESTRICT b, size_t ldb, T* HWY_RESTRICT c, size_t ldc) {
  const size_t L = hn::Lanes(d);
  hn::Vec<D> acc[kR][kV];
  for (size_t r = 0; r < kR; ++r)
    for (size_t v = 0; v < kV; ++v) {
      if constexpr (kAccumulate)
        acc[r][v] = hn::LoadU(d, c + r * ldc + v * L);
      else
        acc[r][v] = hn::Zero(d);
    }
  for (size_t k = 0; k < K; ++k) {
    hn::Vec<D> bk[kV];
    for (size_t v = 0; v < kV; ++v) bk[v] = hn::LoadU(d, b + k * ldb + v * L);
    for (size_t r = 0; r < kR; ++r) {
      const auto ark = hn::Set(d, a[r * a_rs + k * a_cs]);
      for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::MulAdd(ark, bk[v], acc[r][v]);
    }
  }
  for (size_t r = 0; r < kR; ++r)
    for (size_t v = 0; v < kV; ++v) hn::StoreU(acc[r][v], d, c + r * ldc + v * L);
}

// Which entries of a tile product the causal mask leaves nonzero. Query row r
// of a tile sees key column c iff c ≤ r + diag, where diag is the position of
// the tile's first query minus that of its first key. Inside a diagonal tile
// about half of every product is masked; each product skips its masked part by
// blocks of rows (at T = 64 a head is one diagonal tile, so this halves the
// work). Skipped inner terms are exact zeros (the masked p and ds are stored
// as 0), so skipping them leaves every sum as it was.
enum class Causal {
  kColumns,   // C [queries, keys], scores: row r needs columns c ≤ r + diag
  kInnerEnd,  // A [queries, keys]·B [keys, d]: row r needs inner k ≤ r + diag (p·v, ds·k)
  kInnerBegin,  // A [keys, queries]·B [queries, d]: key row c needs inner k ≥ c − diag (pᵀ·dout)
};

// kR rows of C, rows i … i + kR − 1 of the product: whole vectors first, then
// the columns left over one by one.
template <size_t kR, bool kAccumulate, Causal kCausal, class D, typename T = hn::TFromD<D>>
HWY_INLINE void GemmRows(D d, size_t N, size_t K, const T* a, ptrdiff_t a_rs, ptrdiff_t a_cs,
                         const T* b, size_t ldb, T* c, size_t ldc, size_t i, int64_t diag) {
  static_assert(kCausal == Causal::kColumns || kAccumulate,
                "a masked inner range adds nothing: only a sum into C may skip it");
  const size_t L = hn::Lanes(d);
  const int64_t columns = static_cast<int64_t>(N), inner = static_cast<int64_t>(K);
  // One past the last key the block's last row sees (kColumns, kInnerEnd).
  const int64_t end = static_cast<int64_t>(i + kR) + diag;
  if constexpr (kCausal == Causal::kColumns) {
    // Whole vectors: the row kernels after the product mask the columns past each row's last.
    const size_t visible = static_cast<size_t>(std::clamp<int64_t>(end, 0, columns));
    N = std::min(N, (visible + L - 1) / L * L);
    if (N == 0) return;  // rows that see no key: the row kernels zero them
  } else if constexpr (kCausal == Causal::kInnerEnd) {
    K = static_cast<size_t>(std::clamp<int64_t>(end, 0, inner));
  } else if constexpr (kCausal == Causal::kInnerBegin) {
    // The block's first key row is seen by the most queries: from i − diag on.
    const size_t begin =
        static_cast<size_t>(std::clamp<int64_t>(static_cast<int64_t>(i) - diag, 0, inner));
    a += begin * a_cs;
    b += begin * ldb;
    K -= begin;
  }
  size_t j = 0;
  for (; j + kVecs * L <= N; j += kVecs * L)
    GemmBlock<kR, kVecs, kAccumulate>(d, K, a, a_rs, a_cs, b + j, ldb, c + j, ldc);
  for (; j + L <= N; j += L)
    GemmBlock<kR, 1, kAccumulate>(d, K, a, a_rs, a_cs, b + j, ldb, c + j, ldc);
  for (; j < N; ++j)
    for (size_t r = 0; r < kR; ++r) {
      T sum = kAccumulate ? c[r * ldc + j] : T(0);
      for (size_t k = 0; k < K; ++k) sum += a[r * a_rs + k * a_cs] * b[k * ldb + j];
      c[r * ldc + j] = sum;
    }
}

// C (+)= A·B as in GemmBlock, skipping what the causal mask zeroes (diag: Causal).
template <bool kAccumulate, Causal kCausal, typename T>
void Gemm(size_t M, size_t N, size_t K, const T* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const T* b,
          size_t ldb, T* c, size_t ldc, int64_t diag) {
  const hn::ScalableTag<T> d;
  size_t i = 0;
  for (; i + kRows <= M; i += kRows)
    GemmRows<kRows, kAccumulate, kCausal>(d, N, K, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc,
                                          ldc, i, diag);
  if constexpr (kRows > 4)
    for (; i + 4 <= M; i += 4)
      GemmRows<4, kAccumulate, kCausal>(d, N, K, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc,
                                        i, diag);
  for (; i < M; ++i)
    GemmRows<1, kAccumulate, kCausal>(d, N, K, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc,
                                      i, diag);
}

// ---------------------------------------------------------------- helpers
// dst[c·ld + t] = src[t·stride + c] for t < rows, c < cols; zero for rows ≤ t < ld.
// f32 goes in 4×4 blocks through four 128-bit registers, in two rounds of
// interleaves (pairs of rows, then pairs of those pairs): a scalar copy of
// one element a cycle was 11% of the attention's time at baby's shapes. The
// leftovers (and f64, for the gradchecks) go one element at a time.
template <typename T>
void TransposeRows(T* HWY_RESTRICT dst, size_t ld, const T* HWY_RESTRICT src, int64_t stride,
                   size_t rows, size_t cols) {
  size_t rows4 = 0, cols4 = 0;  // the part done in blocks
#if HWY_TARGET != HWY_SCALAR
  if constexpr (std::is_same_v<T, float>) {
    const hn::Full128<float> d4;
    const hn::Repartition<uint64_t, decltype(d4)> d2;
    rows4 = rows / 4 * 4;
    cols4 = cols / 4 * 4;
    for (size_t t = 0; t < rows4; t += 4)
      for (size_t c = 0; c < cols4; c += 4) {
        const float* in = src + t * stride + c;  // rows x, y, z, w of the block
        const auto x = hn::LoadU(d4, in), y = hn::LoadU(d4, in + stride);
        const auto z = hn::LoadU(d4, in + 2 * stride), w = hn::LoadU(d4, in + 3 * stride);
        const auto xy01 = hn::BitCast(d2, hn::InterleaveLower(d4, x, y));  // x0 y0 x1 y1
        const auto zw01 = hn::BitCast(d2, hn::InterleaveLower(d4, z, w));  // z0 w0 z1 w1
        const auto xy23 = hn::BitCast(d2, hn::InterleaveUpper(d4, x, y));  // x2 y2 x3 y3
        const auto zw23 = hn::BitCast(d2, hn::InterleaveUpper(d4, z, w));  // z2 w2 z3 w3
        float* out = dst + c * ld + t;
        hn::StoreU(hn::BitCast(d4, hn::InterleaveLower(d2, xy01, zw01)), d4, out);  // x0 y0 z0 w0
        hn::StoreU(hn::BitCast(d4, hn::InterleaveUpper(d2, xy01, zw01)), d4, out + ld);
        hn::StoreU(hn::BitCast(d4, hn::InterleaveLower(d2, xy23, zw23)), d4, out + 2 * ld);
        hn::StoreU(hn::BitCast(d4, hn::InterleaveUpper(d2, xy23, zw23)), d4, out + 3 * ld);
      }
  }
#endif
  for (size_t t = 0; t < rows; ++t)
    for (size_t c = t < rows4 ? cols4 : 0; c < cols; ++c) dst[c * ld + t] = src[t * stride + c];
  for (size_t c = 0; c < cols; ++c) std::fill(dst + c * ld + rows, dst + (c + 1) * ld, T(0));
}

template <typename T>
T Dot(const T* HWY_RESTRICT a, const T* HWY_RESTRICT b, size_t n) {
  const hn::ScalableTag<T> d;
  const size_t L = hn::Lanes(d);
  auto sum = hn::Zero(d);
  size_t i = 0;
  for (; i + L <= n; i += L) sum = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), sum);
  T total = hn::GetLane(hn::SumOfLanes(d, sum));
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}

// How many of the n keys j0 … j0+n−1 the query at position pos sees.
inline size_t VisibleKeys(int64_t pos, int64_t j0, size_t n) {
  return static_cast<size_t>(std::clamp<int64_t>(pos - j0 + 1, 0, static_cast<int64_t>(n)));
}

// One row of a score tile through the online softmax. s holds q·k for kTile
// keys, of which the first `valid` are visible. Scales them, raises the
// running max to cover them, and leaves p = e^(scale·s − max) in s (zero past
// `valid`). Returns e^(old max − new max), the factor by which the row's sum
// (updated here) and its output accumulator (by the caller) shrink.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE T OnlineSoftmaxRow(D d, T* HWY_RESTRICT s, size_t valid, T scale, T& row_max,
                              T& row_sum) {
  const size_t L = hn::Lanes(d);
  const auto vscale = hn::Set(d, scale);
  const auto neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());
  auto vmax = neg_inf;
  for (size_t j = 0; j < valid; j += L) {
    const auto x = hn::Mul(hn::LoadU(d, s + j), vscale);
    hn::StoreU(x, d, s + j);
    vmax = hn::Max(vmax, hn::IfThenElse(hn::FirstN(d, valid - j), x, neg_inf));
  }
  const T new_max = std::max(row_max, hn::GetLane(hn::MaxOfLanes(d, vmax)));
  const auto vnew_max = hn::Set(d, new_max);
  auto vsum = hn::Zero(d);
  size_t j = 0;
  for (; j < valid; j += L) {
    const auto p = hn::IfThenElseZero(hn::FirstN(d, valid - j),
                                      hn::Exp(d, hn::Sub(hn::LoadU(d, s + j), vnew_max)));
    hn::StoreU(p, d, s + j);
    vsum = hn::Add(vsum, p);
  }
  for (; j < kTile; j += L) hn::StoreU(hn::Zero(d), d, s + j);
  const T alpha = std::exp(row_max - new_max);  // 0 on the first tile (row_max = −inf)
  row_sum = row_sum * alpha + hn::GetLane(hn::SumOfLanes(d, vsum));
  row_max = new_max;
  return alpha;
}

// One row of the backward tiles: s (q·k) becomes p = e^(scale·s − lse), and
// dp (dout·v) becomes ds = scale · p ⊙ (dp − delta); both zero past `valid`.
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void GradientRow(D d, T* HWY_RESTRICT s, T* HWY_RESTRICT dp, size_t valid, T scale,
                            T lse, T delta) {
  const size_t L = hn::Lanes(d);
  const auto vscale = hn::Set(d, scale), vlse = hn::Set(d, lse), vdelta = hn::Set(d, delta);
  size_t j = 0;
  for (; j < valid; j += L) {
    const auto p = hn::IfThenElseZero(hn::FirstN(d, valid - j),
                                      hn::Exp(d, hn::MulSub(hn::LoadU(d, s + j), vscale, vlse)));
    hn::StoreU(p, d, s + j);
    hn::StoreU(hn::Mul(hn::Mul(p, hn::Sub(hn::LoadU(d, dp + j), vdelta)), vscale), d, dp + j);
  }
  for (; j < kTile; j += L) {
    hn::StoreU(hn::Zero(d), d, s + j);
    hn::StoreU(hn::Zero(d), d, dp + j);
  }
}

// Keys rounded up to whole tiles: the width of the transposed kᵀ, vᵀ buffers.
inline size_t PaddedKeys(const AttentionDims& dims) {
  return (static_cast<size_t>(dims.kv_len) + kTile - 1) / kTile * kTile;
}

// Work of one whole call, in multiply-adds, for the decision to use threads.
inline int64_t Work(const AttentionDims& dims) {
  return dims.batch * dims.heads * dims.q_len * dims.kv_len * (dims.qk_dim + dims.v_dim);
}

// ------------------------------------------------------------------- forward
// out (B, Tq, H, dv), lse (B, H, Tq) ← q (B, Tq, H, dk), k (B, Tk, Hkv, dk), v (B, Tk, Hkv, dv)
template <typename T>
void ForwardHead(HeadsView<T> out, T* lse, HeadsView<const T> q, HeadsView<const T> k,
                 HeadsView<const T> v, const AttentionDims& dims, T scale, int64_t b, int64_t h,
                 T* kt, T* s, T* o) {
  const hn::ScalableTag<T> d;
  const int64_t Tq = dims.q_len, Tk = dims.kv_len, offset = Tk - Tq;
  const size_t dk = dims.qk_dim, dv = dims.v_dim, ld = PaddedKeys(dims);
  const int64_t kvh = h / (dims.heads / dims.kv_heads);
  const T* qh = q.data + b * q.batch_stride + h * q.head_stride;
  const T* kh = k.data + b * k.batch_stride + kvh * k.head_stride;
  const T* vh = v.data + b * v.batch_stride + kvh * v.head_stride;
  T* oh = out.data + b * out.batch_stride + h * out.head_stride;
  TransposeRows(kt, ld, kh, k.token_stride, Tk, dk);

  for (int64_t i0 = 0; i0 < Tq; i0 += kTile) {
    const size_t m = std::min<int64_t>(kTile, Tq - i0);
    const int64_t last_pos = offset + i0 + static_cast<int64_t>(m) - 1;
    T row_max[kTile], row_sum[kTile];
    std::fill(row_max, row_max + m, -std::numeric_limits<T>::infinity());
    std::fill(row_sum, row_sum + m, T(0));
    std::fill(o, o + m * dv, T(0));
    for (int64_t j0 = 0; j0 <= last_pos; j0 += kTile) {
      const size_t n = std::min<int64_t>(kTile, Tk - j0);
      // s = q_tile · k_tileᵀ   (m × kTile; columns past Tk read the zero padding)
      const int64_t diag = offset + i0 - j0;  // query row r sees key columns c ≤ r + diag
      Gemm<false, Causal::kColumns>(m, kTile, dk, qh + i0 * q.token_stride, q.token_stride, 1,
                                    kt + j0, ld, s, kTile, diag);
      for (size_t r = 0; r < m; ++r) {
        T* srow = s + r * kTile;
        const size_t valid = VisibleKeys(offset + i0 + static_cast<int64_t>(r), j0, n);
        if (valid == 0) {  // a row of the diagonal tile that comes before all its keys
          std::fill(srow, srow + kTile, T(0));
          continue;
        }
        const T alpha = OnlineSoftmaxRow(d, srow, valid, scale, row_max[r], row_sum[r]);
        if (alpha != T(1))
          for (size_t c = 0; c < dv; ++c) o[r * dv + c] *= alpha;
      }
      // o += p · v_tile   (m × dv)
      Gemm<true, Causal::kInnerEnd>(m, dv, n, s, kTile, 1, vh + j0 * v.token_stride, v.token_stride,
                                    o, dv, diag);
    }
    for (size_t r = 0; r < m; ++r) {
      const T inv_sum = T(1) / row_sum[r];
      T* orow = oh + (i0 + static_cast<int64_t>(r)) * out.token_stride;
      for (size_t c = 0; c < dv; ++c) orow[c] = o[r * dv + c] * inv_sum;
      if (lse) lse[(b * dims.heads + h) * Tq + i0 + r] = row_max[r] + std::log(row_sum[r]);
    }
  }
}

template <typename T>
void Forward(HeadsView<T> out, T* lse, HeadsView<const T> q, HeadsView<const T> k,
             HeadsView<const T> v, const AttentionDims& dims, T scale) {
  const int64_t tasks = dims.batch * dims.heads;
  if (tasks == 0 || dims.q_len == 0) return;
#pragma omp parallel if (Work(dims) >= kParallelWork)
  {
    auto kt = hwy::AllocateAligned<T>(dims.qk_dim * PaddedKeys(dims));
    auto s = hwy::AllocateAligned<T>(kTile * kTile);
    auto o = hwy::AllocateAligned<T>(kTile * dims.v_dim);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task)
      ForwardHead(out, lse, q, k, v, dims, scale, task / dims.heads, task % dims.heads, kt.get(),
                  s.get(), o.get());
  }
}

// ------------------------------------------------------------------ backward
// dq (B, Tq, H, dk), dk (B, Tk, Hkv, dk), dv (B, Tk, Hkv, dv)
//   ← dout (B, Tq, H, dv) and the forward's q, k, v, out, lse (B, H, Tq).
// One task is one (batch, KV head): it owns the dk, dv rows of that head and
// the dq rows of the query heads that read it.
template <typename T>
struct BackwardScratch {
  explicit BackwardScratch(const AttentionDims& dims)
      : kt(hwy::AllocateAligned<T>(dims.qk_dim * PaddedKeys(dims))),
        vt(hwy::AllocateAligned<T>(dims.v_dim * PaddedKeys(dims))),
        p(hwy::AllocateAligned<T>(kTile * kTile)),
        ds(hwy::AllocateAligned<T>(kTile * kTile)),
        dk_tile(hwy::AllocateAligned<T>(kTile * dims.qk_dim)),
        dv_tile(hwy::AllocateAligned<T>(kTile * dims.v_dim)),
        delta(hwy::AllocateAligned<T>(dims.heads / dims.kv_heads * dims.q_len)) {}
  hwy::AlignedFreeUniquePtr<T[]> kt, vt;  // this head's kᵀ [dk, Tk], vᵀ [dv, Tk], zero-padded
  hwy::AlignedFreeUniquePtr<T[]> p, ds;   // one tile of probabilities and of their gradient
  hwy::AlignedFreeUniquePtr<T[]> dk_tile, dv_tile;  // gradients of one key tile
  hwy::AlignedFreeUniquePtr<T[]> delta;  // D_i = dout_i · out_i of each query head of the group
};

template <typename T>
void BackwardKvHead(HeadsView<T> dq, HeadsView<T> dk, HeadsView<T> dv, HeadsView<const T> dout,
                    HeadsView<const T> q, HeadsView<const T> k, HeadsView<const T> v,
                    HeadsView<const T> out, const T* lse, const AttentionDims& dims, T scale,
                    int64_t b, int64_t kvh, BackwardScratch<T>& w) {
  const hn::ScalableTag<T> d;
  const int64_t Tq = dims.q_len, Tk = dims.kv_len, offset = Tk - Tq;
  const int64_t group = dims.heads / dims.kv_heads;
  const size_t dkd = dims.qk_dim, dvd = dims.v_dim, ld = PaddedKeys(dims);
  const T* kh = k.data + b * k.batch_stride + kvh * k.head_stride;
  const T* vh = v.data + b * v.batch_stride + kvh * v.head_stride;
  TransposeRows(w.kt.get(), ld, kh, k.token_stride, Tk, dkd);
  TransposeRows(w.vt.get(), ld, vh, v.token_stride, Tk, dvd);

  // Row offsets of query head h = kvh·group + g in each [B, T, heads, d] operand.
  auto head = [&](const auto& view, int64_t g) {
    return view.data + b * view.batch_stride + (kvh * group + g) * view.head_stride;
  };
  for (int64_t g = 0; g < group; ++g) {
    const T *doh = head(dout, g), *oh = head(out, g);
    T* dqh = head(dq, g);
    for (int64_t i = 0; i < Tq; ++i) {
      w.delta[g * Tq + i] = Dot(doh + i * dout.token_stride, oh + i * out.token_stride, dvd);
      std::fill(dqh + i * dq.token_stride, dqh + i * dq.token_stride + dkd, T(0));
    }
  }

  T *p = w.p.get(), *ds = w.ds.get(), *dk_tile = w.dk_tile.get(), *dv_tile = w.dv_tile.get();
  for (int64_t j0 = 0; j0 < Tk; j0 += kTile) {
    const size_t n = std::min<int64_t>(kTile, Tk - j0);
    std::fill(dk_tile, dk_tile + n * dkd, T(0));
    std::fill(dv_tile, dv_tile + n * dvd, T(0));
    const int64_t first_query = std::max<int64_t>(0, j0 - offset);  // the first that sees key j0
    for (int64_t g = 0; g < group; ++g) {
      const T *qh = head(q, g), *doh = head(dout, g);
      T* dqh = head(dq, g);
      const T* lse_h = lse + (b * dims.heads + kvh * group + g) * Tq;
      for (int64_t i0 = first_query; i0 < Tq; i0 += kTile) {
        const size_t m = std::min<int64_t>(kTile, Tq - i0);
        const T* q_tile = qh + i0 * q.token_stride;
        const T* do_tile = doh + i0 * dout.token_stride;
        // s = q_tile · k_tileᵀ,  dp = dout_tile · v_tileᵀ   (m × kTile)
        const int64_t diag = offset + i0 - j0;  // query row r sees key columns c ≤ r + diag
        Gemm<false, Causal::kColumns>(m, kTile, dkd, q_tile, q.token_stride, 1, w.kt.get() + j0, ld,
                                      p, kTile, diag);
        Gemm<false, Causal::kColumns>(m, kTile, dvd, do_tile, dout.token_stride, 1, w.vt.get() + j0,
                                      ld, ds, kTile, diag);
        for (size_t r = 0; r < m; ++r) {
          const int64_t i = i0 + static_cast<int64_t>(r);
          GradientRow(d, p + r * kTile, ds + r * kTile, VisibleKeys(offset + i, j0, n), scale,
                      lse_h[i], w.delta[g * Tq + i]);
        }
        // dv_tile += pᵀ · dout_tile,  dk_tile += dsᵀ · q_tile   (n × d; pᵀ read by strides)
        Gemm<true, Causal::kInnerBegin>(n, dvd, m, p, 1, kTile, do_tile, dout.token_stride, dv_tile,
                                        dvd, diag);
        Gemm<true, Causal::kInnerBegin>(n, dkd, m, ds, 1, kTile, q_tile, q.token_stride, dk_tile,
                                        dkd, diag);
        // dq_tile += ds · k_tile   (m × dk)
        Gemm<true, Causal::kInnerEnd>(m, dkd, n, ds, kTile, 1, kh + j0 * k.token_stride,
                                      k.token_stride, dqh + i0 * dq.token_stride, dq.token_stride,
                                      diag);
      }
    }
    T* dkh = dk.data + b * dk.batch_stride + kvh * dk.head_stride;
    T* dvh = dv.data + b * dv.batch_stride + kvh * dv.head_stride;
    for (size_t j = 0; j < n; ++j) {
      std::copy(dk_tile + j * dkd, dk_tile + (j + 1) * dkd, dkh + (j0 + j) * dk.token_stride);
      std::copy(dv_tile + j * dvd, dv_tile + (j + 1) * dvd, dvh + (j0 + j) * dv.token_stride);
    }
  }
}

template <typename T>
void Backward(HeadsView<T> dq, HeadsView<T> dk, HeadsView<T> dv, HeadsView<const T> dout,
              HeadsView<const T> q, HeadsView<const T> k, HeadsView<const T> v,
              HeadsView<const T> out, const T* lse, const AttentionDims& dims, T scale) {
  const int64_t tasks = dims.batch * dims.kv_heads;
  if (tasks == 0 || dims.kv_len == 0) return;
#pragma omp parallel if (Work(dims) >= kParallelWork)
  {
    BackwardScratch<T> scratch(dims);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task)
      BackwardKvHead(dq, dk, dv, dout, q, k, v, out, lse, dims, scale, task / dims.kv_heads,
                     task % dims.kv_heads, scratch);
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
void attention_forward(HeadsView<T> out, T* lse, HeadsView<const T> q, HeadsView<const T> k,
                       HeadsView<const T> v, const AttentionDims& dims, T scale) {
  ATTNLAB_DISPATCH(T, Forward)(out, lse, q, k, v, dims, scale);
}

template <typename T>
void attention_backward(HeadsView<T> dq, HeadsView<T> dk, HeadsView<T> dv, HeadsView<const T> dout,
                        HeadsView<const T> q, HeadsView<const T> k, HeadsView<const T> v,
                        HeadsView<const T> out, const T* lse, const AttentionDims& dims, T scale) {
  ATTNLAB_DISPATCH(T, Backward)(dq, dk, dv, dout, q, k, v, out, lse, dims, scale);
}

template void attention_forward<float>(HeadsView<float>, float*, HeadsView<const float>,
                                       HeadsView<const float>, HeadsView<const float>,
                                       const AttentionDims&, float);
template void attention_forward<double>(HeadsView<double>, double*, HeadsView<const double>,
                                        HeadsView<const double>, HeadsView<const double>,
                                        const AttentionDims&, double);
template void attention_backward<float>(HeadsView<float>, HeadsView<float>, HeadsView<float>,
                                        HeadsView<const float>, HeadsView<const float>,
                                        HeadsView<const float>, HeadsView<const float>,
                                        HeadsView<const float>, const float*, const AttentionDims&,
                                        float);
template void attention_backward<double>(HeadsView<double>, HeadsView<double>, HeadsView<double>,
                                         HeadsView<const double>, HeadsView<const double>,
                                         HeadsView<const double>, HeadsView<const double>,
                                         HeadsView<const double>, const double*,
                                         const AttentionDims&, double);

// ------------------------------------------------------------- on tensors
namespace {

// The kernels walk rows through strides but need each row contiguous.
Tensor rows_contiguous(const Tensor& t) {
  return t.strides()[3] == 1 || t.size(3) == 1 ? t : t.contiguous();
}

template <typename T>
HeadsView<T> heads_view(const Tensor& t) {
  return {t.data<std::remove_const_t<T>>(), t.strides()[0], t.strides()[1], t.strides()[2]};
}

}  // namespace

AttentionDims attention_dims(const Tensor& q, const Tensor& k, const Tensor& v) {
  const std::string shapes = fmt::format("q {}, k {}, v {}", shape_str(q.shape()),
                                         shape_str(k.shape()), shape_str(v.shape()));
  ATTN_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
             "causal_attention: q, k, v must be [B, T, heads, d], got {}", shapes);
  ATTN_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(),
             "causal_attention: q, k, v have dtypes {}, {}, {}", dtype_name(q.dtype()),
             dtype_name(k.dtype()), dtype_name(v.dtype()));
  AttentionDims dims{.batch = q.size(0),
                     .q_len = q.size(1),
                     .kv_len = k.size(1),
                     .heads = q.size(2),
                     .kv_heads = k.size(2),
                     .qk_dim = q.size(3),
                     .v_dim = v.size(3)};
  ATTN_CHECK(k.size(0) == dims.batch && v.size(0) == dims.batch,
             "causal_attention: batch sizes differ ({})", shapes);
  ATTN_CHECK(v.size(1) == dims.kv_len && v.size(2) == dims.kv_heads,
             "causal_attention: k and v differ in length or heads ({})", shapes);
  ATTN_CHECK(k.size(3) == dims.qk_dim,
             "causal_attention: q and k differ in head width ({} vs {}; {})", dims.qk_dim,
             k.size(3), shapes);
  ATTN_CHECK(dims.q_len <= dims.kv_len,
             "causal_attention: {} queries but only {} keys; queries are the last positions ({})",
             dims.q_len, dims.kv_len, shapes);
  ATTN_CHECK(dims.heads > 0 && dims.kv_heads > 0 && dims.qk_dim > 0 && dims.v_dim > 0,
             "causal_attention: heads and head widths must be positive ({})", shapes);
  ATTN_CHECK(dims.heads % dims.kv_heads == 0,
             "causal_attention: {} query heads are not a multiple of {} KV heads ({})", dims.heads,
             dims.kv_heads, shapes);
  return dims;
}

AttentionResult attention_forward(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                  double scale) {
  const AttentionDims dims = attention_dims(q_in, k_in, v_in);
  ATTN_CHECK(std::isfinite(scale), "causal_attention: scale must be finite, got {}", scale);
  const Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in), v = rows_contiguous(v_in);
  AttentionResult r{Tensor::empty({dims.batch, dims.q_len, dims.heads, dims.v_dim}, q.dtype()),
                    Tensor::empty({dims.batch, dims.heads, dims.q_len}, q.dtype())};
  dispatch_dtype(q.dtype(), [&]<typename T>() {
    attention_forward<T>(heads_view<T>(r.out), r.lse.data<T>(), heads_view<const T>(q),
                         heads_view<const T>(k), heads_view<const T>(v), dims,
                         static_cast<T>(scale));
  });
  return r;
}

AttentionGrads attention_backward(const Tensor& dout_in, const Tensor& q_in, const Tensor& k_in,
                                  const Tensor& v_in, const Tensor& out_in, const Tensor& lse_in,
                                  double scale) {
  const AttentionDims dims = attention_dims(q_in, k_in, v_in);
  const Shape out_shape{dims.batch, dims.q_len, dims.heads, dims.v_dim};
  ATTN_CHECK(dout_in.shape() == out_shape && out_in.shape() == out_shape,
             "causal_attention backward: dout {} and out {} must be {}", shape_str(dout_in.shape()),
             shape_str(out_in.shape()), shape_str(out_shape));
  ATTN_CHECK(lse_in.shape() == Shape({dims.batch, dims.heads, dims.q_len}),
             "causal_attention backward: lse {} must be [B, H, Tq] = [{}, {}, {}]",
             shape_str(lse_in.shape()), dims.batch, dims.heads, dims.q_len);
  check_same_dtype(q_in, dout_in, "causal_attention backward");
  check_same_dtype(q_in, out_in, "causal_attention backward");
  check_same_dtype(q_in, lse_in, "causal_attention backward");
  const Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in), v = rows_contiguous(v_in);
  const Tensor dout = rows_contiguous(dout_in), out = rows_contiguous(out_in);
  const Tensor lse = lse_in.contiguous();
  AttentionGrads g{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(k.shape(), k.dtype()),
                   Tensor::empty(v.shape(), v.dtype())};
  dispatch_dtype(q.dtype(), [&]<typename T>() {
    attention_backward<T>(heads_view<T>(g.dq), heads_view<T>(g.dk), heads_view<T>(g.dv),
                          heads_view<const T>(dout), heads_view<const T>(q), heads_view<const T>(k),
                          heads_view<const T>(v), heads_view<const T>(out), lse.data<T>(), dims,
                          static_cast<T>(scale));
  });
  return g;
}

}  // namespace attnlab
#endif  // HWY_ONCE
