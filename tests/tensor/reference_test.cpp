// The plain-loop references of tensor/reference/ against themselves: each
// backward is the gradient of its forward by central differences (so the
// fast kernels, held to these references, are held to the true gradient).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "attnlab/tensor/reference/attention_reference.hpp"
#include "attnlab/tensor/reference/cross_entropy_reference.hpp"
#include "attnlab/tensor/reference/rms_norm_reference.hpp"
#include "attnlab/tensor/reference/rope_reference.hpp"
#include "attnlab/tensor/reference/swiglu_reference.hpp"

using namespace attnlab;

namespace {

Tensor randn(const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  return Tensor::normal(shape, rng, 0.0, 1.0, DType::F64);
}

// Σ dout ⊙ f(x): its gradient with respect to x is what a backward returns.
double weighted_sum(const Tensor& y, const Tensor& dout) {
  const std::vector<double> a = y.to_vector(), b = dout.to_vector();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Largest |analytic − numeric| over every element of x, for L(x).
double worst_gradient_error(Tensor x, const Tensor& analytic,
                            const std::function<double(const Tensor&)>& loss) {
  const double h = 1e-6;
  const std::vector<double> want = analytic.to_vector();
  double worst = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    double* p = x.data<double>() + i;
    const double keep = *p;
    *p = keep + h;
    const double up = loss(x);
    *p = keep - h;
    const double down = loss(x);
    *p = keep;
    worst = std::max(worst, std::abs((up - down) / (2 * h) - want[i]));
  }
  return worst;
}

}  // namespace

TEST_CASE("reference attention: backward is the gradient of forward; probabilities sum to 1") {
  const Tensor q = randn({1, 3, 4, 5}, 1), k = randn({1, 4, 2, 5}, 2), v = randn({1, 4, 2, 3}, 3);
  const Tensor dout = randn({1, 3, 4, 3}, 4);
  const double scale = 0.4;
  const auto g = reference::attention_backward(dout, q, k, v, scale);
  auto out = [&](const Tensor& qq, const Tensor& kk, const Tensor& vv) {
    return weighted_sum(reference::attention_forward(qq, kk, vv, scale).out, dout);
  };
  CHECK(worst_gradient_error(q.clone(), g.dq, [&](const Tensor& t) { return out(t, k, v); }) <
        1e-7);
  CHECK(worst_gradient_error(k.clone(), g.dk, [&](const Tensor& t) { return out(q, t, v); }) <
        1e-7);
  CHECK(worst_gradient_error(v.clone(), g.dv, [&](const Tensor& t) { return out(q, k, t); }) <
        1e-7);
  // Query i of Tq = 3 over Tk = 4 keys sits at position 1 + i: it sees keys 0 … 1 + i.
  const Tensor p = reference::attention_probabilities(q, k, scale);
  REQUIRE(p.shape() == Shape{1, 4, 3, 4});
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t i = 0; i < 3; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < 4; ++j) sum += p.at({0, h, i, j});
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));
      if (i < 2) CHECK(p.at({0, h, i, 3}) == 0.0);
    }
}

TEST_CASE("reference rms_norm, swiglu, rope, cross_entropy: backward is the gradient of forward") {
  const Tensor x = randn({3, 6}, 5), w = randn({6}, 6), dout = randn({3, 6}, 7);
  const auto rg = reference::rms_norm_backward(dout, x, w, 1e-5);
  CHECK(worst_gradient_error(x.clone(), rg.dx, [&](const Tensor& t) {
          return weighted_sum(reference::rms_norm_forward(t, w, 1e-5).y, dout);
        }) < 1e-7);
  CHECK(worst_gradient_error(w.clone(), rg.dweight, [&](const Tensor& t) {
          return weighted_sum(reference::rms_norm_forward(x, t, 1e-5).y, dout);
        }) < 1e-7);

  const Tensor up = randn({3, 6}, 8);
  const auto sg = reference::swiglu_backward(dout, x, up);
  CHECK(worst_gradient_error(x.clone(), sg.dgate, [&](const Tensor& t) {
          return weighted_sum(reference::swiglu_forward(t, up), dout);
        }) < 1e-7);
  CHECK(worst_gradient_error(up.clone(), sg.dup, [&](const Tensor& t) {
          return weighted_sum(reference::swiglu_forward(x, t), dout);
        }) < 1e-7);

  const Tensor r = randn({1, 2, 2, 6}, 9), rd = randn({1, 2, 2, 6}, 10);
  CHECK(worst_gradient_error(r.clone(), reference::rope_backward(rd, 4, 100.0, 3),
                             [&](const Tensor& t) {
                               return weighted_sum(reference::rope_forward(t, 4, 100.0, 3), rd);
                             }) < 1e-7);

  const std::vector<int32_t> targets{2, 0, 5};
  CHECK(worst_gradient_error(
            x.clone(), reference::cross_entropy_backward(x, targets, 1.0),
            [&](const Tensor& t) { return reference::cross_entropy_forward(t, targets); }) < 1e-7);
}
