// Shape ops move no numbers, so their backward moves the gradient back into
// the input's layout: reshape it back, permute it back, pad it back.
#include <numeric>

#include "attnlab/autograd/ops.hpp"

namespace attnlab {

// A view when x is contiguous (no copy); backward views g back.
Variable reshape(const Variable& x, const Shape& shape) {
  return record("reshape", x.value().reshape(shape), {x},
                [x](const Tensor& g) { accumulate_grad(x, g.reshape(x.shape())); });
}

// A view; backward applies the inverse permutation (also a view).
Variable permute(const Variable& x, const std::vector<int64_t>& order) {
  Tensor y = x.value().permute(order);
  std::vector<int64_t> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[normalize_axis(order[i], x.dim())] = i;
  return record("permute", y, {x},
                [x, inverse](const Tensor& g) { accumulate_grad(x, g.permute(inverse)); });
}

Variable transpose(const Variable& x, int64_t a, int64_t b) {
  std::vector<int64_t> order(x.dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(a, x.dim())], order[normalize_axis(b, x.dim())]);
  return permute(x, order);
}

// A view of [start, start+length) along axis; backward writes g into that
// window of a zero gradient.
Variable narrow(const Variable& x, int64_t axis, int64_t start, int64_t length) {
  axis = normalize_axis(axis, x.dim());
  return record("narrow", x.value().narrow(axis, start, length), {x},
                [x, axis, start, length](const Tensor& g) {
                  Tensor dx = Tensor::zeros(x.shape(), x.dtype());
                  dx.narrow(axis, start, length).copy_(g);
                  accumulate_grad(x, std::move(dx));
                });
}

// Joins along an axis; backward hands each input its window of g (a view).
Variable concat(const std::vector<Variable>& xs, int64_t axis) {
  ATTN_CHECK(!xs.empty(), "concat of no tensors");
  const int64_t nd = xs[0].dim();
  axis = normalize_axis(axis, nd);
  Shape shape = xs[0].shape();
  shape[axis] = 0;
  for (const Variable& x : xs) {
    Shape want = shape;
    want[axis] = x.size(axis);
    ATTN_CHECK(x.dim() == nd && x.shape() == want, "concat along axis {}: shapes {} and {} differ",
               axis, shape_str(xs[0].shape()), shape_str(x.shape()));
    check_same_dtype(xs[0].value(), x.value(), "concat");
    shape[axis] += x.size(axis);
  }
  Tensor y = Tensor::empty(shape, xs[0].dtype());
  int64_t at = 0;
  for (const Variable& x : xs) {
    y.narrow(axis, at, x.size(axis)).copy_(x.value());
    at += x.size(axis);
  }
  return record("concat", y, xs, [xs, axis](const Tensor& g) {
    int64_t at = 0;
    for (const Variable& x : xs) {
      accumulate_grad(x, g.narrow(axis, at, x.size(axis)));
      at += x.size(axis);
    }
  });
}

// Splitting is narrowing, once per piece.
std::vector<Variable> split(const Variable& x, const std::vector<int64_t>& sizes, int64_t axis) {
  axis = normalize_axis(axis, x.dim());
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  ATTN_CHECK(total == x.size(axis), "split sizes add up to {}, but axis {} of shape {} has {}",
             total, axis, shape_str(x.shape()), x.size(axis));
  std::vector<Variable> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, axis, at, s));
    at += s;
  }
  return out;
}

// An explicit copy into row-major order; the gradient passes through.
Variable contiguous(const Variable& x) {
  if (x.value().is_contiguous()) return x;
  return record("contiguous", x.value().contiguous(), {x},
                [x](const Tensor& g) { accumulate_grad(x, g); });
}

}  // namespace attnlab
