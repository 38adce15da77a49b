// Matmul against a plain triple loop, including transposed views (which go
// to BLAS as CblasTrans, with no copy) and batches.
#include <doctest/doctest.h>
#include <omp.h>

#include "attnlab/tensor/blas.hpp"
#include "attnlab/tensor/ops.hpp"

using namespace attnlab;

namespace {
// Reference: out[b, i, j] = sum_k a[b, i, k] * b[b, k, j], any strides.
std::vector<double> naive(const Tensor& a, const Tensor& b, int64_t batch) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  std::vector<double> out;
  for (int64_t z = 0; z < batch; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t q = 0; q < k; ++q) {
          const double av = a.dim() == 3 ? a.at({z, i, q}) : a.at({i, q});
          const double bv = b.dim() == 3 ? b.at({z, q, j}) : b.at({q, j});
          s += av * bv;
        }
        out.push_back(s);
      }
  return out;
}
void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol));
}
}  // namespace

TEST_CASE("matmul 2-d, all four transpose combinations") {
  for (DType dt : {DType::F32, DType::F64}) {
    Rng rng(7);
    Tensor a = Tensor::normal({5, 3}, rng, 0, 1, dt), b = Tensor::normal({3, 4}, rng, 0, 1, dt);
    Tensor at = Tensor::normal({3, 5}, rng, 0, 1, dt), bt = Tensor::normal({4, 3}, rng, 0, 1, dt);
    const double tol = dt == DType::F32 ? 1e-5 : 1e-12;
    check_close(matmul(a, b).to_vector(), naive(a, b, 1), tol);
    check_close(matmul(at.transpose(0, 1), b).to_vector(), naive(at.transpose(0, 1), b, 1), tol);
    check_close(matmul(a, bt.transpose(0, 1)).to_vector(), naive(a, bt.transpose(0, 1), 1), tol);
    check_close(matmul(at.transpose(0, 1), bt.transpose(0, 1)).to_vector(),
                naive(at.transpose(0, 1), bt.transpose(0, 1), 1), tol);
  }
}

TEST_CASE("batched matmul, shared weight, strided operands") {
  Rng rng(3);
  Tensor x = Tensor::normal({2, 4, 6}, rng), w = Tensor::normal({5, 6}, rng);
  // Activations times a transposed weight: one tall gemm, no copy.
  check_close(matmul(x, w.transpose(0, 1)).to_vector(), naive(x, w.transpose(0, 1), 2), 1e-5);
  Tensor y = Tensor::normal({2, 6, 3}, rng);
  check_close(matmul(x, y).to_vector(), naive(x, y, 2), 1e-5);
  // A narrowed operand (row stride larger than its width) is passed with its ld.
  Tensor wide = Tensor::normal({2, 4, 10}, rng);
  Tensor xn = wide.narrow(2, 2, 6);
  check_close(matmul(xn, y).to_vector(), naive(xn, y, 2), 1e-5);
  // A non-BLAS-able view (permuted batch) still gives the right answer.
  Tensor xp = Tensor::normal({4, 2, 6}, rng).permute({1, 0, 2});
  check_close(matmul(xp, y).to_vector(), naive(xp, y, 2), 1e-5);
}

// A large gemm is cut into blocks of C (blas::gemm_blocks): rows when C is
// tall, columns when it is wide. Every block must land in the right place for
// each transpose combination and leading dimension, and the bits must not
// depend on the number of threads (thread_invariance_test.cpp has the rest).
TEST_CASE("large matmuls cut into blocks: tall and wide, every layout") {
  const int before = omp_get_max_threads();
  Rng rng(11);
  for (auto [m, n] : {std::pair<int64_t, int64_t>{300, 70}, {70, 300}}) {
    const int64_t k = 100;
    REQUIRE(blas::gemm_blocks(m, n, k).size() >= 2);
    CAPTURE(m);
    // Plain operands narrowed from wider ones (ld > width), and transposed views.
    Tensor a = Tensor::normal({m, k + 3}, rng).narrow(1, 1, k);
    Tensor b = Tensor::normal({k, n + 5}, rng).narrow(1, 2, n);
    Tensor at = Tensor::normal({k, m}, rng).transpose(0, 1);
    Tensor bt = Tensor::normal({n, k}, rng).transpose(0, 1);
    for (const Tensor* x : {&a, &at})
      for (const Tensor* y : {&b, &bt}) {
        omp_set_num_threads(1);
        const std::vector<double> one = matmul(*x, *y).to_vector();
        check_close(one, naive(*x, *y, 1), 1e-4);
        for (int threads : {2, 3}) {
          omp_set_num_threads(threads);
          CHECK(matmul(*x, *y).to_vector() == one);
        }
        // beta = 1 adds onto what is there, block by block.
        Tensor acc = Tensor::full({m, n}, 1.0);
        matmul_into(acc, *x, *y, 1.0, 1.0);
        std::vector<double> want = one;
        for (double& v : want) v += 1.0;
        check_close(acc.to_vector(), want, 1e-5);
      }
  }
  omp_set_num_threads(before);
}

TEST_CASE("matmul_into accumulates with beta") {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({3, 2});
  Tensor out = Tensor::full({2, 2}, 10.0);
  matmul_into(out, a, b, 2.0, 1.0);
  CHECK(out.to_vector() == std::vector<double>(4, 16.0));
}

TEST_CASE("matmul shape errors name both shapes") {
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                       "matmul: inner sizes differ, shapes [2, 3] and [4, 5]", Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 5})),
                       "matmul: batch axes of shapes [2, 2, 3] and [3, 3, 5] differ", Error);
}
