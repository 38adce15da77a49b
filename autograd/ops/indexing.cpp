// Indexing ops: picking rows (embedding lookup, routing tokens to experts),
// picking elements along the last axis, and masking. Picking forward is
// scattering (adding) backward, so a row picked twice gets both gradients.
#include "attnlab/autograd/ops.hpp"

namespace attnlab {
namespace {

int64_t row_size(const Tensor& x) {
  return x.dim() == 0 ? 1 : x.numel() / x.size(0);
}

// out[i, :] = x[index[i], :]   x is (N, row), out is (n, row)
Tensor gather_rows(const Tensor& x, std::span<const int32_t> index) {
  const Tensor xc = x.contiguous();
  Shape shape = x.shape();
  shape[0] = static_cast<int64_t>(index.size());
  Tensor out = Tensor::empty(shape, x.dtype());
  const int64_t row = row_size(x), n = x.size(0);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* src = xc.data<T>();
    T* dst = out.data<T>();
    for (size_t i = 0; i < index.size(); ++i) {
      ATTN_CHECK(index[i] >= 0 && index[i] < n, "index {} at position {} is out of range [0, {})",
                 index[i], i, n);
      std::copy_n(src + index[i] * row, row, dst + i * row);
    }
  });
  return out;
}

// out[index[i], :] += x[i, :]   x is (n, row), out is (rows, row)
Tensor scatter_add_rows(const Tensor& x, std::span<const int32_t> index, int64_t rows) {
  const Tensor xc = x.contiguous();
  Shape shape = x.shape();
  shape[0] = rows;
  Tensor out = Tensor::zeros(shape, x.dtype());
  const int64_t row = row_size(x);
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* src = xc.data<T>();
    T* dst = out.data<T>();
    for (size_t i = 0; i < index.size(); ++i) {
      ATTN_CHECK(index[i] >= 0 && index[i] < rows,
                 "index {} at position {} is out of range [0, {})", index[i], i, rows);
      T* d = dst + index[i] * row;
      const T* s = src + i * row;
      for (int64_t j = 0; j < row; ++j) d[j] += s[j];
    }
  });
  return out;
}

}  // namespace

Variable index_select(const Variable& x, std::span<const int32_t> index) {
  ATTN_CHECK(x.dim() >= 1, "index_select needs at least one axis");
  std::vector<int32_t> idx(index.begin(), index.end());
  return record("index_select", gather_rows(x.value(), index), {x},
                [x, idx = std::move(idx)](const Tensor& g) {
                  accumulate_grad(x, scatter_add_rows(g, idx, x.size(0)));
                });
}

Variable index_add(const Variable& x, std::span<const int32_t> index, int64_t rows) {
  ATTN_CHECK(x.dim() >= 1 && x.size(0) == static_cast<int64_t>(index.size()),
             "index_add: {} indices for {} rows of shape {}", index.size(), x.dim() ? x.size(0) : 0,
             shape_str(x.shape()));
  std::vector<int32_t> idx(index.begin(), index.end());
  return record(
      "index_add", scatter_add_rows(x.value(), index, rows), {x},
      [x, idx = std::move(idx)](const Tensor& g) { accumulate_grad(x, gather_rows(g, idx)); });
}

Variable embedding(const Variable& weight, std::span<const int32_t> ids, const Shape& ids_shape) {
  ATTN_CHECK(weight.dim() == 2, "embedding weight must be [V, D], got shape {}",
             shape_str(weight.shape()));
  ATTN_CHECK(shape_numel(ids_shape) == static_cast<int64_t>(ids.size()),
             "embedding: {} ids for shape {}", ids.size(), shape_str(ids_shape));
  Shape out_shape = ids_shape;
  out_shape.push_back(weight.size(1));
  return reshape(index_select(weight, ids), out_shape);
}

// out[r, j] = x[r, index[r, j]]   x is (rows, n), out is (rows, k)
Variable gather(const Variable& x, std::span<const int32_t> index, int64_t k) {
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  ATTN_CHECK(static_cast<int64_t>(index.size()) == rows * k,
             "gather: {} indices for {} rows of {} picks", index.size(), rows, k);
  Shape out_shape = x.shape();
  out_shape.back() = k;
  const Tensor xc = x.value().contiguous();
  Tensor y = Tensor::empty(out_shape, x.dtype());
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* src = xc.data<T>();
    T* dst = y.data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < k; ++j) {
        const int32_t c = index[r * k + j];
        ATTN_CHECK(c >= 0 && c < n, "gather: index {} in row {} is out of range [0, {})", c, r, n);
        dst[r * k + j] = src[r * n + c];
      }
  });
  std::vector<int32_t> idx(index.begin(), index.end());
  return record("gather", y, {x}, [x, idx = std::move(idx), rows, n, k](const Tensor& g) {
    Tensor dx = Tensor::zeros(x.shape(), x.dtype());
    const Tensor gc = g.contiguous();
    dispatch_dtype(x.dtype(), [&]<typename T>() {
      T* d = dx.data<T>();
      const T* gp = gc.data<T>();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < k; ++j) d[r * n + idx[r * k + j]] += gp[r * k + j];
    });
    accumulate_grad(x, std::move(dx));
  });
}

namespace {
// out[i] = mask[i] != 0 ? a[i] : b[i], all three broadcast to `shape`. A true
// selection, not mask·a + (1 − mask)·b, so an inf or NaN on the side not
// chosen (masked_fill with −inf) never leaks through as 0·inf.
Tensor select_where(const Tensor& mask, const Tensor& a, const Tensor& b, const Shape& shape) {
  const Tensor m = mask.to(a.dtype()).expand(shape).contiguous();
  const Tensor ac = a.expand(shape).contiguous(), bc = b.expand(shape).contiguous();
  Tensor out = Tensor::empty(shape, a.dtype());
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    const T *mp = m.data<T>(), *ap = ac.data<T>(), *bp = bc.data<T>();
    T* o = out.data<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) o[i] = mp[i] != T(0) ? ap[i] : bp[i];
  });
  return out;
}
}  // namespace

// out = mask ? a : b, mask broadcasting: d a = mask ? g : 0, d b = mask ? 0 : g
Variable where(const Tensor& mask, const Variable& a, const Variable& b) {
  check_same_dtype(a.value(), b.value(), "where");
  const Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), b.shape()), mask.shape());
  Tensor y = select_where(mask, a.value(), b.value(), shape);
  return record("where", y, {a, b}, [a, b, mask, shape](const Tensor& g) {
    const Tensor zero = Tensor::zeros({}, g.dtype());
    if (a.requires_grad()) accumulate_grad(a, select_where(mask, g, zero, shape));
    if (b.requires_grad()) accumulate_grad(b, select_where(mask, zero, g, shape));
  });
}

// out = mask ? value : x: d x = mask ? 0 : g
Variable masked_fill(const Variable& x, const Tensor& mask, double value) {
  const Shape shape = broadcast_shapes(x.shape(), mask.shape());
  ATTN_CHECK(shape == x.shape(), "masked_fill: mask {} does not broadcast to {}",
             shape_str(mask.shape()), shape_str(x.shape()));
  Tensor y = select_where(mask, Tensor::scalar(value, x.dtype()), x.value(), shape);
  return record("masked_fill", y, {x}, [x, mask, shape](const Tensor& g) {
    accumulate_grad(x, select_where(mask, Tensor::zeros({}, g.dtype()), g, shape));
  });
}

}  // namespace attnlab
