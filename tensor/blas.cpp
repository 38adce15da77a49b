#include "attnlab/tensor/blas.hpp"

#include "attnlab/tensor/kernels/kernels.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <mutex>
#include <type_traits>

namespace attnlab::blas {
namespace {

// The constants of the fixed decomposition (gemm_blocks in blas.hpp). Below
// kParallelWork multiply-adds a product is one block: waking a second thread
// costs a few microseconds, about what 2^18 FMAs take. A block does at least
// about kBlockWork (a few tens of microseconds on one core), so that packing
// the other operand again per block costs little.
constexpr int64_t kParallelWork = int64_t(1) << 19;
constexpr int64_t kBlockWork = int64_t(1) << 23;
// A matrix-vector product (the decoder at batch 1) is bound by reading B, and
// two cores each reading their part from their own cache are faster (baby's
// decoder: 2 threads ~2x the tokens/s of 1); it pays from smaller sizes.
constexpr int64_t kParallelWeights = int64_t(1) << 14;
constexpr int64_t kBlockWeights = int64_t(1) << 16;
constexpr int64_t kMaxBlocks = 16;
// Blocks are cut at multiples of kTile rows or columns (whole tiles of the
// BLAS micro-kernel) and span at least kMinSide of them.
constexpr int64_t kTile = 16;
constexpr int64_t kMinSide = 64;
// Past the first two, blocks span at least kMinSplitSide rows (or columns):
// every block packs all of the other operand again, and a block of few rows
// pays that for little work. It matters most for a weight's gradient
// dW = gᵀ·x, whose other operand is x with k = all the batch's tokens:
// small's w_gate gradient [1024, 384] · k 3072 cut into 16 blocks of 64 rows
// took 33 ms on one core, into 4 blocks of 256 rows 26.5 ms (EPYC Zen 4,
// OpenBLAS 0.3.21). The price: such a product keeps fewer threads busy on a
// machine with more than 4 cores. A gemv packs nothing and keeps kMinSide.
constexpr int64_t kMinSplitSide = 256;
// Which f32 block calls go to our own gemm (kernels::gemm_f32): those of at
// least kOwnGemmMinRows rows and at most kOwnGemmMaxWork multiply-adds, where
// it was measured at least as fast as OpenBLAS's sgemm (bench/README.md, "Our
// own gemm"): baby's products, 1.06x sgemm's speed over a step's set, while on
// small's larger blocks (k = 3072 tokens, 2^26 to 2^28 multiply-adds) it
// reached 0.95-0.99x. It packs all of op(B) in every call, which a product of
// a few rows (a decoder step, a head's queries against its cache) cannot repay.
constexpr int64_t kOwnGemmMinRows = 32;
constexpr int64_t kOwnGemmMaxWork = int64_t(1) << 25;

CBLAS_TRANSPOSE op(bool trans) {
  return trans ? CblasTrans : CblasNoTrans;
}

std::atomic<bool> g_observed{false};
std::mutex g_observer_mutex;
std::function<void(const BlockCall&)> g_observer;

void observe(const BlockCall& call) {
  std::lock_guard<std::mutex> lock(g_observer_mutex);
  if (g_observer) g_observer(call);
}

// The fixed decomposition of blas.hpp, as a rule: block i of `parts` blocks
// along C's longer side. A function of the shape alone.
struct Cut {
  int64_t m, n, parts, side, tiles;

  Cut(int64_t m_, int64_t n_, int64_t k) : m(m_), n(n_), side(std::max(m_, n_)) {
    const bool gemv = m == 1;
    const int64_t work = gemv ? n * k : m * n * k;
    parts = 1;
    if (work >= (gemv ? kParallelWeights : kParallelWork)) {
      const int64_t by_work = std::max<int64_t>(2, work / (gemv ? kBlockWeights : kBlockWork));
      // A gemv packs nothing (x is one row), so its blocks may be narrow.
      const int64_t split_side = gemv ? kMinSide : kMinSplitSide;
      const int64_t cap = std::max(std::min({by_work, kMaxBlocks, side / split_side}),
                                   std::min<int64_t>(2, side / kMinSide));
      if (cap >= 1) parts = static_cast<int64_t>(std::bit_floor(static_cast<uint64_t>(cap)));
    }
    tiles = (side + kTile - 1) / kTile;
  }

  Block block(int64_t i) const {
    const int64_t lo = std::min(side, tiles * i / parts * kTile);
    const int64_t hi = std::min(side, tiles * (i + 1) / parts * kTile);
    return m >= n ? Block{lo, hi - lo, 0, n} : Block{0, m, lo, hi - lo};
  }
};

}  // namespace

std::vector<Block> gemm_blocks(int64_t m, int64_t n, int64_t k) {
  const Cut cut(m, n, k);
  std::vector<Block> blocks;
  for (int64_t i = 0; i < cut.parts; ++i) blocks.push_back(cut.block(i));
  return blocks;
}

void set_block_call_observer(std::function<void(const BlockCall&)> observer) {
  std::lock_guard<std::mutex> lock(g_observer_mutex);
  g_observer = std::move(observer);
  g_observed = static_cast<bool>(g_observer);
}

// One single-threaded call. A single row of C is y = op(B)ᵀ · x, a gemv.
template <typename T>
void gemm_on_this_thread(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                         int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  // OpenBLAS's own pool stays at one thread (threads.hpp): set once, at the
  // first product, so that a program that never calls set_num_threads gets
  // single-threaded block calls too, and not its thread count's bits.
  static const bool single_threaded = (openblas_set_num_threads(1), true);
  (void)single_threaded;
  if constexpr (std::is_same_v<T, float>) {
    if (m >= kOwnGemmMinRows && m * n * k <= kOwnGemmMaxWork) {
      kernels::gemm_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  }
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
  const Cut cut(m, n, k);
  // Block i: rows row0.. of op(A) and of C, columns col0.. of op(B) and of C.
  auto run = [&](int64_t i) {
    const Block blk = cut.block(i);
    const int64_t a_off = ta ? blk.row0 : blk.row0 * lda;
    const int64_t b_off = tb ? blk.col0 * ldb : blk.col0;
    const int64_t c_off = blk.row0 * ldc + blk.col0;
    if (g_observed) observe({blk, a_off, b_off, c_off});
    gemm_on_this_thread<T>(ta, tb, blk.rows, blk.cols, k, alpha, a + a_off, lda, b + b_off, ldb,
                           beta, c + c_off, ldc);
  };
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (cut.parts == 1 || threads == 1) {
    for (int64_t i = 0; i < cut.parts; ++i) run(i);
    return;
  }
#pragma omp parallel for num_threads(std::min <int64_t>(threads, cut.parts)) schedule(static)
  for (int64_t i = 0; i < cut.parts; ++i) run(i);
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
