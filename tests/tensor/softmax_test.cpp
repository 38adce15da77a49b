// Softmax / log-softmax over the last axis, and their backward, against a
// scalar reference in double on every SIMD target; extreme inputs (±1000,
// -inf) stay finite; the backward agrees with central differences.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "attnlab/tensor/ops.hpp"
#include "tests/tensor/kernel_test_util.hpp"

using namespace attnlab;
using attnlab::test::check_close;
using attnlab::test::for_each_target;
using attnlab::test::kDTypes;
using attnlab::test::tail_lengths;
using attnlab::test::tolerance;

namespace {

// Row by row in double, the textbook way: subtract the max, exponentiate, normalise.
std::vector<double> softmax_ref(const Tensor& x, bool log) {
  std::vector<double> v = x.to_vector();
  const int64_t n = x.dim() == 0 ? 1 : x.shape().back();
  for (size_t r = 0; n > 0 && r < v.size() / n; ++r) {
    double* row = v.data() + r * n;
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, row[i]);
    for (int64_t i = 0; i < n; ++i) s += std::exp(row[i] - m);
    for (int64_t i = 0; i < n; ++i)
      row[i] = log ? row[i] - m - std::log(s) : std::exp(row[i] - m) / s;
  }
  return v;
}

// dx for gradient g of y, in double (formulas of tensor/ops.hpp).
std::vector<double> backward_ref(const Tensor& y, const Tensor& g, bool log) {
  const std::vector<double> yv = y.to_vector(), gv = g.to_vector();
  std::vector<double> dx(yv.size());
  const int64_t n = y.shape().back();
  for (size_t r = 0; n > 0 && r < yv.size() / n; ++r) {
    double dot = 0, gsum = 0;
    for (int64_t i = 0; i < n; ++i) dot += gv[r * n + i] * yv[r * n + i], gsum += gv[r * n + i];
    for (int64_t i = 0; i < n; ++i) {
      const size_t k = r * n + i;
      dx[k] = log ? gv[k] - std::exp(yv[k]) * gsum : yv[k] * (gv[k] - dot);
    }
  }
  return dx;
}

}  // namespace

TEST_CASE("softmax and log_softmax rows at every length, on every target") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      const double tol = tolerance(dt);
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        Rng rng(n);
        const int64_t rows = n > 1000 ? 2 : 3;
        const Tensor x = Tensor::uniform({rows, n}, rng, -8, 8, dt);
        const Tensor y = softmax(x);
        CHECK(y.shape() == x.shape());
        check_close(y.to_vector(), softmax_ref(x, false), tol, tol / 100);
        check_close(sum(y, {-1}).to_vector(), std::vector<double>(rows, n ? 1.0 : 0.0), tol);
        check_close(log_softmax(x).to_vector(), softmax_ref(x, true), tol, tol);
      }
    }
  });
}

TEST_CASE("softmax is stable for large inputs and -inf") {
  const double inf = std::numeric_limits<double>::infinity();
  for_each_target([&] {
    for (DType dt : kDTypes) {
      for (int64_t n : {2, 5, 17, 40}) {
        CAPTURE(n);
        std::vector<double> v(n, 0.0);
        v[0] = 1000, v[1] = -1000;
        if (n > 2) v[2] = 999;
        if (n > 3) v[n - 1] = -inf;  // a masked entry, as in causal attention
        const Tensor x = Tensor::from_data<double>({1, n}, v).to(dt);
        const std::vector<double> y = softmax(x).to_vector();
        check_close(y, softmax_ref(x, false), tolerance(dt) * 4, 1e-30);
        const std::vector<double> ly = log_softmax(x).to_vector();
        check_close(ly, softmax_ref(x, true), tolerance(dt), tolerance(dt));
        if (n > 3) CHECK(ly[n - 1] == -inf);
        CHECK(y[1] == 0.0);
      }
      const Tensor same = Tensor::full({2, 9}, 1e30, dt);
      check_close(softmax(same).to_vector(), std::vector<double>(18, 1.0 / 9), tolerance(dt));
      CHECK(softmax(Tensor::from_data({2}, {1000, 1000}, dt)).to_vector() ==
            std::vector<double>{0.5, 0.5});
      CHECK(log_softmax(Tensor::from_data({2}, {1000, -1000}, dt)).to_vector() ==
            std::vector<double>{0, -2000});
    }
  });
}

TEST_CASE("softmax of strided input and odd shapes") {
  Rng rng(9);
  const Tensor base = Tensor::uniform({33, 20}, rng, -3, 3, DType::F64);
  const Tensor t = base.transpose(0, 1);  // rows are strided columns of base
  check_close(softmax(t).to_vector(), softmax_ref(t, false), 1e-12);
  check_close(log_softmax(t).to_vector(), softmax_ref(t, true), 1e-12);
  CHECK(softmax(Tensor::scalar(5)).item() == 1);
  CHECK(softmax(Tensor::zeros({3, 0})).shape() == Shape{3, 0});
  const Tensor x3 = Tensor::uniform({2, 3, 7}, rng, -3, 3);
  check_close(softmax(x3).to_vector(), softmax_ref(x3, false), 1e-5);
}

TEST_CASE("softmax backward matches the formulas, on every target") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        if (n == 0) continue;
        CAPTURE(n);
        Rng rng(n + 1);
        const Tensor x = Tensor::uniform({2, n}, rng, -4, 4, dt);
        const Tensor g = Tensor::uniform({2, n}, rng, -1, 1, dt);
        const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
        const Tensor y = softmax(x), ly = log_softmax(x);
        check_close(softmax_backward(y, g).to_vector(), backward_ref(y, g, false), tol, tol);
        check_close(log_softmax_backward(ly, g).to_vector(), backward_ref(ly, g, true), tol * 10,
                    tol * 10);
      }
    }
  });
}

TEST_CASE("softmax backward agrees with central differences (f64)") {
  Rng rng(21);
  const int64_t n = 13;
  const Tensor x = Tensor::uniform({2, n}, rng, -3, 3, DType::F64);
  const Tensor w = Tensor::uniform({2, n}, rng, -1, 1, DType::F64);  // L = Σ w ⊙ f(x)
  for (bool log : {false, true}) {
    CAPTURE(log);
    auto f = [&](const Tensor& t) { return log ? log_softmax(t) : softmax(t); };
    auto loss = [&](const Tensor& t) { return sum(mul(w, f(t)), {}).item(); };
    const Tensor y = f(x);
    const std::vector<double> analytic =
        (log ? log_softmax_backward(y, w) : softmax_backward(y, w)).to_vector();
    std::vector<double> numeric(x.numel());
    const double h = 1e-6;
    for (int64_t i = 0; i < x.numel(); ++i) {
      Tensor up = x.clone(), down = x.clone();
      up.data<double>()[i] += h;
      down.data<double>()[i] -= h;
      numeric[i] = (loss(up) - loss(down)) / (2 * h);
    }
    check_close(analytic, numeric, 1e-6, 1e-8);
  }
}

TEST_CASE("softmax backward errors") {
  CHECK_THROWS_WITH_AS(softmax_backward(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})),
                       "softmax backward: shapes [2, 3] and [3, 2] differ", Error);
  CHECK_THROWS_WITH_AS(log_softmax_backward(Tensor::zeros({2}), Tensor::zeros({2}, DType::F64)),
                       "log_softmax backward: dtypes f32 and f64 differ", Error);
}
