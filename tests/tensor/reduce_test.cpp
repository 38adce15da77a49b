// Reductions against plain loops in double: sum / mean over every axis and
// sets of axes, max with argmax (first index on ties), sum_to, strided
// inputs, every SIMD target, and bit-identical results for any thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "attnlab/tensor/ops.hpp"
#include "tests/tensor/kernel_test_util.hpp"

using namespace attnlab;
using attnlab::test::check_close;
using attnlab::test::for_each_target;
using attnlab::test::kDTypes;
using attnlab::test::tail_lengths;

namespace {

struct SumRef {
  std::vector<double> sum, abs_sum, max;
  std::vector<int64_t> argmax;  // along the single reduced axis, when there is one
};

// Reduces x over the axes marked in `reduced`, in double, by visiting every element.
SumRef reduce_ref(const Tensor& x, const std::vector<bool>& reduced) {
  const Shape& s = x.shape();
  const int64_t nd = x.dim();
  Shape out_shape(nd);
  for (int64_t ax = 0; ax < nd; ++ax) out_shape[ax] = reduced[ax] ? 1 : s[ax];
  const Shape out_strides = contiguous_strides(out_shape);
  const int64_t n_out = shape_numel(out_shape);
  SumRef r{std::vector<double>(n_out, 0.0), std::vector<double>(n_out, 0.0),
           std::vector<double>(n_out, -INFINITY), std::vector<int64_t>(n_out, 0)};
  const std::vector<double> v = x.to_vector();
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) {
    int64_t rem = i, o = 0, along = 0;
    for (int64_t ax = nd - 1; ax >= 0; --ax) {
      const int64_t idx = rem % s[ax];
      rem /= s[ax];
      if (reduced[ax])
        along = idx;
      else
        o += idx * out_strides[ax];
    }
    r.sum[o] += v[i];
    r.abs_sum[o] += std::abs(v[i]);
    if (v[i] > r.max[o]) r.max[o] = v[i], r.argmax[o] = along;
  }
  return r;
}

// A sum is right when its error is within a few roundings of Σ|x|.
void check_sum(const Tensor& got, const SumRef& ref, DType dt) {
  const std::vector<double> g = got.to_vector();
  REQUIRE(g.size() == ref.sum.size());
  const double eps = dt == DType::F32 ? 1e-6 : 1e-14;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::abs(g[i] - ref.sum[i]) > eps * (ref.abs_sum[i] + 1)) {
      FAIL_CHECK("element " << i << ": got " << g[i] << ", want " << ref.sum[i]);
      return;
    }
  }
}

std::vector<bool> mask(int64_t nd, const std::vector<int64_t>& axes) {
  std::vector<bool> m(nd, axes.empty());
  for (int64_t a : axes) m[a < 0 ? a + nd : a] = true;
  return m;
}

Shape reduced_shape(const Shape& s, const std::vector<bool>& m, bool keepdim) {
  Shape out;
  for (size_t i = 0; i < s.size(); ++i)
    if (!m[i])
      out.push_back(s[i]);
    else if (keepdim)
      out.push_back(1);
  return out;
}

// Integers 0..9: many ties, so argmax must pick the first maximum.
Tensor ties(const Shape& shape, DType dt, uint64_t seed) {
  Rng rng(seed);
  Tensor u = Tensor::uniform(shape, rng, 0, 10, DType::F64);
  std::vector<double> v = u.to_vector();
  for (double& e : v) e = std::floor(e);
  return Tensor::from_data<double>(shape, v).to(dt);
}

void check_max(const Tensor& x, int64_t axis) {
  CAPTURE(axis);
  CAPTURE(shape_str(x.shape()));
  std::vector<int64_t> arg;
  const Tensor m = max(x, axis, false, &arg);
  const SumRef ref = reduce_ref(x, mask(x.dim(), {axis}));
  CHECK(m.to_vector() == ref.max);
  CHECK(arg == ref.argmax);
  CHECK(max(x, axis, true).to_vector() == ref.max);  // without argmax, same values
}

}  // namespace

TEST_CASE("row and column sums and maxima at every length, on every target") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        Rng rng(n);
        const Tensor rows = Tensor::uniform({3, n}, rng, -1, 1, dt);
        check_sum(sum(rows, {-1}), reduce_ref(rows, {false, true}), dt);
        check_sum(sum(rows, {0}), reduce_ref(rows, {true, false}), dt);  // columns, C = n
        const Tensor cols = Tensor::uniform({n, 3}, rng, -1, 1, dt);
        check_sum(sum(cols, {0}), reduce_ref(cols, {true, false}), dt);  // a long column sum
        check_sum(sum(cols, {}), reduce_ref(cols, {true, true}), dt);
        if (n == 0) continue;
        check_max(ties({3, n}, dt, n), -1);
        check_max(ties({7, n}, dt, n + 1), 0);
        check_max(ties({n, 2}, dt, n + 2), 0);
      }
    }
  });
}

TEST_CASE("sum, mean and max over each axis and sets of axes") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (const Shape& shape : {Shape{3, 4, 5}, Shape{4, 1, 70, 9}, Shape{2, 3, 1}}) {
        CAPTURE(shape_str(shape));
        Rng rng(shape.size());
        const Tensor x = Tensor::uniform(shape, rng, -1, 1, dt);
        const int64_t nd = x.dim();
        for (int64_t bits = 0; bits < (int64_t{1} << nd); ++bits) {  // every set of axes
          std::vector<int64_t> axes;
          for (int64_t ax = 0; ax < nd; ++ax)
            if (bits >> ax & 1) axes.push_back(ax - (ax % 2) * nd);  // mix negative axes in
          CAPTURE(bits);
          const std::vector<bool> m = mask(nd, axes);
          const SumRef ref = reduce_ref(x, m);
          for (bool keepdim : {false, true}) {
            const Tensor s = sum(x, axes, keepdim);
            CHECK(s.shape() == reduced_shape(shape, m, keepdim));
            check_sum(s, ref, dt);
            const Tensor mn = mean(x, axes, keepdim);
            CHECK(mn.shape() == s.shape());
            int64_t count = 1;
            for (int64_t ax = 0; ax < nd; ++ax)
              if (m[ax]) count *= shape[ax];
            std::vector<double> want = ref.sum;
            for (double& w : want) w /= count;
            check_close(mn.to_vector(), want, 1e-5, 1e-6);
          }
        }
        for (int64_t ax = 0; ax < nd; ++ax) check_max(ties(shape, dt, ax), ax - nd * (ax % 2));
      }
    }
  });
}

TEST_CASE("reductions of strided inputs and of scalars") {
  for (DType dt : kDTypes) {
    Rng rng(11);
    const Tensor t = Tensor::uniform({37, 21}, rng, -1, 1, dt).transpose(0, 1);  // [21, 37]
    for (int64_t ax : {0, 1}) {
      check_sum(sum(t, {ax}), reduce_ref(t, mask(2, {ax})), dt);
      check_max(t, ax);
    }
    const Tensor nar = Tensor::uniform({4, 50, 6}, rng, -1, 1, dt).narrow(1, 5, 40);
    check_sum(sum(nar, {1}), reduce_ref(nar, mask(3, {1})), dt);
    check_sum(sum(nar, {0, 2}), reduce_ref(nar, mask(3, {0, 2})), dt);
    check_max(nar, 1);
    const Tensor expanded = Tensor::arange(3, dt).view({3, 1}).expand({3, 4});
    CHECK(sum(expanded, {1}).to_vector() == std::vector<double>{0, 4, 8});
  }
  CHECK(sum(Tensor::scalar(3), {}).item() == 3);
  CHECK(sum(Tensor::scalar(3), {}).dim() == 0);
  std::vector<int64_t> arg;
  CHECK(max(Tensor::scalar(-2), 0, false, &arg).item() == -2);
  CHECK(arg == std::vector<int64_t>{0});
  CHECK(sum(Tensor::zeros({3, 0}), {1}).to_vector() == std::vector<double>{0, 0, 0});
  CHECK(std::isnan(mean(Tensor::zeros({0}), {}).item()));
  CHECK(sum(Tensor::ones({4, 3}), {0, 1}, true).shape() == Shape{1, 1});
}

TEST_CASE("large reductions give the same bits for any number of threads") {
  const int before = omp_get_max_threads();
  Rng rng(5);
  const Tensor flat = Tensor::uniform({1000003}, rng, -1, 1);
  const Tensor tall = Tensor::uniform({5000, 301}, rng, -1, 1);
  auto run = [&] {
    return std::vector<std::vector<double>>{
        sum(flat, {}).to_vector(), sum(tall, {0}).to_vector(), sum(tall, {1}).to_vector(),
        max(tall, 0).to_vector(),  softmax(tall).to_vector(),  add(tall, tall).to_vector()};
  };
  omp_set_num_threads(1);
  const auto one = run();
  for (int threads : {2, 3, 8}) {
    omp_set_num_threads(threads);
    CHECK(run() == one);
  }
  omp_set_num_threads(before);
  check_sum(sum(flat, {}), reduce_ref(flat, {true}), DType::F32);
  check_sum(sum(tall, {0}), reduce_ref(tall, {true, false}), DType::F32);
}

TEST_CASE("sum_of_squares against a plain loop, on every target, for any number of threads") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      for (int64_t n : tail_lengths(dt)) {
        CAPTURE(n);
        Rng rng(n + 11);
        const Tensor x = Tensor::uniform({n}, rng, -1, 1, dt);
        double want = 0;
        for (double v : x.to_vector()) want += v * v;
        const double tol = (dt == DType::F32 ? 1e-5 : 1e-12) * std::max(1.0, want);
        CHECK(std::abs(sum_of_squares(x) - want) <= tol);
      }
    }
  });
  Rng rng(6);
  const Tensor x = Tensor::uniform({300, 1001}, rng, -1, 1);
  const Tensor strided = x.transpose(0, 1);  // copied to contiguous, same sum
  CHECK(std::abs(sum_of_squares(strided) - sum_of_squares(x)) <= 1e-6 * sum_of_squares(x));
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = sum_of_squares(x);
  omp_set_num_threads(2);
  CHECK(sum_of_squares(x) == one);
  omp_set_num_threads(before);
}

TEST_CASE("sum_to undoes broadcasting") {
  for_each_target([] {
    for (DType dt : kDTypes) {
      Rng rng(3);
      const Tensor g = Tensor::uniform({2, 3, 4}, rng, -1, 1, dt);
      CHECK(sum_to(g, {2, 3, 4}).same_storage(g));  // already that shape: g itself
      struct Case {
        Shape target;
        std::vector<int64_t> axes;
      };
      for (const Case& c :
           {Case{{4}, {0, 1}}, Case{{3, 1}, {0, 2}}, Case{{1, 4}, {0, 1}}, Case{{2, 1, 4}, {1}},
            Case{{}, {}}, Case{{1, 1, 1}, {}}, Case{{3, 4}, {0}}}) {
        CAPTURE(shape_str(c.target));
        const Tensor s = sum_to(g, c.target);
        CHECK(s.shape() == c.target);
        check_sum(s, reduce_ref(g, mask(3, c.axes)), dt);
      }
    }
  });
  // The usual bias gradient: [B, T, D] back to [D], large enough for threads.
  Rng rng(4);
  const Tensor g = Tensor::uniform({8, 512, 96}, rng, -1, 1);
  check_sum(sum_to(g, {96}), reduce_ref(g, {true, true, false}), DType::F32);
}

TEST_CASE("reduction errors") {
  const Tensor x = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(sum(x, {1, -1}), "sum: axis -1 is given twice", Error);
  CHECK_THROWS_WITH_AS(sum(x, {2}), "axis 2 is out of range for a tensor with 2 dimensions", Error);
  CHECK_THROWS_WITH_AS(max(Tensor::zeros({2, 0}), 1), "max over axis 1 of size 0, shape [2, 0]",
                       Error);
  CHECK_THROWS_WITH_AS(sum_to(x, {4}), "sum_to: cannot reduce shape [2, 3] to [4]", Error);
  CHECK_THROWS_WITH_AS(sum_to(x, {1, 2, 3}), "sum_to: cannot reduce shape [2, 3] to [1, 2, 3]",
                       Error);
}
