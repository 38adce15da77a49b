// Reductions. Their gradients spread g back over the reduced axes: a
// broadcast, which `expand` does as a view (stride 0) with no copy.
#include <algorithm>

#include "attnlab/autograd/ops.hpp"

namespace attnlab {
namespace {

// The shape of x with the reduced axes kept as size 1, so a gradient of the
// (keepdim = false) result can be viewed back and broadcast over x.
Shape kept_shape(const Shape& x, const std::vector<int64_t>& axes) {
  Shape kept = x;
  const int64_t nd = static_cast<int64_t>(x.size());
  if (axes.empty()) std::fill(kept.begin(), kept.end(), 1);
  for (int64_t ax : axes) kept[normalize_axis(ax, nd)] = 1;
  return kept;
}

int64_t reduced_count(const Shape& x, const std::vector<int64_t>& axes) {
  if (axes.empty()) return shape_numel(x);
  int64_t n = 1;
  for (int64_t ax : axes) n *= x[normalize_axis(ax, static_cast<int64_t>(x.size()))];
  return n;
}

}  // namespace

// d sum = g broadcast over the reduced axes
Variable sum(const Variable& x, const std::vector<int64_t>& axes, bool keepdim) {
  const Shape kept = kept_shape(x.shape(), axes);
  return record("sum", attnlab::sum(x.value(), axes, keepdim), {x}, [x, kept](const Tensor& g) {
    accumulate_grad(x, g.reshape(kept).expand(x.shape()));
  });
}

// d mean = g / n broadcast over the reduced axes
Variable mean(const Variable& x, const std::vector<int64_t>& axes, bool keepdim) {
  const Shape kept = kept_shape(x.shape(), axes);
  const double inv_n =
      1.0 / static_cast<double>(std::max<int64_t>(reduced_count(x.shape(), axes), 1));
  return record("mean", attnlab::mean(x.value(), axes, keepdim), {x},
                [x, kept, inv_n](const Tensor& g) {
                  accumulate_grad(x, mul_scalar(g.reshape(kept), inv_n).expand(x.shape()));
                });
}

// d max = g at the (first) position of the maximum, 0 elsewhere
Variable max(const Variable& x, int64_t axis, bool keepdim) {
  axis = normalize_axis(axis, x.dim());
  std::vector<int64_t> argmax;
  Tensor y = attnlab::max(x.value(), axis, keepdim, &argmax);
  return record("max", y, {x}, [x, axis, argmax = std::move(argmax)](const Tensor& g) {
    // Scatter g into a zero tensor shaped like x, one element per reduced row.
    Tensor dx = Tensor::zeros(x.shape(), x.dtype());
    const Tensor gc = g.contiguous();
    const Shape& s = x.shape();
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= s[i];
    for (int64_t i = axis + 1; i < x.dim(); ++i) inner *= s[i];
    const int64_t n = s[axis];
    dispatch_dtype(x.dtype(), [&]<typename T>() {
      T* d = dx.data<T>();
      const T* gp = gc.data<T>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t r = o * inner + i;
          d[(o * n + argmax[r]) * inner + i] += gp[r];
        }
    });
    accumulate_grad(x, std::move(dx));
  });
}

}  // namespace attnlab
