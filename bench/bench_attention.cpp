// Fused causal attention, forward and backward, f32: time per call and
// throughput, for the shapes of the baby and small presets' training steps
// (batch 12; MHA, GQA, MQA, and MLA's q·k of width dh + rope_head_dim). Usage:
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
#include <string>
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

// dk: the width of q and k; dv: of v and the output.
void run(const char* name, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t dk, int64_t dv,
         int repeats) {
  Rng rng(1);
  const Tensor q = Tensor::normal({B, T, H, dk}, rng), k = Tensor::normal({B, T, Hkv, dk}, rng);
  const Tensor v = Tensor::normal({B, T, Hkv, dv}, rng), dout = Tensor::normal({B, T, H, dv}, rng);
  const double scale = 1.0 / std::sqrt(static_cast<double>(dk));
  AttentionResult fwd = attention_forward(q, k, v, scale);
  const Timing f = median_ms(repeats, [&] { fwd = attention_forward(q, k, v, scale); });
  const Timing b =
      median_ms(repeats, [&] { attention_backward(dout, q, k, v, fwd.out, fwd.lse, scale); });
  // Useful multiply-adds (the causal half): forward q·k and p·v; backward
  // s (dk), dp (dv), dv (dv), dq (dk), dk (dk). Two flops each.
  const double pairs = static_cast<double>(B * H) * T * (T + 1) / 2;
  const double fwd_gflop = 2 * pairs * (dk + dv) / 1e9,
               bwd_gflop = 2 * pairs * (3 * dk + 2 * dv) / 1e9;
  std::printf(
      "%-10s B=%-3lld T=%-4lld H=%-2lld Hkv=%-2lld dk=%-3lld dv=%-3lld threads=%d | wall: fwd "
      "%6.2f "
      "ms, bwd %6.2f ms, total %6.2f ms | cpu: fwd %6.2f ms (%5.1f GFLOP/s), bwd %6.2f ms (%5.1f "
      "GFLOP/s)\n",
      name, static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(H),
      static_cast<long long>(Hkv), static_cast<long long>(dk), static_cast<long long>(dv),
      omp_get_max_threads(), f.wall_ms, b.wall_ms, f.wall_ms + b.wall_ms, f.cpu_ms,
      fwd_gflop / f.cpu_ms * 1e3, b.cpu_ms, bwd_gflop / b.cpu_ms * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  cli::bound_openmp_spinning(argv);  // wait for work as attnlab does: cli/openmp_wait.hpp
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 20;
  const std::string only = argc > 2 ? argv[2] : "";
  if (argc > 3 || repeats < 1 || (!only.empty() && only != "baby" && only != "small")) {
    std::fprintf(stderr, "usage: bench_attention [repeats ≥ 1, default 20] [baby|small]\n");
    return 2;
  }
  if (only != "small") {  // baby: T 64, 4 heads of 32; MLA's q, k carry 16 rope dims more
    run("baby mha", 12, 64, 4, 4, 32, 32, repeats);
    run("baby gqa", 12, 64, 4, 2, 32, 32, repeats);
    run("baby mqa", 12, 64, 4, 1, 32, 32, repeats);
    run("baby mla", 12, 64, 4, 4, 48, 32, repeats);
  }
  if (only != "baby") {  // small: T 256, 6 heads of 64
    run("small mha", 12, 256, 6, 6, 64, 64, repeats);
    run("small gqa", 12, 256, 6, 2, 64, 64, repeats);  // 3 query heads per KV head
    run("small mqa", 12, 256, 6, 1, 64, 64, repeats);
  }
}
