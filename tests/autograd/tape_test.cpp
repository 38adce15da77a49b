// The tape's rules: accumulation, single-use graphs, no-grad, detach, and
// gradcheck itself catching a wrong backward.
#include "tests/autograd/gradcheck_util.hpp"

using namespace attnlab;
using testing::rand64;

TEST_CASE("gradients accumulate across uses and across backward calls") {
  Variable x(Tensor::from_data({2}, {1.0, 2.0}, DType::F64), true);
  Variable y = sum(mul(x, x));  // dy/dx = 2x
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{2, 4});
  Variable z = sum(mul_scalar(x, 3.0));  // a second loss adds 3
  z.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{5, 7});
  x.zero_grad();
  CHECK(!x.grad().defined());
}

TEST_CASE("a graph is used once: a second backward throws") {
  Variable x(Tensor::ones({3}, DType::F64), true);
  Variable y = sum(exp(x));
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("a second time: a graph is used once"),
                       Error);
}

TEST_CASE("intermediate gradients are dropped, leaf gradients kept") {
  Variable x(Tensor::ones({3}, DType::F64), true);
  Variable h = exp(x);
  Variable y = sum(h);
  y.backward();
  CHECK(!h.grad().defined());
  CHECK(x.grad().defined());
}

TEST_CASE("no-grad guard records nothing; detach cuts the graph") {
  Variable x(Tensor::ones({2}, DType::F64), true);
  {
    NoGradGuard guard;
    Variable y = exp(x);
    CHECK(!y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(grad_mode_enabled());
  Variable d = exp(x).detach();
  CHECK(!d.requires_grad());
  Variable c(Tensor::ones({2}, DType::F64), false);
  CHECK(!add(c, c).requires_grad());
  CHECK_THROWS_WITH_AS(add(c, c).backward(Tensor::ones({2}, DType::F64)),
                       "backward() of a value that requires no gradient", Error);
}

TEST_CASE("backward without a seed needs a scalar") {
  Variable x(Tensor::ones({2}, DType::F64), true);
  CHECK_THROWS_WITH_AS(exp(x).backward(), "backward() without a seed needs a scalar, got shape [2]",
                       Error);
}

TEST_CASE("a deep graph does not overflow the stack") {
  Variable x(Tensor::ones({1}, DType::F64), true);
  Variable y = x;
  for (int i = 0; i < 100000; ++i) y = add_scalar(y, 1e-6);
  sum(y).backward();
  CHECK(x.grad().item() == 1.0);
}

// An op whose backward is wrong on purpose (it forgets the factor 2 of d x²).
Variable wrong_square(const Variable& x) {
  return record("test.wrong_square", attnlab::mul(x.value(), x.value()), {x},
                [x](const Tensor& g) { accumulate_grad(x, attnlab::mul(g, x.value())); });
}
Variable right_square(const Variable& x) {
  return record("test.right_square", attnlab::mul(x.value(), x.value()), {x}, [x](const Tensor& g) {
    accumulate_grad(x, attnlab::mul_scalar(attnlab::mul(g, x.value()), 2.0));
  });
}

TEST_CASE("gradcheck reports a wrong backward, and passes a right one") {
  const Tensor x = rand64({4, 3});
  const GradcheckResult bad =
      gradcheck([](const std::vector<Variable>& v) { return wrong_square(v[0]); }, {x});
  CHECK(!bad.ok);
  CHECK(bad.worst_error > 1.0);
  CHECK(bad.message.find("FAILED") != std::string::npos);
  CHECK(bad.analytic == doctest::Approx(bad.numeric / 2).epsilon(1e-5));
  const GradcheckResult good =
      gradcheck([](const std::vector<Variable>& v) { return right_square(v[0]); }, {x});
  CHECK(good.ok);
  CHECK(good.worst_error < 1e-2);
  CHECK(good.ops == std::vector<std::string>{"test.right_square"});
}

TEST_CASE("gradcheck refuses f32 inputs") {
  CHECK_THROWS_WITH_AS(
      gradcheck([](const std::vector<Variable>& v) { return exp(v[0]); }, {Tensor::ones({2})}),
      "gradcheck needs f64 inputs, got f32", Error);
}
