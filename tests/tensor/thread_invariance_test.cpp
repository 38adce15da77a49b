// The same bits whatever the number of threads (the rule of
// tensor/threads.hpp): every parallel kernel cuts its work by the shapes
// alone. These tests hold on any CPU and with whatever kernel OpenBLAS picks
// (OPENBLAS_CORETYPE), because they compare attnlab with itself: the same
// product cut the same way gives the same bits, and a product cut another way
// would not (OpenBLAS's Haswell and Zen kernels change the last bits of a
// block of rows computed on its own).
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <vector>

#include "attnlab/tensor/attention.hpp"
#include "attnlab/tensor/blas.hpp"
#include "attnlab/tensor/cross_entropy.hpp"
#include "attnlab/tensor/ops.hpp"
#include "attnlab/tensor/rms_norm.hpp"
#include "attnlab/tensor/rope.hpp"
#include "attnlab/tensor/swiglu.hpp"

using namespace attnlab;

namespace {

constexpr int kThreadCounts[] = {1, 2, 3};

// Runs fn at 1, 2 and 3 threads and checks that every tensor it returns has
// the same bits as at one thread.
void check_thread_invariant(const std::function<std::vector<Tensor>()>& fn) {
  const int before = omp_get_max_threads();
  std::vector<std::vector<double>> first;
  for (int threads : kThreadCounts) {
    CAPTURE(threads);
    omp_set_num_threads(threads);
    const std::vector<Tensor> got = fn();
    if (first.empty()) {
      for (const Tensor& t : got) first.push_back(t.to_vector());
      continue;
    }
    REQUIRE(got.size() == first.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(got[i].to_vector() == first[i]);  // exact: same bits, not "close"
    }
  }
  omp_set_num_threads(before);
}

Tensor randn(const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  return Tensor::normal(shape, rng);
}

// Every BLAS call gemm makes while fn runs, sorted (threads make them in
// any order).
std::vector<blas::BlockCall> recorded_calls(const std::function<void()>& fn) {
  std::vector<blas::BlockCall> calls;
  std::mutex mutex;
  blas::set_block_call_observer([&](const blas::BlockCall& c) {
    std::lock_guard<std::mutex> lock(mutex);
    calls.push_back(c);
  });
  fn();
  blas::set_block_call_observer(nullptr);
  auto key = [](const blas::BlockCall& c) {
    return std::tuple(c.c_offset, c.a_offset, c.b_offset, c.block.row0, c.block.rows, c.block.col0,
                      c.block.cols);
  };
  std::sort(calls.begin(), calls.end(), [&](auto& x, auto& y) { return key(x) < key(y); });
  return calls;
}

struct GemmShape {
  int64_t m, n, k;
};
// One of each shape class: small (one block), tall (cut by rows), wide (cut
// by columns), large (many blocks), a single row (gemv, cut by columns).
constexpr GemmShape kShapes[] = {{40, 30, 20},     {300, 70, 100}, {70, 300, 100},
                                 {1024, 384, 128}, {1, 1000, 100}, {1, 70, 1000}};

}  // namespace

TEST_CASE("gemm's blocks are a function of the shape: they tile C, and their count is fixed") {
  for (const GemmShape s : kShapes) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    const std::vector<blas::Block> blocks = blas::gemm_blocks(s.m, s.n, s.k);
    REQUIRE(!blocks.empty());
    CHECK(blocks.size() <= 16);
    CHECK(std::has_single_bit(blocks.size()));  // shares evenly among 2, 4, … threads
    // They cover C exactly once, in order, cut at multiples of 16.
    int64_t covered = 0;
    for (const blas::Block& b : blocks) {
      CHECK(b.rows > 0);
      CHECK(b.cols > 0);
      if (s.m >= s.n) {
        CHECK(b.row0 == covered);
        CHECK(b.row0 % 16 == 0);
        CHECK(b.cols == s.n);
        covered += b.rows;
      } else {
        CHECK(b.col0 == covered);
        CHECK(b.col0 % 16 == 0);
        CHECK(b.rows == s.m);
        covered += b.cols;
      }
    }
    CHECK(covered == std::max(s.m, s.n));
  }
  // The classes above are what they claim to be.
  CHECK(blas::gemm_blocks(40, 30, 20).size() == 1);
  CHECK(blas::gemm_blocks(300, 70, 100).size() >= 2);
  CHECK(blas::gemm_blocks(70, 300, 100).size() >= 2);
  CHECK(blas::gemm_blocks(1024, 384, 128).size() >= 4);
  CHECK(blas::gemm_blocks(1, 1000, 100).size() >= 2);
}

TEST_CASE("gemm makes the same block calls on 1, 2 and 3 threads, in every layout") {
  const int before = omp_get_max_threads();
  for (const GemmShape s : kShapes) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        CAPTURE(s.m);
        CAPTURE(s.n);
        CAPTURE(ta);
        CAPTURE(tb);
        // Leading dimensions wider than the matrices, to see them in the offsets.
        const int64_t lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 5, ldc = s.n + 7;
        std::vector<float> a((ta ? s.k : s.m) * lda, 1.0f), b((tb ? s.n : s.k) * ldb, 1.0f);
        std::vector<float> c(s.m * ldc, 0.0f);
        auto product = [&] {
          blas::gemm<float>(ta, tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f,
                            c.data(), ldc);
        };
        std::vector<blas::BlockCall> first;
        for (int threads : kThreadCounts) {
          CAPTURE(threads);
          omp_set_num_threads(threads);
          const std::vector<blas::BlockCall> calls = recorded_calls(product);
          if (threads == 1) {
            first = calls;
            // ...and they are exactly the documented blocks, at the right offsets.
            const std::vector<blas::Block> blocks = blas::gemm_blocks(s.m, s.n, s.k);
            REQUIRE(calls.size() == blocks.size());
            for (size_t i = 0; i < blocks.size(); ++i) {
              const blas::Block& blk = blocks[i];
              CHECK(calls[i].block == blk);
              CHECK(calls[i].a_offset == (ta ? blk.row0 : blk.row0 * lda));
              CHECK(calls[i].b_offset == (tb ? blk.col0 * ldb : blk.col0));
              CHECK(calls[i].c_offset == blk.row0 * ldc + blk.col0);
            }
          } else {
            CHECK(calls == first);
          }
        }
        CHECK(c[0] == doctest::Approx(static_cast<double>(s.k)));  // the product was made
      }
  }
  omp_set_num_threads(before);
}

TEST_CASE("matmul gives the same bits on 1, 2 and 3 threads: every layout and shape class") {
  for (const GemmShape s : kShapes) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    const Tensor a = randn({s.m, s.k}, 1), b = randn({s.k, s.n}, 2);
    const Tensor at = randn({s.k, s.m}, 3).transpose(0, 1),
                 bt = randn({s.n, s.k}, 4).transpose(0, 1);
    for (const Tensor* x : {&a, &at})
      for (const Tensor* y : {&b, &bt})
        check_thread_invariant([&] { return std::vector{matmul(*x, *y)}; });
  }
  // Batched: a shared B (one tall product) and per-item B (a product per item).
  const Tensor a3 = randn({4, 200, 96}, 5), b2 = randn({96, 160}, 6), b3 = randn({4, 96, 160}, 7);
  check_thread_invariant([&] { return std::vector{matmul(a3, b2), matmul(a3, b3)}; });
  // f64 and accumulation onto C (beta = 1).
  const Tensor a64 = randn({300, 100}, 8).to(DType::F64), b64 = randn({100, 90}, 9).to(DType::F64);
  check_thread_invariant([&] {
    Tensor acc = Tensor::full({300, 90}, 0.5, DType::F64);
    matmul_into(acc, a64, b64, 1.0, 1.0);
    return std::vector{acc};
  });
}

TEST_CASE("each fused kernel gives the same bits on 1, 2 and 3 threads") {
  SUBCASE("attention forward and backward, grouped heads") {
    const Tensor q = randn({3, 100, 4, 32}, 10), k = randn({3, 100, 2, 32}, 11);
    const Tensor v = randn({3, 100, 2, 32}, 12), dout = randn({3, 100, 4, 32}, 13);
    check_thread_invariant([&] {
      const AttentionResult f = attention_forward(q, k, v, 0.2);
      const AttentionGrads g = attention_backward(dout, q, k, v, f.out, f.lse, 0.2);
      return std::vector{f.out, f.lse, g.dq, g.dk, g.dv};
    });
  }
  SUBCASE("rms_norm forward and backward (dw sums over rows)") {
    const Tensor x = randn({700, 96}, 20), w = randn({96}, 21), dout = randn({700, 96}, 22);
    check_thread_invariant([&] {
      Tensor rstd;
      const Tensor y = rms_norm_forward(x, w, 1e-6, &rstd);
      const RmsNormGrads g = rms_norm_backward(dout, x, w, rstd);
      return std::vector{y, rstd, g.dx, g.dweight};
    });
  }
  SUBCASE("rope forward and backward") {
    const Tensor x = randn({8, 64, 4, 32}, 30);
    check_thread_invariant([&] {
      return std::vector{rope_forward(x, 16, 10000.0, 3), rope_backward(x, 32, 500.0)};
    });
  }
  SUBCASE("cross_entropy forward and backward") {
    const Tensor logits = randn({768, 65}, 40);
    std::vector<int32_t> targets(768);
    for (size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<int32_t>(i * 7 % 65);
    check_thread_invariant([&] {
      const CrossEntropyResult f = cross_entropy_forward(logits, targets);
      return std::vector{f.loss, f.lse, cross_entropy_backward(logits, targets, f.lse, 1.0)};
    });
  }
  SUBCASE("swiglu forward and backward") {
    const Tensor gate = randn({768, 344}, 50), up = randn({768, 344}, 51),
                 dout = randn({768, 344}, 52);
    check_thread_invariant([&] {
      const SwiGluGrads g = swiglu_backward(dout, gate, up);
      return std::vector{swiglu_forward(gate, up), g.dgate, g.dup};
    });
  }
  SUBCASE("softmax, sums over rows and columns, the sum of squares") {
    const Tensor x = randn({300, 1000}, 60);
    check_thread_invariant([&] {
      return std::vector{softmax(x), sum(x, {0}), sum(x, {1}), sum(x, {0, 1}),
                         Tensor::full({}, sum_of_squares(x), DType::F64)};
    });
  }
  SUBCASE("AdamW") {
    const Tensor p0 = randn({384, 128}, 70), g = randn({384, 128}, 71);
    check_thread_invariant([&] {
      Tensor p = p0.clone(), m = Tensor::zeros({384, 128}), v = Tensor::zeros({384, 128});
      for (int64_t step = 1; step <= 3; ++step)
        adamw_update_(p, g, m, v, {.lr = 1e-2, .weight_decay = 0.1, .step = step});
      return std::vector{p, m, v};
    });
  }
}
