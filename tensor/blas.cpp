#include "attnlab/tensor/blas.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <type_traits>

namespace attnlab::blas {
namespace {

// Below this many multiply-adds a product runs on the calling thread: waking
// a second thread costs a few microseconds, about what 2^18 FMAs take...
constexpr int64_t kParallelWork = int64_t(1) << 18;
// ...unless B alone is this big: a matrix-vector product is bound by reading
// B, and two cores each reading half of it from their own cache are faster
// (baby's decoder: 2 threads ~2x the tokens/s of 1).
constexpr int64_t kParallelWeights = int64_t(1) << 14;
// Blocks are cut at multiples of this many rows or columns, so that every
// thread but the last gets whole tiles of the BLAS micro-kernel.
constexpr int64_t kTile = 16;

CBLAS_TRANSPOSE op(bool trans) {
  return trans ? CblasTrans : CblasNoTrans;
}

}  // namespace

// One single-threaded call. A single row of C is y = op(B)ᵀ · x, a gemv.
template <typename T>
void gemm_on_this_thread(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                         int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 1) {
    // op(B) is [k, n]: stored [k, n] (tb false) or [n, k] (tb true). The row
    // of op(A) steps by 1 (A is [1, k]) or by lda (A is [k, 1]).
    const CBLAS_TRANSPOSE t = tb ? CblasNoTrans : CblasTrans;
    const int64_t rows = tb ? n : k, cols = tb ? k : n, inc_a = ta ? lda : 1;
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemv(CblasRowMajor, t, rows, cols, alpha, b, ldb, a, inc_a, beta, c, 1);
    else
      cblas_dgemv(CblasRowMajor, t, rows, cols, alpha, b, ldb, a, inc_a, beta, c, 1);
    return;
  }
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, op(ta), op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, op(ta), op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const bool split_rows = m >= n;
  const int64_t side = split_rows ? m : n;
  const int64_t tiles = (side + kTile - 1) / kTile;
  const int64_t parts = std::min<int64_t>(threads, tiles);
  const bool worth_it = m * n * k >= kParallelWork || n * k >= kParallelWeights;
  if (parts <= 1 || !worth_it) {
    gemm_on_this_thread<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t lo = std::min(side, tiles * p / parts * kTile);
    const int64_t hi = std::min(side, tiles * (p + 1) / parts * kTile);
    if (split_rows) {  // rows lo..hi of op(A) and of C
      const T* ap = a + (ta ? lo : lo * lda);
      gemm_on_this_thread<T>(ta, tb, hi - lo, n, k, alpha, ap, lda, b, ldb, beta, c + lo * ldc,
                             ldc);
    } else {  // columns lo..hi of op(B) and of C
      const T* bp = b + (tb ? lo * ldb : lo);
      gemm_on_this_thread<T>(ta, tb, m, hi - lo, k, alpha, a, lda, bp, ldb, beta, c + lo, ldc);
    }
  }
}

template void gemm_on_this_thread<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                         int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_on_this_thread<double>(bool, bool, int64_t, int64_t, int64_t, double,
                                          const double*, int64_t, const double*, int64_t, double,
                                          double*, int64_t);
template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace attnlab::blas
