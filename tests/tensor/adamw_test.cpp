// AdamW: one step against numbers worked out by hand, several steps against
// a scalar loop at every length on every SIMD target, and the errors.
#include <doctest/doctest.h>

#include <cmath>

#include "attnlab/tensor/ops.hpp"
#include "tests/tensor/kernel_test_util.hpp"

using namespace attnlab;
using attnlab::test::check_close;
using attnlab::test::for_each_target;
using attnlab::test::kDTypes;
using attnlab::test::tail_lengths;

TEST_CASE("adamw: one step by hand") {
  // Step 1 with m = v = 0: m = 0.1·g, v = 0.001·g², m̂ = g, v̂ = g², so the
  // Adam part is g / (|g| + ε) ≈ sign(g). With lr 0.1 and wd 0.01:
  //   p = 1,  g = 0.5  ->  1 - 0.1·(0.5/(0.5 + 1e-8) + 0.01·1) = 0.899000002
  //   p = -2, g = -4   -> -2 - 0.1·(-4/(4 + 1e-8) + 0.01·(-2)) = -1.89800000025
  for (DType dt : kDTypes) {
    Tensor p = Tensor::from_data({2}, {1, -2}, dt);
    const Tensor g = Tensor::from_data({2}, {0.5, -4}, dt);
    Tensor m = Tensor::zeros({2}, dt), v = Tensor::zeros({2}, dt);
    AdamWStep s;
    s.lr = 0.1;
    s.weight_decay = 0.01;
    adamw_update_(p, g, m, v, s);
    const double tol = dt == DType::F32 ? 5e-7 : 1e-15;
    check_close(p.to_vector(),
                {1 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.01), -2 - 0.1 * (-4 / (4 + 1e-8) - 0.02)}, tol);
    check_close(p.to_vector(), {0.899000002, -1.89800000025}, tol);
    check_close(m.to_vector(), {0.05, -0.4}, tol);
    check_close(v.to_vector(), {0.00025, 0.016}, tol);
    // Step 2 with the same gradient: m = 0.9·m + 0.1·g, v = 0.999·v + 0.001·g².
    const std::vector<double> p1 = p.to_vector();
    s.step = 2;
    adamw_update_(p, g, m, v, s);
    const double gv[2] = {0.5, -4};
    for (int i = 0; i < 2; ++i) {
      const double mi = 0.9 * 0.1 * gv[i] + 0.1 * gv[i],
                   vi = 0.999 * 0.001 * gv[i] * gv[i] + 0.001 * gv[i] * gv[i];
      const double m_hat = mi / (1 - 0.9 * 0.9), v_hat = vi / (1 - 0.999 * 0.999);
      const double want = p1[i] - 0.1 * (m_hat / (std::sqrt(v_hat) + 1e-8) + 0.01 * p1[i]);
      CHECK(p.at({i}) == doctest::Approx(want).epsilon(tol));
    }
  }
}

TEST_CASE("adamw at every length, on every target, matches a scalar loop") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        Rng rng(n);
        Tensor p = Tensor::normal({n}, rng, 0, 1, dt);
        Tensor m = Tensor::normal({n}, rng, 0, 0.1, dt);
        Tensor v = Tensor::uniform({n}, rng, 0, 0.01, dt);
        const Tensor g = Tensor::normal({n}, rng, 0, 1, dt);
        std::vector<double> pr = p.to_vector(), mr = m.to_vector(), vr = v.to_vector();
        const std::vector<double> gr = g.to_vector();
        AdamWStep s;
        s.lr = 3e-4;
        s.beta2 = 0.95;
        s.weight_decay = 0.1;
        s.step = 7;
        for (int64_t i = 0; i < n; ++i) {
          mr[i] = s.beta1 * mr[i] + (1 - s.beta1) * gr[i];
          vr[i] = s.beta2 * vr[i] + (1 - s.beta2) * gr[i] * gr[i];
          const double m_hat = mr[i] / (1 - std::pow(s.beta1, 7));
          const double v_hat = vr[i] / (1 - std::pow(s.beta2, 7));
          pr[i] -= s.lr * (m_hat / (std::sqrt(v_hat) + s.eps) + s.weight_decay * pr[i]);
        }
        adamw_update_(p, g, m, v, s);
        const double tol = dt == DType::F32 ? 1e-6 : 1e-14;
        check_close(p.to_vector(), pr, tol, tol);
        check_close(m.to_vector(), mr, tol, tol);
        check_close(v.to_vector(), vr, tol, tol);
      }
    }
  });
}

TEST_CASE("adamw errors") {
  Tensor p = Tensor::zeros({2, 3}), m = Tensor::zeros({2, 3}), v = Tensor::zeros({2, 3});
  AdamWStep s;
  CHECK_THROWS_WITH_AS(adamw_update_(p, Tensor::zeros({3, 2}), m, v, s),
                       "adamw: param and grad: shapes [2, 3] and [3, 2] differ", Error);
  Tensor v_bad = Tensor::zeros({6});
  CHECK_THROWS_WITH_AS(adamw_update_(p, p, m, v_bad, s),
                       "adamw: param and v: shapes [2, 3] and [6] differ", Error);
  CHECK_THROWS_WITH_AS(adamw_update_(p, Tensor::zeros({2, 3}, DType::F64), m, v, s),
                       "adamw: param and grad: dtypes f32 and f64 differ", Error);
  Tensor pt = Tensor::zeros({3, 2}).transpose(0, 1);
  CHECK_THROWS_WITH_AS(adamw_update_(pt, p, m, v, s),
                       "adamw: param, grad, m and v of shape [2, 3] must all be contiguous", Error);
  s.step = 0;
  CHECK_THROWS_WITH_AS(adamw_update_(p, p, m, v, s), "adamw: step is 0, it counts from 1", Error);
}
