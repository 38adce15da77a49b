// Unary kernels and their backward against scalar references (std:: math in
// double) on every SIMD target, at lengths around the vector width; special
// values (inf, NaN, overflow); backward by central differences in f64.
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

constexpr UnaryOp kUnaryOps[] = {UnaryOp::Neg,     UnaryOp::Exp,  UnaryOp::Log,  UnaryOp::Sqrt,
                                 UnaryOp::Rsqrt,   UnaryOp::Tanh, UnaryOp::Relu, UnaryOp::Silu,
                                 UnaryOp::Sigmoid, UnaryOp::Gelu};

constexpr double kGeluScale = 0.7978845608028654, kGeluCubic = 0.044715;

double forward_ref(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Exp:
      return std::exp(x);
    case UnaryOp::Log:
      return std::log(x);
    case UnaryOp::Sqrt:
      return std::sqrt(x);
    case UnaryOp::Rsqrt:
      return 1 / std::sqrt(x);
    case UnaryOp::Tanh:
      return std::tanh(x);
    case UnaryOp::Relu:
      return x > 0 ? x : 0;
    case UnaryOp::Silu:
      return x / (1 + std::exp(-x));
    case UnaryOp::Sigmoid:
      return 1 / (1 + std::exp(-x));
    case UnaryOp::Gelu:
      return 0.5 * x * (1 + std::tanh(kGeluScale * (x + kGeluCubic * x * x * x)));
  }
  return 0;
}

// f'(x), written independently of the kernels' formulas where possible.
double derivative_ref(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::Neg:
      return -1;
    case UnaryOp::Exp:
      return std::exp(x);
    case UnaryOp::Log:
      return 1 / x;
    case UnaryOp::Sqrt:
      return 0.5 / std::sqrt(x);
    case UnaryOp::Rsqrt:
      return -0.5 * std::pow(x, -1.5);
    case UnaryOp::Tanh:
      return 1 / (std::cosh(x) * std::cosh(x));
    case UnaryOp::Relu:
      return x > 0 ? 1 : 0;
    case UnaryOp::Silu: {
      const double s = 1 / (1 + std::exp(-x));
      return s + x * s * (1 - s);
    }
    case UnaryOp::Sigmoid: {
      const double s = 1 / (1 + std::exp(-x));
      return s * (1 - s);
    }
    case UnaryOp::Gelu: {
      const double u = kGeluScale * (x + kGeluCubic * x * x * x);
      const double sech2 = 1 / (std::cosh(u) * std::cosh(u));
      return 0.5 * (1 + std::tanh(u)) + 0.5 * x * sech2 * kGeluScale * (1 + 3 * kGeluCubic * x * x);
    }
  }
  return 0;
}

bool positive_domain(UnaryOp op) {
  return op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt;
}

Tensor input(UnaryOp op, const Shape& shape, DType dt, uint64_t seed) {
  Rng rng(seed);
  return positive_domain(op) ? Tensor::uniform(shape, rng, 0.05, 20.0, dt)
                             : Tensor::uniform(shape, rng, -6.0, 6.0, dt);
}

std::vector<double> forward_ref(UnaryOp op, const Tensor& x) {
  std::vector<double> v = x.to_vector();
  for (double& e : v) e = forward_ref(op, e);
  return v;
}

}  // namespace

TEST_CASE("unary ops match std:: math at every length, on every target") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      const double tol = tolerance(dt);
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        for (UnaryOp op : kUnaryOps) {
          CAPTURE(unary_name(op));
          const Tensor x = input(op, {n}, dt, 100 + n);
          const Tensor y = unary(op, x);
          CHECK(y.shape() == x.shape());
          check_close(y.to_vector(), forward_ref(op, x), tol, tol / 10);
        }
      }
    }
  });
}

TEST_CASE("unary ops on strided inputs") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (UnaryOp op : kUnaryOps) {
        CAPTURE(unary_name(op));
        const Tensor x = input(op, {23, 41}, dt, 7).transpose(0, 1).narrow(0, 3, 30);
        check_close(unary(op, x).to_vector(), forward_ref(op, x), tolerance(dt), tolerance(dt));
      }
    }
  });
}

TEST_CASE("unary special values: overflow, zero, negative, inf, NaN") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  for_each_target([&] {
    for (DType dt : kDTypes) {
      // Pad to 19 elements so the special values sit in whole vectors and tails.
      auto run = [&](UnaryOp op, std::vector<double> in) {
        CAPTURE(unary_name(op));
        while (in.size() < 19) in.push_back(0.5);
        Tensor x = Tensor::from_data<double>({static_cast<int64_t>(in.size())}, in).to(dt);
        std::vector<double> want = x.to_vector();
        for (double& e : want) e = forward_ref(op, e);
        // Rounded to the dtype: exp(700) is inf in f32.
        want = Tensor::from_data<double>({x.numel()}, want).to(dt).to_vector();
        check_close(unary(op, x).to_vector(), want, tolerance(dt), 1e-30);
      };
      run(UnaryOp::Exp, {200, 1000, -200, -1000, inf, -inf, nan, 88, -87, 700, -700});
      run(UnaryOp::Log, {0, -1, inf, nan, 1e-30, 1e30, -inf});
      run(UnaryOp::Sqrt, {0, inf, 1e30});
      run(UnaryOp::Tanh, {1000, -1000, inf, -inf, nan, 1e-6, -1e-6});
      run(UnaryOp::Sigmoid, {1000, -1000, 100, -100, inf, -inf, nan});
      run(UnaryOp::Silu, {1000, -1000, 100, -100, inf, nan});
      run(UnaryOp::Gelu, {100, -100, 10, -10, nan});
      run(UnaryOp::Relu, {0, -0.0, -inf, inf, 1e-30, -1e-30});
    }
  });
}

TEST_CASE("unary_backward matches the analytic derivative, every length and target") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        Rng rng(n);
        const Tensor g = Tensor::uniform({n}, rng, -1, 1, dt);
        for (UnaryOp op : kUnaryOps) {
          CAPTURE(unary_name(op));
          const Tensor x = input(op, {n}, dt, 200 + n);
          const Tensor dx = unary_backward(op, x, unary(op, x), g);
          std::vector<double> want = x.to_vector();
          const std::vector<double> gv = g.to_vector();
          for (size_t i = 0; i < want.size(); ++i) want[i] = gv[i] * derivative_ref(op, want[i]);
          // f32: y = f(x) carries its own rounding into the gradient; allow for it.
          const double tol = dt == DType::F32 ? 2e-5 : 1e-11;
          check_close(dx.to_vector(), want, tol, tol);
        }
      }
    }
  });
}

TEST_CASE("unary_backward agrees with central differences of unary (f64)") {
  const int64_t n = 37;
  const double h = 1e-6;
  for (UnaryOp op : kUnaryOps) {
    CAPTURE(unary_name(op));
    const Tensor x = input(op, {n}, DType::F64, 5);  // relu's kink at 0 is not among them
    const Tensor g = Tensor::ones({n}, DType::F64);
    const std::vector<double> analytic = unary_backward(op, x, unary(op, x), g).to_vector();
    const std::vector<double> up = unary(op, add_scalar(x, h)).to_vector();
    const std::vector<double> down = unary(op, add_scalar(x, -h)).to_vector();
    std::vector<double> numeric(n);
    for (int64_t i = 0; i < n; ++i) numeric[i] = (up[i] - down[i]) / (2 * h);
    check_close(analytic, numeric, 1e-6, 1e-7);
  }
}

TEST_CASE("unary_backward reads only what it needs, and says what is missing") {
  const Tensor x = Tensor::from_data({3}, {0.5, 1, 2}), g = Tensor::ones({3});
  const Tensor y = unary(UnaryOp::Exp, x);
  // exp's gradient reads y only; x may be left undefined.
  check_close(unary_backward(UnaryOp::Exp, Tensor(), y, g).to_vector(), y.to_vector(), 0.0);
  check_close(unary_backward(UnaryOp::Neg, Tensor(), Tensor(), g).to_vector(), {-1, -1, -1}, 0.0);
  CHECK_THROWS_WITH_AS(unary_backward(UnaryOp::Log, Tensor(), y, g),
                       "log backward needs its input x", Error);
  CHECK_THROWS_WITH_AS(unary_backward(UnaryOp::Tanh, x, Tensor(), g),
                       "tanh backward needs its output y", Error);
  CHECK_THROWS_WITH_AS(unary_backward(UnaryOp::Relu, x, y, Tensor::ones({4})),
                       "relu backward: shapes [3] and [4] differ", Error);
  // The gradient at relu's kink is 0.
  CHECK(unary_backward(UnaryOp::Relu, Tensor::zeros({1}), Tensor(), Tensor::ones({1})).item() == 0);
  // Strided inputs are fine.
  Rng rng(3);
  const Tensor xt = Tensor::uniform({5, 9}, rng, 0.1, 1.0).transpose(0, 1);
  const Tensor dx = unary_backward(UnaryOp::Log, xt, Tensor(), xt);
  check_close(dx.to_vector(), std::vector<double>(45, 1.0), 1e-6);
}
