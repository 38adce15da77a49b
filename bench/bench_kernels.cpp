// Kernel benchmarks, side by side in one run:
//   (a) our matmul against a direct cblas_sgemm call on the same shapes (the
//       wrapper should cost nothing: target within 10%);
//   (b) our SIMD exp, softmax and rmsnorm against a plain scalar loop on 1M
//       floats (target: SIMD at least 4x faster), first on one thread (the
//       SIMD speed-up alone), then with the default OpenMP threads;
//   (c) our gemm (tensor/kernels/gemm.cpp: one fixed order of FMAs, the same
//       bits on every CPU) against cblas_sgemm, one thread, on the products
//       of one training step of baby and small (mha, dense), each cut into
//       blas::gemm_blocks as blas::gemm cuts it. `bench_kernels gemm` runs (c)
//       alone; `bench_kernels gemm AVX2` on another SIMD target this CPU has
//       (with OPENBLAS_CORETYPE=Haswell: both sides as on an AVX2 machine).
// Each figure is the median of many repeats. The machine is shared, so run it
// a few times and read the ratios rather than the absolute numbers:
//   build/release/bench/bench_kernels
#include <cblas.h>
#include <fmt/format.h>
#include <hwy/targets.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "attnlab/tensor/blas.hpp"
#include "attnlab/tensor/kernels/kernels.hpp"
#include "attnlab/tensor/ops.hpp"
#if __has_include("attnlab/tensor/rms_norm.hpp")
#include "attnlab/tensor/rms_norm.hpp"
#include "attnlab/tensor/threads.hpp"
#include "cli/openmp_wait.hpp"
#define ATTNLAB_BENCH_RMS_NORM 1
#endif

using namespace attnlab;

namespace {

// Median wall time of fn() in milliseconds, after one warm-up call.
template <typename Fn>
double median_ms(int repeats, Fn&& fn) {
  fn();
  std::vector<double> ms(repeats);
  for (double& t : ms) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  std::nth_element(ms.begin(), ms.begin() + repeats / 2, ms.end());
  return ms[repeats / 2];
}

// Keeps results alive so the compiler cannot drop the work.
volatile double g_sink = 0;
void consume(const float* p, int64_t n) {
  g_sink = g_sink + p[0] + p[n / 2] + p[n - 1];
}

void bench_matmul() {
  fmt::print("(a) matmul vs direct cblas_sgemm, f32, row-major, median ms\n");
  fmt::print("{:>16} {:>10} {:>12} {:>10} {:>8} {:>8}\n", "M x K x N", "sgemm", "matmul_into",
             "matmul", "into/sg", "mm/sg");
  struct Shape3 {
    int64_t m, k, n;
  };
  for (const Shape3 s : {Shape3{768, 128, 128}, Shape3{768, 384, 128}, Shape3{512, 512, 512}}) {
    Rng rng(1);
    const Tensor a = Tensor::normal({s.m, s.k}, rng), b = Tensor::normal({s.k, s.n}, rng);
    Tensor c = Tensor::empty({s.m, s.n});
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* pc = c.data<float>();
    const int repeats = s.m * s.k * s.n > 50'000'000 ? 60 : 200;
    // Interleave the three, rotating their order every round, so that drift
    // on a shared machine (and who-runs-first effects) hit all alike.
    std::vector<double> t_blas, t_into, t_ours;
    const auto run_blas = [&] {
      t_blas.push_back(median_ms(repeats / 6, [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.m, s.n, s.k, 1.0f, pa, s.k, pb,
                    s.n, 0.0f, pc, s.n);
        consume(pc, s.m * s.n);
      }));
    };
    const auto run_into = [&] {
      t_into.push_back(median_ms(repeats / 6, [&] {
        matmul_into(c, a, b);
        consume(pc, s.m * s.n);
      }));
    };
    const auto run_ours = [&] {
      t_ours.push_back(median_ms(repeats / 6, [&] {
        const Tensor out = matmul(a, b);
        consume(out.data<float>(), s.m * s.n);
      }));
    };
    for (int round = 0; round < 6; ++round) {
      switch (round % 3) {
        case 0:
          run_blas(), run_into(), run_ours();
          break;
        case 1:
          run_into(), run_ours(), run_blas();
          break;
        default:
          run_ours(), run_blas(), run_into();
          break;
      }
    }
    auto med = [](std::vector<double> v) {
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      return v[v.size() / 2];
    };
    const double blas = med(t_blas), into = med(t_into), ours = med(t_ours);
    fmt::print("{:>16} {:>10.3f} {:>12.3f} {:>10.3f} {:>8.3f} {:>8.3f}\n",
               fmt::format("{}x{}x{}", s.m, s.k, s.n), blas, into, ours, into / blas, ours / blas);
  }
}

// (c) The f32 products of one training step, as blas::gemm receives them
// (logged from bench_train_step, one step, /work/bench-s5 cases): trans_a,
// trans_b, m, n, k and how many a step makes. nt is x · Wᵀ (forward), nn is
// g · W (the input's gradient), tn is gᵀ · x (the weight's gradient, k = the
// batch's tokens). baby: d 128, ffn 344, vocab 65, 768 tokens; small: d 384,
// ffn 1024, 3072 tokens. (nn with beta 1 accumulates; timed as beta 0.)
struct StepProduct {
  const char* model;
  bool ta, tb;
  int64_t m, n, k, count;
};
constexpr StepProduct kStepProducts[] = {
    {"baby", true, false, 128, 128, 768, 16},    {"baby", false, true, 768, 128, 128, 16},
    {"baby", false, false, 768, 128, 128, 16},   {"baby", true, false, 344, 128, 768, 8},
    {"baby", false, true, 768, 344, 128, 8},     {"baby", false, false, 768, 128, 344, 8},
    {"baby", true, false, 128, 344, 768, 4},     {"baby", false, true, 768, 128, 344, 4},
    {"baby", false, false, 768, 344, 128, 4},    {"baby", true, false, 65, 128, 768, 1},
    {"baby", false, true, 768, 65, 128, 1},      {"baby", false, false, 768, 128, 65, 1},
    {"small", true, false, 384, 384, 3072, 24},  {"small", false, true, 3072, 384, 384, 24},
    {"small", false, false, 3072, 384, 384, 24}, {"small", true, false, 1024, 384, 3072, 12},
    {"small", false, true, 3072, 1024, 384, 12}, {"small", false, false, 3072, 384, 1024, 12},
    {"small", true, false, 384, 1024, 3072, 6},  {"small", false, true, 3072, 384, 1024, 6},
    {"small", false, false, 3072, 1024, 384, 6}, {"small", true, false, 65, 384, 3072, 1},
    {"small", false, true, 3072, 65, 384, 1},    {"small", false, false, 3072, 384, 65, 1},
};

void bench_own_gemm(int rounds) {
  fmt::print(
      "(c) our gemm (fixed order) vs cblas_sgemm, f32, 1 thread, blocks of blas::gemm_blocks,\n"
      "    median of {} interleaved rounds (each the median of several calls)\n",
      rounds);
  fmt::print("{:>6} {:>3} {:>18} {:>5} {:>10} {:>10} {:>8} {:>8} {:>7}\n", "model", "op",
             "m x n x k", "count", "sgemm ms", "ours ms", "sgemm GF", "ours GF", "ours/sg");
  const char* model = "";
  double step_blas = 0, step_ours = 0;
  const auto total = [&] {
    if (*model)
      fmt::print("{:>6} {:>3} {:>18} {:>5} {:>10.3f} {:>10.3f} {:>8} {:>8} {:>7.3f}\n", model,
                 "all", "(x count)", "", step_blas, step_ours, "", "", step_blas / step_ours);
    step_blas = step_ours = 0;
  };
  for (const StepProduct& s : kStepProducts) {
    if (std::strcmp(model, s.model) != 0) total(), model = s.model;
    Rng rng(3);
    const Tensor a = Tensor::normal({s.ta ? s.k : s.m, s.ta ? s.m : s.k}, rng);
    const Tensor b = Tensor::normal({s.tb ? s.n : s.k, s.tb ? s.k : s.n}, rng);
    Tensor c = Tensor::empty({s.m, s.n});
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* pc = c.data<float>();
    const int64_t lda = a.shape()[1], ldb = b.shape()[1], ldc = s.n;
    const std::vector<blas::Block> blocks = blas::gemm_blocks(s.m, s.n, s.k);
    // Every block as one single-threaded call, as blas::gemm makes them.
    const auto run = [&](auto&& call) {
      for (const blas::Block& blk : blocks) {
        const int64_t a_off = s.ta ? blk.row0 : blk.row0 * lda;
        const int64_t b_off = s.tb ? blk.col0 * ldb : blk.col0;
        call(blk.rows, blk.cols, pa + a_off, pb + b_off, pc + blk.row0 * ldc + blk.col0);
      }
      consume(pc, s.m * s.n);
    };
    const auto sgemm = [&](int64_t m, int64_t n, const float* pa_, const float* pb_, float* pc_) {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                  m, n, s.k, 1.0f, pa_, lda, pb_, ldb, 0.0f, pc_, ldc);
    };
    const auto ours = [&](int64_t m, int64_t n, const float* pa_, const float* pb_, float* pc_) {
      kernels::gemm_f32(s.ta, s.tb, m, n, s.k, 1.0f, pa_, lda, pb_, ldb, 0.0f, pc_, ldc);
    };
    const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
    const int repeats = std::clamp(int(5e7 / flops), 3, 20);
    std::vector<double> t_blas, t_ours;
    for (int round = 0; round < rounds; ++round) {
      const auto time_blas = [&] { t_blas.push_back(median_ms(repeats, [&] { run(sgemm); })); };
      const auto time_ours = [&] { t_ours.push_back(median_ms(repeats, [&] { run(ours); })); };
      if (round % 2 == 0)
        time_blas(), time_ours();
      else
        time_ours(), time_blas();
    }
    auto med = [](std::vector<double> v) {
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      return v[v.size() / 2];
    };
    const double tb = med(t_blas), to = med(t_ours);
    step_blas += tb * s.count, step_ours += to * s.count;
    fmt::print("{:>6} {:>3} {:>18} {:>5} {:>10.3f} {:>10.3f} {:>8.1f} {:>8.1f} {:>7.3f}\n", s.model,
               std::string(s.ta ? "t" : "n") + (s.tb ? "t" : "n"),
               fmt::format("{}x{}x{}", s.m, s.n, s.k), s.count, tb, to, flops / tb / 1e6,
               flops / to / 1e6, tb / to);
  }
  total();
}

// ------------------------------------------------------- scalar references
void exp_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void softmax_scalar(const float* x, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float m = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, xr[i]);
    for (int64_t i = 0; i < n; ++i) s += (yr[i] = std::exp(xr[i] - m));
    const float inv = 1 / s;
    for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
  }
}

void rms_norm_scalar(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const float rstd = 1 / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * rstd * w[i];
  }
}

struct Row {
  const char* name;
  double scalar_ms, simd_ms;
};

void print_rows(const char* title, const std::vector<Row>& rows) {
  fmt::print("{}\n{:>24} {:>10} {:>10} {:>9}\n", title, "op (1M f32)", "scalar", "ours",
             "speed-up");
  for (const Row& r : rows)
    fmt::print("{:>24} {:>10.3f} {:>10.3f} {:>8.1f}x\n", r.name, r.scalar_ms, r.simd_ms,
               r.scalar_ms / r.simd_ms);
}

std::vector<Row> bench_row_kernels() {
  const int64_t rows = 1000, n = 1000, total = rows * n;
  Rng rng(2);
  const Tensor x = Tensor::uniform({rows, n}, rng, -10, 10);
  const Tensor w = Tensor::uniform({n}, rng, 0.5, 1.5);
  std::vector<float> y(total);
  const float* px = x.data<float>();
  const int repeats = 30;
  std::vector<Row> out;
  out.push_back({"exp",
                 median_ms(repeats,
                           [&] {
                             exp_scalar(px, y.data(), total);
                             consume(y.data(), total);
                           }),
                 median_ms(repeats, [&] {
                   const Tensor e = unary(UnaryOp::Exp, x);
                   consume(e.data<float>(), total);
                 })});
  out.push_back({"softmax 1000 x 1000",
                 median_ms(repeats,
                           [&] {
                             softmax_scalar(px, y.data(), rows, n);
                             consume(y.data(), total);
                           }),
                 median_ms(repeats, [&] {
                   const Tensor s = softmax(x);
                   consume(s.data<float>(), total);
                 })});
#ifdef ATTNLAB_BENCH_RMS_NORM
  out.push_back({"rms_norm 1000 x 1000",
                 median_ms(repeats,
                           [&] {
                             rms_norm_scalar(px, w.data<float>(), y.data(), rows, n, 1e-5f);
                             consume(y.data(), total);
                           }),
                 median_ms(repeats, [&] {
                   const Tensor r = rms_norm_forward(x, w, 1e-5);
                   consume(r.data<float>(), total);
                 })});
#endif
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  cli::bound_openmp_spinning(argv);  // wait for work as attnlab does: cli/openmp_wait.hpp
  if (argc > 2) {                    // bench_kernels gemm TARGET: only that SIMD target
    for (const int64_t target : hwy::SupportedAndGeneratedTargets())
      if (std::strcmp(hwy::TargetName(target), argv[2]) == 0)
        hwy::SetSupportedTargetsForTest(target);
    if (std::strcmp(kernels::simd_target_name(), argv[2]) != 0) {
      fmt::print(stderr, "bench_kernels: target {} is not available here\n", argv[2]);
      return 2;
    }
  }
  const int threads = omp_get_max_threads();
  fmt::print("SIMD target {} ({} f32 lanes), {} OpenMP threads, OpenBLAS {} threads ({})\n\n",
             kernels::simd_target_name(), kernels::simd_lanes(DType::F32), threads,
             openblas_get_num_threads(), openblas_get_corename());
  const bool gemm_only = argc > 1 && std::strcmp(argv[1], "gemm") == 0;
  if (!gemm_only) {
    bench_matmul();
    fmt::print("\n");
    omp_set_num_threads(1);
    print_rows("(b) SIMD kernels vs a plain scalar loop, 1 thread, median ms", bench_row_kernels());
    omp_set_num_threads(threads);
    fmt::print("\n");
    print_rows(fmt::format("(b') the same with {} OpenMP threads (scalar loop: 1 thread)", threads)
                   .c_str(),
               bench_row_kernels());
#ifndef ATTNLAB_BENCH_RMS_NORM
    fmt::print("(rms_norm not benchmarked: tensor/rms_norm.hpp is not in this tree)\n");
#endif
    fmt::print("\n");
  }
  openblas_set_num_threads(1);
  bench_own_gemm(gemm_only ? 21 : 9);
  return 0;
}
