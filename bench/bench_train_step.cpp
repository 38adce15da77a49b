// attnlab's side of bench/compare_pytorch.py: one checkpoint, one batch, and
// the same work PyTorch does on them.
//
//   bench_train_step --checkpoint M.safetensors --batch B.safetensors
//                    [--steps 30] [--warmup 5] [--threads 2] [--decode 64]
//                    [--pool-limit-mb N]  (the storage pool's cache limit; 0 = automatic)
//   bench_train_step --fma-peak [--threads 2]
//
// Prints one JSON object on stdout:
//   loss0       the loss of the first forward pass (before any update), which
//               the script checks against PyTorch's on the same batch;
//   step_ms     the median over --steps of a whole training step: forward,
//               backward, global-norm clipping, AdamW, zero_grad (the work of
//               Trainer::step, on the same batch every time);
//   steps_ms    every step's time, for the script's own statistics;
//   decode_tok_s  tokens per second of a KV-cached decoder at batch 1 after a
//               32-token prefill (only when the decoder is built in);
//   peak_rss_mb the peak resident memory of this program (VmHWM of
//               /proc/self/status: not ru_maxrss, which a program started by
//               fork and exec inherits from its parent, here a Python
//               process with torch loaded), taken
//               after training and before the decoder runs;
//   pool_cached_mb, pool_allocs_timed, pool_evictions  the storage pool after
//               training: bytes it caches, buffers it had to get from the
//               system during the timed steps (0 when the step is
//               allocation-free), cached buffers it gave back to stay bounded.
//   decode_weight_mb  the weights one decoded token reads: all of the
//               decoder's but the embedding table (one row of it is read),
//               and of each MoE layer's experts only top_k of n_experts;
//   read_gbs    how fast these threads stream a buffer too big for their
//               caches (64 MB, or the weights if bigger; sum_of_squares, one
//               pass, best of 20), in GB/s; so
//   decode_ceiling_tok_s = read_gbs / decode_weight_mb: at batch 1 a decoder
//               reads every weight once per token, so one whose weights do not
//               fit in the cores' caches (small) cannot beat this. baby's
//               weights (3 MB) stay in the two cores' L2 and can.
// --fma-peak instead measures the machine's f32 FMA throughput: independent
// vector FMAs in registers on every thread, in GFLOP/s (2 flops per lane).
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/tensor/storage.hpp"
#include "attnlab/tensor/threads.hpp"
#include "attnlab/train/adamw.hpp"
#include "attnlab/train/grad_clip.hpp"
#include "cli/openmp_wait.hpp"
#if __has_include("attnlab/models/decoder.hpp")
#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#define ATTNLAB_HAVE_DECODER 1
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/bench_train_step.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace attnlab::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 16 independent accumulators hide the FMA latency (4 cycles) on two ports.
// Returns the flops done, and a checksum that keeps the loop alive.
double FmaLoop(int64_t iters, float* sink) {
  const hn::ScalableTag<float> d;
  const auto a = hn::Set(d, 0.999999f), b = hn::Set(d, 1e-7f);
  hn::Vec<decltype(d)> acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = hn::Set(d, static_cast<float>(i));
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = hn::MulAdd(acc[i], a, b);
  auto total = acc[0];
  for (int i = 1; i < 16; ++i) total = hn::Add(total, acc[i]);
  *sink = hn::GetLane(hn::SumOfLanes(d, total));
  return 2.0 * 16.0 * static_cast<double>(hn::Lanes(d)) * static_cast<double>(iters);
}

}  // namespace attnlab::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {
HWY_EXPORT(FmaLoop);

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return 0;
}

// The best of 5 runs of the FMA loop on every thread at once.
double fma_peak_gflops() {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const int64_t iters = 20'000'000;
    double flops = 0;
    float sink = 0;
    const auto t0 = Clock::now();
#pragma omp parallel reduction(+ : flops)
    {
      float s = 0;
      flops += HWY_DYNAMIC_DISPATCH(FmaLoop)(iters, &s);
      if (s == 12345.f) sink = s;  // never true; keeps s alive
    }
    const double sec = ms_since(t0) / 1e3;
    best = std::max(best, flops / sec / 1e9 + sink);
  }
  return best;
}

#ifdef ATTNLAB_HAVE_DECODER
// Bytes of weights one decoded token reads (see decode_weight_mb above).
double decode_weight_bytes(const DecoderWeights& w) {
  const ModelConfig& c = w.config;
  double bytes = 0;
  for (const auto& [name, t] : w.tensors) {
    if (name == "tok_emb.weight") continue;
    double share = 1;
    if (name.find(".moe.experts.") != std::string::npos)
      share = static_cast<double>(c.top_k) / static_cast<double>(c.n_experts);
    bytes += share * static_cast<double>(t.numel() * dtype_size(t.dtype()));
  }
  return bytes;
}
#endif

// GB/s of one read-only pass over `bytes` of f32 on the current threads.
double read_bandwidth_gbs(double bytes) {
  const Tensor buf = Tensor::ones({std::max<int64_t>(1, static_cast<int64_t>(bytes / 4))});
  double best = 0, sink = 0;
  for (int rep = 0; rep < 20; ++rep) {
    const auto t0 = Clock::now();
    sink += sum_of_squares(buf);
    best = std::max(best, static_cast<double>(buf.numel() * 4) / (ms_since(t0) / 1e3) / 1e9);
  }
  return sink < 0 ? 0 : best;  // sink is never negative; it keeps the passes alive
}

struct TokenBatch {
  int64_t b = 0, t = 0;
  std::vector<int32_t> inputs, targets;
};

TokenBatch read_tokens(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  TokenBatch batch;
  for (const char* name : {"inputs", "targets"}) {
    const SafetensorsEntry& e = file.at(name);
    ATTN_CHECK(e.shape.size() == 2, "{}: {} must be [B, T]", path, name);
    batch.b = e.shape[0];
    batch.t = e.shape[1];
    std::vector<int32_t>& dst = std::strcmp(name, "inputs") == 0 ? batch.inputs : batch.targets;
    for (int64_t id : to_int64(e)) dst.push_back(static_cast<int32_t>(id));
  }
  return batch;
}

}  // namespace
}  // namespace attnlab

int main(int argc, char** argv) {
  using namespace attnlab;
  cli::bound_openmp_spinning(argv);
  std::string checkpoint, batch_path;
  int64_t steps = 30, warmup = 5, threads = 0, decode = 64, pool_limit_mb = 0;
  bool fma = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      ATTN_CHECK(i + 1 < argc, "{} needs a value", a);
      return argv[++i];
    };
    if (a == "--checkpoint")
      checkpoint = next();
    else if (a == "--batch")
      batch_path = next();
    else if (a == "--steps")
      steps = std::stoll(next());
    else if (a == "--warmup")
      warmup = std::stoll(next());
    else if (a == "--threads")
      threads = std::stoll(next());
    else if (a == "--decode")
      decode = std::stoll(next());
    else if (a == "--pool-limit-mb")
      pool_limit_mb = std::stoll(next());
    else if (a == "--fma-peak")
      fma = true;
    else {
      fmt::print(stderr, "unknown argument {}\n", a);
      return 2;
    }
  }
  set_num_threads(static_cast<int>(threads));
  storage_pool_set_limit(static_cast<size_t>(pool_limit_mb) << 20);  // 0: automatic
  if (fma) {
    fmt::print("{{\"fma_gflops\": {:.1f}, \"threads\": {}}}\n", fma_peak_gflops(), num_threads());
    return 0;
  }
  try {
    const Checkpoint ck = read_checkpoint(checkpoint);
    std::unique_ptr<LanguageModel> model = load_model(ck);
    const TokenBatch batch = read_tokens(batch_path);
    auto params = model->named_parameters();
    // The settings of compare_pytorch.py's AdamW and clipping.
    AdamW optimizer(params, {.beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1});
    model->train();
    double loss0 = 0;
    std::vector<double> times;
    PoolStats pool_at_warmup;
    for (int64_t s = 0; s < warmup + steps; ++s) {
      if (s == warmup) pool_at_warmup = storage_pool_stats();
      const auto t0 = Clock::now();
      LanguageModelLoss l = model->loss(batch.inputs, batch.targets, batch.b, batch.t);
      const double loss = l.loss.item();
      l.loss.backward();
      clip_grad_norm(params, 1.0);
      {
        NoGradGuard no_grad;
        optimizer.step(1e-4);
      }
      model->zero_grad();
      if (s == 0) loss0 = loss;
      if (s >= warmup) times.push_back(ms_since(t0));
    }
    const double rss = peak_rss_mb();
    const PoolStats pool = storage_pool_stats();
    double decode_tok_s = 0, weight_bytes = 0, read_gbs = 0;
#ifdef ATTNLAB_HAVE_DECODER
    if (decode > 0) {
      const DecoderWeights weights = absorb_weights(*model, DType::F32);
      weight_bytes = decode_weight_bytes(weights);
      read_gbs = read_bandwidth_gbs(std::max(weight_bytes, 64e6));
      Decoder decoder(weights, DType::F32, {.batch = 1});
      const int64_t prefill = 32;
      std::vector<int32_t> prompt(batch.inputs.begin(), batch.inputs.begin() + prefill);
      const int64_t n = std::min(decode, model->config().max_seq_len - prefill);
      std::vector<double> rates;
      for (int rep = 0; rep < 3; ++rep) {
        decoder.reset();
        Tensor logits = decoder.prefill(prompt, prefill);
        int32_t id = batch.inputs[prefill];
        const auto t0 = Clock::now();
        for (int64_t i = 0; i < n; ++i) {
          decoder.step({&id, 1});
          id = batch.inputs[(prefill + 1 + i) % batch.inputs.size()];
        }
        rates.push_back(static_cast<double>(n) / (ms_since(t0) / 1e3));
      }
      decode_tok_s = median(rates);
    }
#endif
    std::string all;
    for (double t : times) all += fmt::format("{}{:.3f}", all.empty() ? "" : ", ", t);
    fmt::print(
        "{{\"loss0\": {:.7f}, \"step_ms\": {:.3f}, \"steps_ms\": [{}], \"decode_tok_s\": {:.1f}, "
        "\"peak_rss_mb\": {:.1f}, \"threads\": {}, \"tokens\": {}, \"pool_cached_mb\": {:.1f}, "
        "\"pool_allocs_timed\": {}, \"pool_evictions\": {}, \"decode_weight_mb\": {:.2f}, "
        "\"read_gbs\": {:.1f}, \"decode_ceiling_tok_s\": {:.1f}}}\n",
        loss0, median(times), all, decode_tok_s, rss, num_threads(), batch.b * batch.t,
        static_cast<double>(pool.cached_bytes) / (1 << 20),
        pool.system_allocations - pool_at_warmup.system_allocations, pool.evictions,
        weight_bytes / 1e6, read_gbs, weight_bytes > 0 ? read_gbs * 1e9 / weight_bytes : 0.0);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_train_step: {}\n", e.what());
    return 1;
  }
  return 0;
}
#endif  // HWY_ONCE
