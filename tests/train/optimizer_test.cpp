// AdamW, the LR schedule and gradient clipping against hand-computed values.
#include <doctest/doctest.h>

#include <cmath>

#include "attnlab/train/adamw.hpp"
#include "attnlab/train/grad_clip.hpp"
#include "attnlab/train/lr_schedule.hpp"

using namespace attnlab;

TEST_CASE("AdamW: two steps against a hand computation, decay on matrices only") {
  Variable w(Tensor::from_data({1, 2}, {1.0, -2.0}, DType::F64), true);  // a matrix: decayed
  Variable b(Tensor::from_data({1}, {0.5}, DType::F64), true);           // a bias: not decayed
  AdamW opt({{"w", w}, {"b", b}}, {.beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1});
  const double lr = 0.01;
  w.set_grad(Tensor::from_data({1, 2}, {0.5, 0.25}, DType::F64));
  b.set_grad(Tensor::from_data({1}, {-1.0}, DType::F64));
  opt.step(lr);
  // Step 1: m̂ = g, v̂ = g², so the Adam part is g/(|g| + ε) ≈ sign(g).
  auto adam1 = [](double g) { return g / (std::abs(g) + 1e-8); };
  const double w0 = 1.0 - lr * (adam1(0.5) + 0.1 * 1.0);
  const double w1 = -2.0 - lr * (adam1(0.25) + 0.1 * -2.0);
  const double b0 = 0.5 - lr * adam1(-1.0);
  CHECK(w.value().at({0, 0}) == doctest::Approx(w0).epsilon(1e-12));
  CHECK(w.value().at({0, 1}) == doctest::Approx(w1).epsilon(1e-12));
  CHECK(b.value().at({0}) == doctest::Approx(b0).epsilon(1e-12));
  // Step 2 with gradient g2: m = 0.9·0.1·g1·… written out.
  w.set_grad(Tensor::from_data({1, 2}, {-0.5, 1.0}, DType::F64));
  b.set_grad(Tensor::from_data({1}, {2.0}, DType::F64));
  opt.step(lr);
  auto adam2 = [](double g1, double g2) {
    const double m = 0.9 * (0.1 * g1) + 0.1 * g2, v = 0.99 * (0.01 * g1 * g1) + 0.01 * g2 * g2;
    const double mh = m / (1 - 0.9 * 0.9), vh = v / (1 - 0.99 * 0.99);
    return mh / (std::sqrt(vh) + 1e-8);
  };
  CHECK(w.value().at({0, 0}) ==
        doctest::Approx(w0 - lr * (adam2(0.5, -0.5) + 0.1 * w0)).epsilon(1e-12));
  CHECK(w.value().at({0, 1}) ==
        doctest::Approx(w1 - lr * (adam2(0.25, 1.0) + 0.1 * w1)).epsilon(1e-12));
  CHECK(b.value().at({0}) == doctest::Approx(b0 - lr * adam2(-1.0, 2.0)).epsilon(1e-12));
  CHECK(opt.steps_taken() == 2);
}

TEST_CASE("AdamW skips a parameter without a gradient") {
  Variable p(Tensor::ones({2, 2}, DType::F64), true);
  AdamW opt({{"p", p}}, {});
  opt.step(0.1);
  CHECK(p.value().to_vector() == std::vector<double>(4, 1.0));
  CHECK(opt.first_moments()[0].to_vector() == std::vector<double>(4, 0.0));
}

TEST_CASE("LR schedule: warmup, cosine, floor (nanoGPT's get_lr)") {
  const LrSchedule s{.lr = 1e-3, .min_lr = 1e-4, .warmup_steps = 100, .decay_steps = 2000};
  CHECK(s.at(0) == doctest::Approx(1e-3 * 1 / 101));
  CHECK(s.at(99) == doctest::Approx(1e-3 * 100 / 101));
  CHECK(s.at(100) == doctest::Approx(1e-3));
  CHECK(s.at(1050) == doctest::Approx(1e-4 + 0.5 * 0.9e-3));  // halfway: cos(π/2) = 0
  CHECK(s.at(2000) == doctest::Approx(1e-4));
  CHECK(s.at(5000) == doctest::Approx(1e-4));
}

TEST_CASE("global-norm clipping scales all gradients together") {
  Variable a(Tensor::zeros({2}, DType::F64), true), b(Tensor::zeros({1}, DType::F64), true);
  a.set_grad(Tensor::from_data({2}, {3.0, 0.0}, DType::F64));
  b.set_grad(Tensor::from_data({1}, {4.0}, DType::F64));
  std::vector<std::pair<std::string, Variable>> params = {{"a", a}, {"b", b}};
  CHECK(clip_grad_norm(params, 10.0) == doctest::Approx(5.0));  // below the cap: untouched
  CHECK(a.grad().at({0}) == 3.0);
  CHECK(clip_grad_norm(params, 1.0) == doctest::Approx(5.0));
  CHECK(a.grad().at({0}) == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(b.grad().at({0}) == doctest::Approx(0.8).epsilon(1e-6));
  CHECK(global_grad_norm(params) == doctest::Approx(1.0).epsilon(1e-6));
}
