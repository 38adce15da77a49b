// The one door to matrix products: row-major gemm on raw pointers, shared
// among our threads. tensor/matmul.cpp (Tensor views) and models/decoder.cpp
// (the KV-cached decoder's preallocated buffers) both come through here.
//
// Who computes a product. An f32 block call (below) of 32 rows or more and at
// most 2^25 multiply-adds (every product of baby's training step) goes to our
// own gemm, kernels::gemm_f32 (tensor/kernels/gemm.cpp): each element of C is
// one fixed sequence of FMAs over k, so its bits are the same on every CPU
// and SIMD target, and the same whether C is computed whole or in blocks.
// Larger blocks (where OpenBLAS was measured faster), fewer rows (a decoder
// step, a head's queries against its cache: our gemm packs all of op(B) per
// call, which few rows cannot repay), single rows (?gemv) and f64 (the
// gradient checks) go to OpenBLAS, whose kernels differ in their last bits
// between CPUs and between a block of rows and the same rows in a larger call.
//
// OpenBLAS itself runs single-threaded (tensor/threads.hpp says why). A large
// product is cut instead into blocks of C along C's longer side: rows of C
// are rows of op(A), columns of C are columns of op(B), so each block is an
// independent single-threaded gemm, and the threads take blocks from the list.
//
// The list of blocks is a function of (m, n, k) alone, never of the number
// of threads (gemm_blocks below): one thread makes the very same block calls
// in turn. That is what makes OpenBLAS's bits independent of the thread
// count: its Haswell and Zen kernels give other last bits for a block of rows
// than for the same rows inside a larger call, even for cuts aligned to 16 or
// 64. (Our gemm would not need it; its blocks keep the work evenly shared.)
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace attnlab::blas {

// C [m, n] = alpha · op(A) · op(B) + beta · C, all row-major. op(A) is A
// ([m, k], row stride lda) or, with trans_a, Aᵀ (A is [k, m]); likewise B.
// With m = 1 this is a matrix-vector product and goes to ?gemv.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// The same product on the calling thread only, as one call: for many small
// products in a row (the decoder's per-head attention over its cache), where
// waking other threads for each would cost more than it saves.
template <typename T>
void gemm_on_this_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                         const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                         int64_t ldc);

// One block of C that gemm hands to a single-threaded call: rows
// [row0, row0 + rows) and columns [col0, col0 + cols) of C.
struct Block {
  int64_t row0, rows, col0, cols;
  bool operator==(const Block&) const = default;
};

// The fixed decomposition of an [m, n] · k product, in order. The rule:
//   work W = m·n·k multiply-adds (n·k for a single row, m = 1, a gemv);
//   below kParallelWork (2^19; 2^14 for a gemv) one block;
//   else P = the largest power of two ≤ W / kBlockWork (2^23; 2^16 for a
//   gemv), at most 16 and at most C's longer side / 256 (/ 64 for a gemv),
//   but at least 2 when that side holds two blocks of 64; cut along that
//   side at multiples of 16 (whole tiles of the BLAS micro-kernel).
// Blocks are few and large because each one packs the whole of the other
// operand again (a block of rows of C re-reads all of op(B)); P a power of
// two shares evenly among 2, 4, 8 or 16 threads.
std::vector<Block> gemm_blocks(int64_t m, int64_t n, int64_t k);

// For tests: called with every single-threaded block call that gemm makes
// (the block, and the element offsets of its A, B and C pointers from the
// ones gemm was given), from whichever thread makes it. Empty: no calls.
struct BlockCall {
  Block block;
  int64_t a_offset, b_offset, c_offset;
  bool operator==(const BlockCall&) const = default;
};
void set_block_call_observer(std::function<void(const BlockCall&)> observer);

}  // namespace attnlab::blas
