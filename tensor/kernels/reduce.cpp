// Reductions: sum / mean over any axes, max (with argmax) over one axis, and
// sum_to, which undoes broadcasting (see tensor/ops.hpp).
//
// Every reduction is brought to one shape: a contiguous [A, R, C] array
// reduced over its middle axis R into [A, C]. Reduced axes that sit next to
// each other merge into R, kept axes into A (before) and C (after); when the
// reduced axes are not one block (say axes 0 and 2 of three), x is permuted
// to put them last and copied, giving [A, R, 1]. Then:
//   C == 1: row reductions, SIMD across the row (softmax-like rows, full sums)
//   C > 1:  column reductions, SIMD across C, rows added in order (bias grads)
// Long sums are split into fixed blocks whose partial sums are added in
// block order: the result has the same bits for any number of threads.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kernels/reduce.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "attnlab/tensor/kernels/dispatch.hpp"
#include "attnlab/tensor/kernels/kernels.hpp"
#include "attnlab/tensor/kernels/simd-inl.hpp"
#include "attnlab/tensor/ops.hpp"

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {

// out[r] = Σ_i x[r·n + i], for r < rows.
template <typename T>
void SumRows(const T* HWY_RESTRICT x, size_t rows, size_t n, T* HWY_RESTRICT out) {
  const hn::ScalableTag<T> d;
  for (size_t r = 0; r < rows; ++r) out[r] = RowSum(d, x + r * n, n);
}

// out[c] = Σ_r x[r·cols + c], adding rows in order, for c < cols.
template <typename T>
void SumCols(const T* HWY_RESTRICT x, size_t rows, size_t cols, T* HWY_RESTRICT out) {
  const hn::ScalableTag<T> d;
  const size_t lanes = hn::Lanes(d);
  size_t c = 0;
  for (; c + 4 * lanes <= cols; c += 4 * lanes) {  // four vectors of columns at a time
    auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    for (size_t r = 0; r < rows; ++r) {
      const T* row = x + r * cols + c;
      s0 = hn::Add(s0, hn::LoadU(d, row));
      s1 = hn::Add(s1, hn::LoadU(d, row + lanes));
      s2 = hn::Add(s2, hn::LoadU(d, row + 2 * lanes));
      s3 = hn::Add(s3, hn::LoadU(d, row + 3 * lanes));
    }
    hn::StoreU(s0, d, out + c);
    hn::StoreU(s1, d, out + c + lanes);
    hn::StoreU(s2, d, out + c + 2 * lanes);
    hn::StoreU(s3, d, out + c + 3 * lanes);
  }
  for (; c + lanes <= cols; c += lanes) {
    auto s = hn::Zero(d);
    for (size_t r = 0; r < rows; ++r) s = hn::Add(s, hn::LoadU(d, x + r * cols + c));
    hn::StoreU(s, d, out + c);
  }
  for (; c < cols; ++c) {  // the same additions, in the same order, one column at a time
    T s = 0;
    for (size_t r = 0; r < rows; ++r) s += x[r * cols + c];
    out[c] = s;
  }
}

// Index of the first element of x[0..n) equal to m (0 if none, e.g. NaNs).
template <typename T>
int64_t FirstIndexOf(const T* HWY_RESTRICT x, size_t n, T m) {
  const hn::ScalableTag<T> d;
  const size_t lanes = hn::Lanes(d);
  const auto vm = hn::Set(d, m);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const intptr_t pos = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + i), vm));
    if (pos >= 0) return static_cast<int64_t>(i) + pos;
  }
  for (; i < n; ++i)
    if (x[i] == m) return static_cast<int64_t>(i);
  return 0;
}

// out[r] = max_i x[r·n + i]; idx[r] = its first index (idx may be null).
template <typename T>
void MaxRows(const T* HWY_RESTRICT x, size_t rows, size_t n, T* HWY_RESTRICT out,
             int64_t* HWY_RESTRICT idx) {
  const hn::ScalableTag<T> d;
  for (size_t r = 0; r < rows; ++r) {
    out[r] = RowMax(d, x + r * n, n);
    if (idx) idx[r] = FirstIndexOf(x + r * n, n, out[r]);
  }
}

// out[c] = max_r x[r·cols + c]; idx[c] = the first r reaching it (idx may be
// null). The running index is kept in T lanes, exact while rows < 2^24 (f32).
template <typename T>
void MaxCols(const T* HWY_RESTRICT x, size_t rows, size_t cols, T* HWY_RESTRICT out,
             int64_t* HWY_RESTRICT idx) {
  const hn::ScalableTag<T> d;
  const size_t lanes = hn::Lanes(d);
  const bool index_fits = rows < (size_t{1} << (sizeof(T) == 4 ? 24 : 53));
  size_t c = 0;
  if (index_fits) {
    HWY_ALIGN T index_buf[kVectorCapacity<T>];
    for (; c + lanes <= cols; c += lanes) {
      auto best = hn::LoadU(d, x + c);
      auto where = hn::Zero(d);
      for (size_t r = 1; r < rows; ++r) {
        const auto v = hn::LoadU(d, x + r * cols + c);
        const auto greater = hn::Gt(v, best);
        best = hn::IfThenElse(greater, v, best);
        where = hn::IfThenElse(greater, hn::Set(d, static_cast<T>(r)), where);
      }
      hn::StoreU(best, d, out + c);
      if (idx) {
        hn::Store(where, d, index_buf);
        for (size_t k = 0; k < lanes; ++k) idx[c + k] = static_cast<int64_t>(index_buf[k]);
      }
    }
  }
  for (; c < cols; ++c) {  // the same comparisons, one column at a time
    T best = x[c];
    int64_t where = 0;
    for (size_t r = 1; r < rows; ++r) {
      if (x[r * cols + c] > best) {
        best = x[r * cols + c];
        where = static_cast<int64_t>(r);
      }
    }
    out[c] = best;
    if (idx) idx[c] = where;
  }
}

// Σ_i x[i]², in RowSum's order (blocks of four vector accumulators).
template <typename T>
T SumSquares(const T* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<T> d;
  return BlockedSum(
      d, n,
      [d, x](size_t i) {
        const auto v = hn::LoadU(d, x + i);
        return hn::Mul(v, v);
      },
      [d, x](size_t i, size_t count) {
        const auto v = LoadTail(d, x + i, count, T(0));
        return hn::Mul(v, v);
      });
}

ATTNLAB_KERNEL_F32_F64(SumSquares);
ATTNLAB_KERNEL_F32_F64(SumRows);
ATTNLAB_KERNEL_F32_F64(SumCols);
ATTNLAB_KERNEL_F32_F64(MaxRows);
ATTNLAB_KERNEL_F32_F64(MaxCols);

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {

ATTNLAB_EXPORT_F32_F64(SumSquares);
ATTNLAB_EXPORT_F32_F64(SumRows);
ATTNLAB_EXPORT_F32_F64(SumCols);
ATTNLAB_EXPORT_F32_F64(MaxRows);
ATTNLAB_EXPORT_F32_F64(MaxCols);

namespace {

using kernels::kBlockElements;
using kernels::parallel_blocks;
using kernels::rows_per_block;

template <typename T>
void sum_rows(const T* x, int64_t rows, int64_t n, T* out) {
  ATTNLAB_DISPATCH(T, SumRows)(x, rows, n, out);
}
template <typename T>
void sum_cols(const T* x, int64_t rows, int64_t cols, T* out) {
  ATTNLAB_DISPATCH(T, SumCols)(x, rows, cols, out);
}
template <typename T>
void max_rows(const T* x, int64_t rows, int64_t n, T* out, int64_t* idx) {
  ATTNLAB_DISPATCH(T, MaxRows)(x, rows, n, out, idx);
}
template <typename T>
void max_cols(const T* x, int64_t rows, int64_t cols, T* out, int64_t* idx) {
  ATTNLAB_DISPATCH(T, MaxCols)(x, rows, cols, out, idx);
}

// out[a, c] = Σ_r x[a, r, c] for a contiguous x of shape [A, R, C].
template <typename T>
void sum_3d(const T* x, int64_t A, int64_t R, int64_t C, T* out) {
  if (A * C == 0) return;
  if (R == 0) {
    std::fill(out, out + A * C, T(0));
    return;
  }
  if (C == 1) {
    // Rows of R. A row longer than one block is summed block by block.
    const int64_t nblk = (R + kBlockElements - 1) / kBlockElements;
    if (nblk == 1) {
      parallel_blocks(A, rows_per_block(R), R, [&](int64_t a0, int64_t a1) {
        sum_rows<T>(x + a0 * R, a1 - a0, R, out + a0);
      });
      return;
    }
    std::vector<T> partial(A * nblk);
    parallel_blocks(A * nblk, 1, kBlockElements, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t a = t / nblk, start = (t % nblk) * kBlockElements;
        sum_rows<T>(x + a * R + start, 1, std::min(kBlockElements, R - start), &partial[t]);
      }
    });
    for (int64_t a = 0; a < A; ++a) {
      T s = 0;
      for (int64_t b = 0; b < nblk; ++b) s += partial[a * nblk + b];
      out[a] = s;
    }
    return;
  }
  // Columns: blocks of whole rows of C, each summed into a partial row.
  const int64_t block_rows = rows_per_block(C);
  const int64_t nblk = (R + block_rows - 1) / block_rows;
  if (nblk == 1) {
    parallel_blocks(A, 1, R * C, [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) sum_cols<T>(x + a * R * C, R, C, out + a * C);
    });
    return;
  }
  std::vector<T> partial(A * nblk * C);
  parallel_blocks(A * nblk, 1, block_rows * C, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t / nblk, start = (t % nblk) * block_rows;
      sum_cols<T>(x + (a * R + start) * C, std::min(block_rows, R - start), C, &partial[t * C]);
    }
  });
  parallel_blocks(A, 1, nblk * C, [&](int64_t a0, int64_t a1) {
    for (int64_t a = a0; a < a1; ++a) sum_cols<T>(&partial[a * nblk * C], nblk, C, out + a * C);
  });
}

// x as a contiguous [A, R, C] array reduced over R (see the top of the file).
struct Plan {
  Tensor x;
  int64_t A = 1, R = 1, C = 1;
};

Plan plan_reduction(const Tensor& x, const std::vector<bool>& reduced) {
  // Merge neighbouring axes of the same kind; size-1 axes do not matter.
  std::vector<std::pair<int64_t, bool>> groups;  // (size, reduced?)
  for (int64_t ax = 0; ax < x.dim(); ++ax) {
    const int64_t n = x.shape()[ax];
    if (n == 1) continue;
    if (!groups.empty() && groups.back().second == reduced[ax])
      groups.back().first *= n;
    else
      groups.emplace_back(n, reduced[ax]);
  }
  int64_t reduced_groups = 0;
  for (const auto& g : groups) reduced_groups += g.second;
  Plan p;
  if (reduced_groups <= 1) {
    p.x = x.contiguous();
    bool after = false;  // past the reduced group?
    for (const auto& [n, red] : groups) {
      if (red) {
        p.R = n;
        after = true;
      } else {
        (after ? p.C : p.A) *= n;
      }
    }
    return p;
  }
  std::vector<int64_t> order;  // kept axes first, then the reduced ones
  for (bool want_reduced : {false, true}) {
    for (int64_t ax = 0; ax < x.dim(); ++ax) {
      if (reduced[ax] != want_reduced) continue;
      order.push_back(ax);
      (want_reduced ? p.R : p.A) *= x.shape()[ax];
    }
  }
  p.x = x.permute(order).contiguous();
  return p;
}

// Which axes of an nd-tensor `axes` names (all of them when empty).
std::vector<bool> reduced_axes(const std::vector<int64_t>& axes, int64_t nd, const char* what) {
  std::vector<bool> reduced(nd, axes.empty());
  for (int64_t a : axes) {
    const int64_t ax = normalize_axis(a, nd);
    if (nd == 0) continue;  // a scalar: axis 0 is allowed and reduces nothing
    ATTN_CHECK(!reduced[ax], "{}: axis {} is given twice", what, a);
    reduced[ax] = true;
  }
  return reduced;
}

Shape reduced_shape(const Shape& shape, const std::vector<bool>& reduced, bool keepdim) {
  Shape out;
  for (size_t ax = 0; ax < shape.size(); ++ax) {
    if (!reduced[ax])
      out.push_back(shape[ax]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  ATTN_CHECK(x.defined(), "sum: undefined tensor");
  const std::vector<bool> reduced = reduced_axes(axes, x.dim(), "sum");
  Tensor out = Tensor::empty(reduced_shape(x.shape(), reduced, keepdim), x.dtype());
  if (x.dim() == 0) {
    out.copy_(x);
    return out;
  }
  const Plan p = plan_reduction(x, reduced);
  dispatch_dtype(x.dtype(),
                 [&]<typename T>() { sum_3d<T>(p.x.data<T>(), p.A, p.R, p.C, out.data<T>()); });
  return out;
}

double sum_of_squares(const Tensor& x) {
  ATTN_CHECK(x.defined(), "sum_of_squares: undefined tensor");
  const Tensor xc = x.contiguous();
  const int64_t n = xc.numel();
  // Fixed blocks, their sums added in block order in f64: the same bits for
  // any number of threads.
  const int64_t nblk = (n + kBlockElements - 1) / kBlockElements;
  std::vector<double> partial(nblk);
  dispatch_dtype(xc.dtype(), [&]<typename T>() {
    const T* p = xc.data<T>();
    parallel_blocks(nblk, 1, kBlockElements, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t start = b * kBlockElements, len = std::min(kBlockElements, n - start);
        partial[b] = ATTNLAB_DISPATCH(T, SumSquares)(p + start, len);
      }
    });
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  ATTN_CHECK(x.defined(), "mean: undefined tensor");
  const std::vector<bool> reduced = reduced_axes(axes, x.dim(), "mean");
  int64_t count = 1;
  for (int64_t ax = 0; ax < x.dim(); ++ax)
    if (reduced[ax]) count *= x.shape()[ax];
  Tensor out = sum(x, axes, keepdim);
  scale_(out, 1.0 / static_cast<double>(count));  // count 0: 0 · inf = NaN, as numpy
  return out;
}

Tensor max(const Tensor& x, int64_t axis, bool keepdim, std::vector<int64_t>* argmax) {
  ATTN_CHECK(x.defined(), "max: undefined tensor");
  const int64_t ax = normalize_axis(axis, x.dim());
  if (x.dim() == 0) {  // the maximum of one value
    if (argmax) argmax->assign(1, 0);
    return x.clone();
  }
  ATTN_CHECK(x.shape()[ax] > 0, "max over axis {} of size 0, shape {}", axis, shape_str(x.shape()));
  std::vector<bool> reduced(x.dim(), false);
  reduced[ax] = true;
  Tensor out = Tensor::empty(reduced_shape(x.shape(), reduced, keepdim), x.dtype());
  const Tensor xc = x.contiguous();
  int64_t A = 1, C = 1;
  for (int64_t i = 0; i < ax; ++i) A *= x.shape()[i];
  for (int64_t i = ax + 1; i < x.dim(); ++i) C *= x.shape()[i];
  const int64_t R = x.shape()[ax];
  int64_t* idx = nullptr;
  if (argmax) {
    argmax->assign(A * C, 0);
    idx = argmax->data();
  }
  if (A * C == 0) return out;
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* px = xc.data<T>();
    T* po = out.data<T>();
    if (C == 1) {
      parallel_blocks(A, rows_per_block(R), R, [&](int64_t a0, int64_t a1) {
        max_rows<T>(px + a0 * R, a1 - a0, R, po + a0, idx ? idx + a0 : nullptr);
      });
    } else {
      parallel_blocks(A, 1, R * C, [&](int64_t a0, int64_t a1) {
        for (int64_t a = a0; a < a1; ++a)
          max_cols<T>(px + a * R * C, R, C, po + a * C, idx ? idx + a * C : nullptr);
      });
    }
  });
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  ATTN_CHECK(g.defined(), "sum_to: undefined tensor");
  if (g.shape() == shape) return g;
  const int64_t nd = g.dim(), lead = nd - static_cast<int64_t>(shape.size());
  ATTN_CHECK(lead >= 0, "sum_to: cannot reduce shape {} to {}", shape_str(g.shape()),
             shape_str(shape));
  std::vector<int64_t> axes;
  for (int64_t ax = 0; ax < lead; ++ax) axes.push_back(ax);
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    const int64_t want = shape[i], have = g.shape()[lead + i];
    if (want == have) continue;
    ATTN_CHECK(want == 1, "sum_to: cannot reduce shape {} to {}", shape_str(g.shape()),
               shape_str(shape));
    axes.push_back(lead + i);
  }
  return sum(g, axes, /*keepdim=*/true).view(shape);
}

}  // namespace attnlab
#endif  // HWY_ONCE
