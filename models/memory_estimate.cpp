#include "attnlab/models/memory_estimate.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include "attnlab/tensor/error.hpp"

namespace attnlab {
namespace {

constexpr double kFloat = 4.0;                    // bytes of an f32
constexpr double kOverhead = 32.0 * 1024 * 1024;  // code, OpenBLAS and OpenMP buffers
constexpr double kPoolSlack = 1.25;               // the tensor pool caches freed buffers
constexpr double kPrefillRows = 4096;             // the decoder's prefill chunk, in rows

double d(int64_t v) {
  return static_cast<double>(v);
}

// Floats one token leaves behind in one FFN (dense, expert or shared).
double ffn_floats_per_token(const ModelConfig& c) {
  const double D = d(c.d_model), F = d(c.ffn_hidden);
  return c.ffn == FeedForwardKind::SwiGLU ? 4 * F + D : 3 * F + 2 * D;
}

// Floats one layer keeps for the backward pass, for `tokens` = B·T tokens in
// sequences of seq_len (see the header for the terms).
double layer_floats(const ModelConfig& c, double batch, double seq_len, double dropout) {
  const double N = batch * seq_len, D = d(c.d_model), H = d(c.n_heads), dh = d(c.head_dim);
  double a = 4 * N * D;  // norms
  if (c.attention == AttentionKind::MLA) {
    const double dr = d(c.rope_head_dim), dcq = d(c.q_lora_rank), dc = d(c.kv_lora_rank);
    a += N * (dcq + dc + 2 * dr) + N * H * (5 * dh + 2 * dr) + 2 * N * H * (dh + dr);
  } else {
    const double Kd = d(c.n_kv_heads) * dh;
    a += 3 * N * H * dh + 3 * N * Kd;
  }
  a += N * H + 2 * N * D;  // log-sum-exp, wo, residual
  if (dropout > 0) a += 5 * batch * H * seq_len * seq_len + 4 * N * D;
  if (c.is_moe()) {
    const double routed = d(c.top_k) + d(c.n_shared_experts);
    // Each routed token: gathered input, the FFN, the gated output and its
    // copy in the concatenation; × 1.5 because the per-expert token counts
    // change every step, which spreads the pool's buffers over more sizes.
    a += 2 * N * d(c.n_experts) + 1.5 * N * routed * (ffn_floats_per_token(c) + 3 * D) + N * D;
  } else {
    a += N * ffn_floats_per_token(c) + N * D;
  }
  return a;
}

// "MemTotal:  24000000 kB" lines of a /proc file: the value of `key` in bytes.
std::optional<double> proc_kb(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    double kb = 0;
    if (fields >> kb) return kb * 1024;
  }
  return std::nullopt;
}

// A file holding one number ("max" or unreadable: nullopt).
std::optional<double> number_file(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word == "max") return std::nullopt;
  try {
    return std::stod(word);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The directory of this process's cgroup (v2), if it can be found.
std::optional<std::string> cgroup_dir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return "/sys/fs/cgroup" + line.substr(3);
  return std::nullopt;
}

}  // namespace

std::string format_bytes(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t u = 0;
  while (bytes >= 1024 && u + 1 < std::size(units)) bytes /= 1024, ++u;
  if (u == 0) return fmt::format("{:.0f} B", bytes);
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

std::string MemoryEstimate::parts() const {
  std::vector<std::string> out;
  for (auto [name, bytes] : {std::pair{"weights", weights_bytes},
                             {"gradients", gradients_bytes},
                             {"AdamW state", optimizer_bytes},
                             {"activations", activations_bytes},
                             {"KV cache", cache_bytes},
                             {"data", data_bytes},
                             {"overhead and pool slack", overhead_bytes}})
    if (bytes > 0) out.push_back(fmt::format("{} {}", name, format_bytes(bytes)));
  return fmt::format("{}", fmt::join(out, ", "));
}

std::string MemoryEstimate::describe() const {
  return fmt::format("about {} ({})", format_bytes(total_bytes), parts());
}

MemoryEstimate estimate_training_memory(const ModelConfig& c, int64_t batch_size, int64_t seq_len,
                                        double dropout, int64_t corpus_bytes,
                                        int64_t eval_batches) {
  const double P = d(c.parameter_count());
  const double B = d(std::max<int64_t>(batch_size, 1)), T = d(std::max<int64_t>(seq_len, 1));
  const double N = B * T, D = d(c.d_model), V = d(c.vocab_size), L = d(c.n_layers);
  MemoryEstimate m;
  m.weights_bytes = kFloat * P;
  m.gradients_bytes = 3 * kFloat * P;  // and their temporaries: see the header
  m.optimizer_bytes = 2 * kFloat * P;
  const double layer = layer_floats(c, B, T, dropout);
  m.activations_bytes = kFloat * ((L + 1) * layer + 3 * N * V + 3 * N * D);
  m.data_bytes = 5 * d(std::max<int64_t>(corpus_bytes, 0)) + 8 * d(eval_batches) * N;
  const double subtotal = m.weights_bytes + m.gradients_bytes + m.optimizer_bytes +
                          m.activations_bytes + m.data_bytes + kOverhead;
  m.total_bytes = subtotal * kPoolSlack;
  m.overhead_bytes = m.total_bytes - (subtotal - kOverhead);
  return m;
}

MemoryEstimate estimate_sampling_memory(const ModelConfig& c, int64_t batch_size,
                                        int64_t context_len, bool weights_loaded,
                                        KvCacheFormat kv_cache) {
  const double P = d(c.parameter_count());
  const double S = d(std::max<int64_t>(batch_size, 1)), C = d(std::max<int64_t>(context_len, 1));
  MemoryEstimate m;
  m.weights_bytes = weights_loaded ? 0 : kFloat * P;
  const double number_bytes = kv_cache == KvCacheFormat::BF16 ? 2.0 : kFloat;
  m.cache_bytes = number_bytes * S * C * d(c.kv_cache_floats_per_token());
  // The decoder prefills in chunks of at most kPrefillRows rows (models/decoder.hpp).
  const double rows = std::min(S * C, kPrefillRows);
  m.activations_bytes = kFloat * (layer_floats(c, 1, rows, 0) + 2 * rows * d(c.vocab_size));
  const double subtotal = m.weights_bytes + m.cache_bytes + m.activations_bytes + kOverhead;
  m.total_bytes = subtotal * kPoolSlack;
  m.overhead_bytes = m.total_bytes - (subtotal - kOverhead);
  return m;
}

double sampling_load_bytes(const ModelConfig& c, bool training_checkpoint) {
  return (training_checkpoint ? 40.0 : 8.0) * d(c.parameter_count());
}

std::optional<AvailableMemory> available_memory() {
  std::optional<AvailableMemory> best;
  auto consider = [&](std::optional<double> bytes, const std::string& source) {
    if (!bytes) return;
    const double b = std::max(*bytes, 0.0);
    if (!best || b < best->bytes) best = AvailableMemory{b, source};
  };
  consider(proc_kb("/proc/meminfo", "MemAvailable"), "MemAvailable in /proc/meminfo");
  if (auto dir = cgroup_dir()) {
    auto max = number_file(*dir + "/memory.max");
    auto current = number_file(*dir + "/memory.current");
    if (max) consider(*max - current.value_or(0), "the cgroup's memory.max");
  }
  for (auto [resource, name, in_use] :
       {std::tuple{RLIMIT_AS, "RLIMIT_AS (ulimit -v)", "VmSize"},
        std::tuple{RLIMIT_DATA, "RLIMIT_DATA (ulimit -d)", "VmData"}}) {
    struct rlimit limit;
    if (getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) continue;
    const double used = proc_kb("/proc/self/status", in_use).value_or(0);
    consider(static_cast<double>(limit.rlim_cur) - used, name);
  }
  return best;
}

void check_memory_fits(const MemoryEstimate& estimate, const std::string& what,
                       const std::string& advice, const std::optional<AvailableMemory>& available) {
  if (!available || estimate.total_bytes <= available->bytes) return;
  throw Error(fmt::format("{} needs about {} of memory ({}), but only {} is available ({}){}{}",
                          what, format_bytes(estimate.total_bytes), estimate.parts(),
                          format_bytes(available->bytes), available->source,
                          advice.empty() ? "" : ": ", advice));
}

}  // namespace attnlab
