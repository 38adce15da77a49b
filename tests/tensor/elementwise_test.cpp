// Elementwise kernels against a plain scalar loop: every binary op on every
// SIMD target, at lengths around the vector width, contiguous and strided,
// with numpy broadcasting, and the in-place updates.
#include <doctest/doctest.h>

#include <cmath>

#include "attnlab/tensor/ops.hpp"
#include "tests/tensor/kernel_test_util.hpp"

using namespace attnlab;
using attnlab::test::check_close;
using attnlab::test::for_each_target;
using attnlab::test::kDTypes;
using attnlab::test::tail_lengths;

namespace {

constexpr BinaryOp kBinaryOps[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul,
                                   BinaryOp::Div, BinaryOp::Max, BinaryOp::Min};

// The op in the lane type itself, so results must match bit for bit.
template <typename T>
T scalar_op(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    case BinaryOp::Div:
      return a / b;
    case BinaryOp::Max:
      return std::max(a, b);
    case BinaryOp::Min:
      return std::min(a, b);
  }
  return 0;
}

// Reference for out = a op b where both are already expanded to one shape.
std::vector<double> reference(BinaryOp op, const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  std::vector<double> out(va.size());
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    for (size_t i = 0; i < va.size(); ++i)
      out[i] = scalar_op<T>(op, static_cast<T>(va[i]), static_cast<T>(vb[i]));
  });
  return out;
}

// Inputs: b stays away from zero so that Div is well conditioned.
Tensor input(const Shape& shape, DType dt, uint64_t seed, bool positive = false) {
  Rng rng(seed);
  return positive ? Tensor::uniform(shape, rng, 0.5, 2.0, dt)
                  : Tensor::uniform(shape, rng, -2.0, 2.0, dt);
}

}  // namespace

TEST_CASE("binary ops, same shape, every length and target") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        const Tensor a = input({n}, dt, 1), b = input({n}, dt, 2, true);
        for (BinaryOp op : kBinaryOps) {
          CAPTURE(static_cast<int>(op));
          const Tensor out = binary(op, a, b);
          CHECK(out.shape() == Shape{n});
          CHECK(out.dtype() == dt);
          check_close(out.to_vector(), reference(op, a, b), 0.0);
        }
      }
    }
  });
}

TEST_CASE("binary ops with a scalar side and add_scalar / mul_scalar") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        const Tensor a = input({n}, dt, 3);
        const Tensor s = Tensor::from_data({1}, {0.75}, dt);
        for (BinaryOp op : kBinaryOps) {
          CAPTURE(static_cast<int>(op));
          check_close(binary(op, a, s).to_vector(), reference(op, a, s.expand({n})), 0.0);
          check_close(binary(op, s, a).to_vector(), reference(op, s.expand({n}), a), 0.0);
        }
        check_close(add_scalar(a, 0.75).to_vector(), reference(BinaryOp::Add, a, s.expand({n})),
                    0.0);
        check_close(mul_scalar(a, 0.75).to_vector(), reference(BinaryOp::Mul, a, s.expand({n})),
                    0.0);
      }
    }
  });
  // A 0-d scalar broadcasts too, and the result keeps the larger shape.
  const Tensor a = Tensor::from_data({2, 2}, {1, 2, 3, 4});
  CHECK(sub(Tensor::scalar(10), a).to_vector() == std::vector<double>{9, 8, 7, 6});
  CHECK(div(a, Tensor::scalar(2)).shape() == Shape{2, 2});
  CHECK(mul_scalar(a.transpose(0, 1), -1).to_vector() == std::vector<double>{-1, -3, -2, -4});
}

TEST_CASE("binary ops with a broadcast row (bias add), both sides") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        if (n == 0 || n > 1000) continue;
        CAPTURE(n);
        const Tensor x = input({3, 2, n}, dt, 4), row = input({n}, dt, 5, true);
        for (BinaryOp op : kBinaryOps) {
          CAPTURE(static_cast<int>(op));
          const Tensor e = row.expand({3, 2, n});
          check_close(binary(op, x, row).to_vector(), reference(op, x, e), 0.0);
          check_close(binary(op, row, x).to_vector(), reference(op, e, x), 0.0);
          // A [1, n] row is a row as well.
          check_close(binary(op, x, row.view({1, n})).to_vector(), reference(op, x, e), 0.0);
        }
      }
    }
  });
  // Large enough to run on several threads.
  const Tensor x = input({2000, 65}, DType::F32, 6), row = input({65}, DType::F32, 7);
  check_close(add(x, row).to_vector(), reference(BinaryOp::Add, x, row.expand({2000, 65})), 0.0);
}

TEST_CASE("general broadcasting: [2,1,3] + [4,1] and friends") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      const Tensor a = Tensor::arange(6, dt).view({2, 1, 3});
      const Tensor b = mul_scalar(Tensor::arange(4, dt).view({4, 1}), 10);
      const Tensor out = add(a, b);
      REQUIRE(out.shape() == Shape{2, 4, 3});
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 4; ++j)
          for (int64_t k = 0; k < 3; ++k) CHECK(out.at({i, j, k}) == (i * 3 + k) + 10.0 * j);
      // Column broadcast [m,1] against [m,n], and [1,n] against [m,1] (an outer op).
      const Tensor col = input({5, 1}, dt, 8, true), m = input({5, 37}, dt, 9);
      for (BinaryOp op : kBinaryOps) {
        check_close(binary(op, m, col).to_vector(), reference(op, m, col.expand({5, 37})), 0.0);
        check_close(binary(op, col, m).to_vector(), reference(op, col.expand({5, 37}), m), 0.0);
      }
      const Tensor r = input({1, 19}, dt, 10);
      check_close(mul(col, r).to_vector(),
                  reference(BinaryOp::Mul, col.expand({5, 19}), r.expand({5, 19})), 0.0);
    }
  });
}

TEST_CASE("binary ops on strided inputs: transposed, narrowed, permuted") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      const Tensor base = input({33, 17}, dt, 11), other = input({17, 33}, dt, 12, true);
      const Tensor t = base.transpose(0, 1);      // [17, 33], strides (1, 17)
      const Tensor nar = other.narrow(1, 1, 31);  // [17, 31], row stride 33
      for (BinaryOp op : kBinaryOps) {
        CAPTURE(static_cast<int>(op));
        check_close(binary(op, t, other).to_vector(), reference(op, t, other), 0.0);
        check_close(binary(op, nar, t.narrow(1, 2, 31)).to_vector(),
                    reference(op, nar, t.narrow(1, 2, 31)), 0.0);
      }
      const Tensor p = input({4, 5, 6}, dt, 13).permute({2, 0, 1});
      const Tensor q = input({6, 1, 5}, dt, 14);
      check_close(sub(p, q).to_vector(), reference(BinaryOp::Sub, p, q.expand({6, 4, 5})), 0.0);
      // A big transposed operand takes the multi-threaded strided path.
      const Tensor big = input({300, 400}, dt, 15).transpose(0, 1);
      const Tensor big2 = input({400, 300}, dt, 16);
      check_close(add(big, big2).to_vector(), reference(BinaryOp::Add, big, big2), 0.0);
    }
  });
}

TEST_CASE("binary op errors name the op and both shapes or dtypes") {
  const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(add(a, b), "add: shapes [2, 3] and [4] do not broadcast", Error);
  CHECK_THROWS_WITH_AS(mul(a, Tensor::zeros({2, 3}, DType::F64)), "mul: dtypes f32 and f64 differ",
                       Error);
  CHECK(add(Tensor::zeros({0, 3}), Tensor::zeros({3})).shape() == Shape{0, 3});
}

TEST_CASE("in-place add_, axpy_, scale_") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        const Tensor src = input({n}, dt, 17);
        Tensor dst = input({n}, dt, 18);
        const std::vector<double> d0 = dst.to_vector(), s0 = src.to_vector();
        std::vector<double> want(n), want2(n), want3(n);
        dispatch_dtype(dt, [&]<typename T>() {
          for (int64_t i = 0; i < n; ++i) {
            want[i] = static_cast<T>(static_cast<T>(d0[i]) + static_cast<T>(s0[i]));
            want2[i] = want[i] - 0.5 * s0[i];
          }
        });
        add_(dst, src);
        check_close(dst.to_vector(), want, 0.0);
        // One multiply-add per element: fused on FMA targets, not on SSE4, so
        // the last bit may differ from a plain loop.
        axpy_(dst, -0.5, src);
        const double tol = attnlab::test::tolerance(dt) / 10;
        check_close(dst.to_vector(), want2, tol, tol);
        const std::vector<double> d2 = dst.to_vector();
        dispatch_dtype(dt, [&]<typename T>() {
          for (int64_t i = 0; i < n; ++i) want3[i] = static_cast<T>(d2[i]) * static_cast<T>(3);
        });
        scale_(dst, 3);
        check_close(dst.to_vector(), want3, 0.0);
      }
    }
  });
}

TEST_CASE("in-place updates broadcast src to dst's shape") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      Tensor dst = Tensor::zeros({4, 3}, dt);
      add_(dst, Tensor::from_data({3}, {1, 2, 3}, dt));                    // a row
      add_(dst, Tensor::from_data({4, 1}, {10, 20, 30, 40}, dt));          // a column
      axpy_(dst, 2, Tensor::scalar(100, dt));                              // a scalar
      axpy_(dst, 1, Tensor::arange(12, dt).view({3, 4}).transpose(0, 1));  // strided
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 3; ++j)
          CHECK(dst.at({i, j}) == (j + 1) + 10.0 * (i + 1) + 200 + (j * 4 + i));
      // Big enough for the threaded paths: a row into [3000, 40].
      Tensor big = Tensor::zeros({3000, 40}, dt);
      const Tensor row = input({40}, dt, 19);
      axpy_(big, 2, row);
      check_close(big.to_vector(), mul_scalar(row, 2).expand({3000, 40}).to_vector(), 0.0);
    }
  });
}

TEST_CASE("in-place errors") {
  Tensor a = Tensor::zeros({3, 4});
  Tensor at = a.transpose(0, 1);
  CHECK_THROWS_WITH_AS(add_(at, Tensor::zeros({4, 3})),
                       "add_: dst of shape [4, 3] must be contiguous", Error);
  CHECK_THROWS_WITH_AS(scale_(at, 2), "scale_: dst of shape [4, 3] must be contiguous", Error);
  CHECK_THROWS_WITH_AS(axpy_(a, 1, Tensor::zeros({2, 3, 4})),
                       "axpy_: src of shape [2, 3, 4] does not broadcast to dst's shape [3, 4]",
                       Error);
  CHECK_THROWS_WITH_AS(add_(a, Tensor::zeros({3})),
                       "add_: src of shape [3] does not broadcast to dst's shape [3, 4]", Error);
  CHECK_THROWS_WITH_AS(add_(a, Tensor::zeros({3, 4}, DType::F64)),
                       "add_: dtypes f32 and f64 differ", Error);
}
