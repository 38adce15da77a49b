// Plain C++ helpers shared by the kernel files of tensor/kernels/: the
// threading rule, strided iteration for the slow (broadcast/strided) paths,
// and what SIMD target the kernels run on. Internal to tensor/: users call
// the functions of tensor/ops.hpp. The SIMD side of the shared code is in
// simd-inl.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "attnlab/tensor/dtype.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/tensor/shape.hpp"

namespace attnlab::kernels {

// ------------------------------------------------------------------ threads
// Work below this many elements runs on the calling thread: starting the
// OpenMP team costs more than it saves on small tensors.
inline constexpr int64_t kParallelMinWork = 32768;
// Elements per block of work. Blocks depend only on the sizes, never on the
// number of threads, so a reduction that sums per-block partials in block
// order gives the same bits with 1 thread or 64.
inline constexpr int64_t kBlockElements = 16384;

// Calls fn(begin, end) for the blocks [0, block), [block, 2·block), ... of
// [0, n), in parallel when the total work n · work_per_item is large.
// fn must not throw (it may run on an OpenMP thread).
template <typename Fn>
void parallel_blocks(int64_t n, int64_t block, int64_t work_per_item, Fn&& fn) {
  if (n <= 0) return;
  block = std::max<int64_t>(block, 1);
  const int64_t nblocks = (n + block - 1) / block;
  if (nblocks == 1 || n * work_per_item < kParallelMinWork) {
    for (int64_t b = 0; b < nblocks; ++b) fn(b * block, std::min(n, (b + 1) * block));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblocks; ++b) fn(b * block, std::min(n, (b + 1) * block));
}

// Rows per block when each row has `row_length` elements.
inline int64_t rows_per_block(int64_t row_length) {
  return std::max<int64_t>(1, kBlockElements / std::max<int64_t>(row_length, 1));
}

// ------------------------------------------------------- strided iteration
// K operands viewed over one common shape (broadcast inputs have stride 0),
// with size-1 axes dropped and neighbouring axes merged wherever every
// operand allows it. The last axis is the inner run; the others are rows.
inline constexpr size_t kMaxAxes = 16;

template <size_t K>
struct StridedRows {
  Shape shape;                   // merged shape; never empty (a scalar is [1])
  std::array<Shape, K> strides;  // per operand, in elements
  int64_t inner() const { return shape.back(); }
  int64_t rows() const { return shape_numel(shape) / shape.back(); }
};

template <size_t K>
StridedRows<K> merge_axes(const Shape& shape, const std::array<Shape, K>& strides) {
  StridedRows<K> out;
  for (size_t ax = 0; ax < shape.size(); ++ax) {
    if (shape[ax] == 1) continue;
    bool mergeable = !out.shape.empty();
    for (size_t k = 0; k < K && mergeable; ++k)
      mergeable = out.strides[k].back() == strides[k][ax] * shape[ax];
    if (mergeable) {
      out.shape.back() *= shape[ax];
      for (size_t k = 0; k < K; ++k) out.strides[k].back() = strides[k][ax];
    } else {
      out.shape.push_back(shape[ax]);
      for (size_t k = 0; k < K; ++k) out.strides[k].push_back(strides[k][ax]);
    }
  }
  if (out.shape.empty()) {
    out.shape.push_back(1);
    for (size_t k = 0; k < K; ++k) out.strides[k].push_back(1);
  }
  ATTN_CHECK(out.shape.size() <= kMaxAxes, "tensors of shape {} have too many axes (at most {})",
             shape_str(shape), kMaxAxes);
  return out;
}

// Calls fn(offsets) for rows [r0, r1) of s, where offsets[k] is the element
// offset of the row's first element in operand k. The row's elements then
// step by s.strides[k].back().
template <size_t K, typename Fn>
void for_each_row(const StridedRows<K>& s, int64_t r0, int64_t r1, Fn&& fn) {
  const size_t outer = s.shape.size() - 1;
  std::array<int64_t, kMaxAxes> index{};
  std::array<int64_t, K> off{};
  for (size_t ax = outer, r = static_cast<size_t>(r0); ax-- > 0;) {
    index[ax] = static_cast<int64_t>(r) % s.shape[ax];
    r /= static_cast<size_t>(s.shape[ax]);
    for (size_t k = 0; k < K; ++k) off[k] += index[ax] * s.strides[k][ax];
  }
  for (int64_t row = r0; row < r1; ++row) {
    fn(off);
    for (size_t ax = outer; ax-- > 0;) {  // carry into the outer axes
      for (size_t k = 0; k < K; ++k) off[k] += s.strides[k][ax];
      if (++index[ax] < s.shape[ax]) break;
      for (size_t k = 0; k < K; ++k) off[k] -= s.strides[k][ax] * s.shape[ax];
      index[ax] = 0;
    }
  }
}

// ------------------------------------------------------------------ AdamW
// The scalars of one AdamW step, computed once in double and rounded to the
// lane type (adamw.cpp).
template <typename T>
struct AdamWScalars {
  T lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, wd;
  T inv_bias1, inv_bias2;  // 1/(1−β1^t), 1/(1−β2^t)
};

// ------------------------------------------------------------------- gemm
// C [m, n] = alpha · op(A) · op(B) + beta · C in f32, row-major (as
// blas::gemm), every element of C accumulated in one fixed order:
//   acc = 0; for p = 0..k−1: acc = fma(op(A)[i, p], op(B)[p, j], acc);
//   C[i, j] = beta == 0 ? alpha · acc : fma(beta, C[i, j], alpha · acc),
// the same bits on every target and CPU (gemm.cpp says how). beta = 0 never
// reads C. Single-threaded.
void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
              int64_t ldc);

// -------------------------------------------------------------- SIMD info
// For tests and benchmarks: the vector width, in lanes of `dtype`, and the
// name of the Highway target (e.g. "AVX3") that dispatched kernels run on now.
int64_t simd_lanes(DType dtype);
const char* simd_target_name();

}  // namespace attnlab::kernels
