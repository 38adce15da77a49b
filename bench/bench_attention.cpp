// Fused causal attention, forward and backward, f32: time per call and
// throughput, for the shapes of the attention survey. Usage:
//   OMP_NUM_THREADS=2 build/bench/bench_attention [repeats]
// Machines are shared and noisy: medians of the repeats are reported, as wall
// time and as CPU time of all threads (on a loaded machine, the CPU time of a
// one-thread run is the better measure of the kernel itself).
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "attnlab/tensor/attention.hpp"
#include "attnlab/tensor/threads.hpp"
#include "cli/openmp_wait.hpp"

using namespace attnlab;

namespace {

double cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

struct Timing {
  double wall_ms, cpu_ms;  // medians
};

template <typename Fn>
Timing median_ms(int repeats, Fn&& fn) {
  fn();  // warm-up: buffers, page faults, thread team
  std::vector<double> wall, cpu;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_ms();
    fn();
    cpu.push_back(cpu_ms() - c0);
    wall.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

void run(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t dh, int repeats) {
  Rng rng(1);
  const Tensor q = Tensor::normal({B, T, H, dh}, rng), k = Tensor::normal({B, T, Hkv, dh}, rng);
  const Tensor v = Tensor::normal({B, T, Hkv, dh}, rng), dout = Tensor::normal({B, T, H, dh}, rng);
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  AttentionResult fwd = attention_forward(q, k, v, scale);
  const Timing f = median_ms(repeats, [&] { fwd = attention_forward(q, k, v, scale); });
  const Timing b =
      median_ms(repeats, [&] { attention_backward(dout, q, k, v, fwd.out, fwd.lse, scale); });
  // Useful multiply-adds (the causal half): forward q·k and p·v; backward
  // s, dp, dv, dq, dk. Two flops each.
  const double pairs = static_cast<double>(B * H) * T * (T + 1) / 2;
  const double fwd_gflop = 2 * pairs * 2 * dh / 1e9, bwd_gflop = 2 * pairs * 5 * dh / 1e9;
  std::printf(
      "B=%-3lld T=%-4lld H=%-2lld Hkv=%-2lld dh=%-3lld threads=%d | wall: fwd %6.2f ms, bwd %6.2f "
      "ms, total %6.2f ms | cpu: fwd %6.2f ms (%5.1f GFLOP/s), bwd %6.2f ms (%5.1f GFLOP/s)\n",
      static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(H),
      static_cast<long long>(Hkv), static_cast<long long>(dh), omp_get_max_threads(), f.wall_ms,
      b.wall_ms, f.wall_ms + b.wall_ms, f.cpu_ms, fwd_gflop / f.cpu_ms * 1e3, b.cpu_ms,
      bwd_gflop / b.cpu_ms * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  cli::bound_openmp_spinning(argv);  // wait for work as attnlab does: cli/openmp_wait.hpp
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 20;
  if (argc > 2 || repeats < 1) {
    std::fprintf(stderr, "usage: bench_attention [repeats ≥ 1, default 20]\n");
    return 2;
  }
  run(12, 64, 4, 4, 32, repeats);
  run(12, 256, 6, 6, 64, repeats);
  run(12, 256, 6, 2, 64, repeats);  // GQA: 3 query heads per KV head
  run(12, 256, 6, 1, 64, repeats);  // MQA
}
