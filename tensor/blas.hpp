// The one door to BLAS: row-major gemm on raw pointers, shared among our
// threads. tensor/matmul.cpp (Tensor views) and models/decoder.cpp (the
// KV-cached decoder's preallocated buffers) both come through here.
//
// OpenBLAS itself runs single-threaded (tensor/threads.hpp says why). A large
// product is cut instead into one block of C per OpenMP thread, along C's
// longer side: rows of C are rows of op(A), columns of C are columns of
// op(B), so each block is an independent single-threaded gemm. Every element
// of C is still one dot product summed in BLAS's order, so the bits do not
// depend on the number of threads.
#pragma once

#include <cstdint>

namespace attnlab::blas {

// C [m, n] = alpha · op(A) · op(B) + beta · C, all row-major. op(A) is A
// ([m, k], row stride lda) or, with trans_a, Aᵀ (A is [k, m]); likewise B.
// With m = 1 this is a matrix-vector product and goes to ?gemv.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// The same product on the calling thread only: for many small products in a
// row (the decoder's per-head attention over its cache), where waking other
// threads for each would cost more than it saves.
template <typename T>
void gemm_on_this_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                         const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                         int64_t ldc);

}  // namespace attnlab::blas
