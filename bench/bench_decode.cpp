// Decoding speed by weight format, KV cache format and batch: a randomly
// initialised preset model (speed does not depend on the values), its decoder
// in f32, bf16 and int8 (tensor/packed_matrix.hpp), with an f32 or a bf16 KV
// cache (models/kv_cache.hpp), tokens per second after a 32-token prefill.
// A prefill and the steps must fit the preset's context (baby: 64): the
// prefill is at most half of it and --tokens is clamped to the rest, saying
// so in the title line.
//
//   bench_decode [--preset small] [--attention mha] [--vocab 96] [--tokens 64]
//                [--rounds 5] [--threads 0] [--batches 1,4,16] [--formats f32,bf16,int8]
//                [--kv-caches f32,bf16]
//
// Rows (formats, caches, batches) are timed in turn within each round, and the median
// of the rounds is reported: on a shared machine the ratios between rows are
// what to read, not the absolute rates. Prints one markdown table:
//
//   format, kv_cache, batch  the decoder's weights, what its KV cache stores,
//                  and how many sequences a step feeds
//   tok_s          tokens per second over all sequences of the batch
//   vs_f32         tok_s / the row's with f32 weights and an f32 cache at the
//                  same batch
//   weight_mb      bytes of weights one step reads (all matrices but the
//                  embedding table, of which one row per token is read; a
//                  MoE's experts counted at top_k / E)
//   cache_mb       bytes of KV cache one step reads, over the batch, at the
//                  mean context of the timed steps
//   bound_tok_s    batch · read_gbs / (weight_mb + cache_mb): the rate if a
//                  step took exactly the time to stream its weights and the
//                  batch's caches once
//   read_gbs       measured bandwidth of one read pass over 4× the f32
//                  weights, on the same threads
//   cpu_tok_s      tokens per second of CPU time of the process (all
//                  threads): on a loaded machine, with --threads 1, the
//                  steadier measure of the work a token takes
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/tensor/ops.hpp"
#include "attnlab/tensor/packed_matrix.hpp"
#include "attnlab/tensor/threads.hpp"
#include "cli/openmp_wait.hpp"

namespace attnlab {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');) out.push_back(part);
  return out;
}

// Bytes of weights one step reads per sequence batch (see weight_mb above).
double step_weight_bytes(const DecoderWeights& w) {
  const ModelConfig& c = w.config;
  double bytes = 0;
  for (const auto& [name, t] : w.tensors) {
    if (name == "tok_emb.weight" && !c.tie_embeddings) continue;
    double share = 1;
    if (name.find(".moe.experts.") != std::string::npos)
      share = static_cast<double>(c.top_k) / static_cast<double>(c.n_experts);
    auto it = w.packed.find(name);
    const double b = it != w.packed.end() ? static_cast<double>(it->second.bytes())
                                          : static_cast<double>(t.numel() * 4);
    bytes += share * b;
  }
  return bytes;
}

double read_bandwidth_gbs(double bytes) {
  const Tensor buf = Tensor::ones({std::max<int64_t>(1, static_cast<int64_t>(bytes / 4))});
  double best = 0, sink = 0;
  for (int rep = 0; rep < 10; ++rep) {
    const auto t0 = Clock::now();
    sink += sum_of_squares(buf);
    best = std::max(best, static_cast<double>(buf.numel() * 4) / seconds_since(t0) / 1e9);
  }
  return sink < 0 ? 0 : best;
}

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

struct Rate {
  double wall, cpu;  // tokens per second of wall-clock and of CPU time
};

// Tokens per second of `steps` steps after a prefill, over all B sequences.
Rate decode_rate(Decoder& decoder, int64_t prefill, int64_t steps) {
  const int64_t B = decoder.batch();
  const int64_t V = decoder.config().vocab_size;
  std::vector<int32_t> prompt(B * prefill);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7 + 3) % V);
  decoder.reset();
  decoder.prefill(prompt, prefill);
  std::vector<int32_t> ids(B);
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t b = 0; b < B; ++b) ids[b] = static_cast<int32_t>((s * 13 + b * 5 + 1) % V);
    decoder.step(ids);
  }
  const double tokens = static_cast<double>(B * steps);
  return {tokens / seconds_since(t0), tokens / (cpu_seconds() - c0)};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace attnlab

int main(int argc, char** argv) {
  using namespace attnlab;
  cli::bound_openmp_spinning(argv);
  std::string preset = "small", attention = "mha", batches_arg = "1,4,16",
              formats_arg = "f32,bf16,int8", caches_arg = "f32,bf16";
  int64_t vocab = 96, tokens = 64, rounds = 5, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "bench_decode: {} needs a value\n", a);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--preset")
      preset = next();
    else if (a == "--attention")
      attention = next();
    else if (a == "--vocab")
      vocab = std::stoll(next());
    else if (a == "--tokens")
      tokens = std::stoll(next());
    else if (a == "--rounds")
      rounds = std::stoll(next());
    else if (a == "--threads")
      threads = std::stoll(next());
    else if (a == "--batches")
      batches_arg = next();
    else if (a == "--formats")
      formats_arg = next();
    else if (a == "--kv-caches")
      caches_arg = next();
    else {
      fmt::print(stderr, "bench_decode: unknown argument {}\n", a);
      return 2;
    }
  }
  try {
    if (threads > 0) set_num_threads(static_cast<int>(threads));
    const ModelConfig config = preset_config(preset, vocab, {.attention = attention});
    const int64_t prefill = std::min<int64_t>(32, config.max_seq_len / 2);
    std::string clamped;
    if (prefill + tokens > config.max_seq_len) {
      clamped = fmt::format(
          " (--tokens {} clamped: a {}-token prefill and the steps fill the "
          "context of {})",
          tokens, prefill, config.max_seq_len);
      tokens = config.max_seq_len - prefill;
    }
    const LanguageModel model(config, DType::F32, 1);
    const DecoderWeights f32 = absorb_weights(model, DType::F32);
    struct Row {
      std::string format, kv;
      int64_t batch;
      std::unique_ptr<Decoder> decoder;
      double weight_bytes, cache_bytes;
      std::vector<double> rates, cpu_rates;
    };
    std::vector<Row> rows;
    // Step s (0, 1, …) attends over prefill + s + 1 cached tokens.
    const double mean_context = static_cast<double>(prefill) + static_cast<double>(tokens + 1) / 2;
    for (const std::string& f : split(formats_arg)) {
      DecoderWeights w = f32;
      pack_decoder_weights(w, parse_weight_format(f));
      for (const std::string& kv : split(caches_arg))
        for (const std::string& b : split(batches_arg)) {
          const int64_t batch = std::stoll(b);
          auto decoder =
              std::make_unique<Decoder>(w, DType::F32,
                                        DecoderOptions{.batch = batch,
                                                       .max_len = prefill + tokens,
                                                       .kv_cache = parse_kv_cache_format(kv)});
          const double cache =
              static_cast<double>(batch * decoder->cache_bytes_per_token()) * mean_context;
          rows.push_back({f, kv, batch, std::move(decoder), step_weight_bytes(w), cache, {}, {}});
        }
    }
    const double gbs = read_bandwidth_gbs(4 * step_weight_bytes(f32));
    for (int64_t r = 0; r < rounds; ++r)
      for (Row& row : rows) {
        const Rate rate = decode_rate(*row.decoder, prefill, tokens);
        row.rates.push_back(rate.wall);
        row.cpu_rates.push_back(rate.cpu);
      }
    fmt::print(
        "{} {} (V={}), {} thread{}, {} steps after a {}-token prefill{}, median of {} "
        "interleaved rounds; int8 product: {}\n\n",
        preset, attention, vocab, num_threads(), num_threads() == 1 ? "" : "s", tokens, prefill,
        clamped, rounds, int8_kernel_name());
    fmt::print(
        "| format | kv_cache | batch | tok_s | vs_f32 | cpu_tok_s | cpu_vs_f32 | weight_mb | "
        "cache_mb | bound_tok_s | read_gbs |\n");
    fmt::print("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Row& row : rows) {
      double base = 0, cpu_base = 0;
      for (const Row& o : rows)
        if (o.format == "f32" && o.kv == "f32" && o.batch == row.batch) {
          base = median(o.rates);
          cpu_base = median(o.cpu_rates);
        }
      const double rate = median(row.rates), cpu = median(row.cpu_rates);
      auto ratio = [](double a, double b) { return b > 0 ? fmt::format("{:.2f}", a / b) : "-"; };
      const double bound =
          static_cast<double>(row.batch) * gbs * 1e9 / (row.weight_bytes + row.cache_bytes);
      fmt::print(
          "| {} | {} | {} | {:.0f} | {} | {:.0f} | {} | {:.2f} | {:.2f} | {:.0f} | {:.1f} |\n",
          row.format, row.kv, row.batch, rate, ratio(rate, base), cpu, ratio(cpu, cpu_base),
          row.weight_bytes / 1e6, row.cache_bytes / 1e6, bound, gbs);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_decode: {}\n", e.what());
    return 1;
  }
  return 0;
}
