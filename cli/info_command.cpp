// attnlab info: what a model is: its config, parameters by module, the size
// of its KV cache, and the memory it needs to train and to sample
// (models/memory_estimate.hpp) for a batch size and sequence length.
#include <fmt/format.h>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/models/memory_estimate.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "cli/commands.hpp"
#include "cli/model_options.hpp"

namespace attnlab::cli {
namespace {

struct InfoOptions {
  std::string checkpoint;
  ModelOptions model;
  int64_t vocab_size = 65;
  int64_t batch_size = 12;  // as attnlab train's defaults
  int64_t seq_len = 0;      // 0: the model's max_seq_len
};

void run_info(const InfoOptions& o) {
  ATTN_CHECK(o.checkpoint.empty() || !o.model.given(),
             "give --checkpoint or a model (--preset/--config), not both");
  ModelConfig config;
  std::string tokenizer;  // what the checkpoint's tokenizer is, when it has one
  if (!o.checkpoint.empty()) {
    // Only the header is needed; the tensors are checked by read_checkpoint.
    const Checkpoint ck = read_checkpoint(o.checkpoint);
    config = ck.config;
    if (ck.metadata.count("tokenizer"))
      tokenizer = tokenizer_from_json(ck.meta("tokenizer"))->describe();
  } else {
    config = o.model.resolve(o.vocab_size);
  }
  const int64_t seq_len = o.seq_len ? o.seq_len : config.max_seq_len;
  ATTN_CHECK(seq_len <= config.max_seq_len, "--seq-len {} exceeds the model's max_seq_len {}",
             seq_len, config.max_seq_len);
  fmt::print("config:\n{}\n\n", config_to_json(config));
  if (!tokenizer.empty()) fmt::print("tokenizer: {}\n\n", tokenizer);
  fmt::print("parameters by module:\n");
  // A config may declare a million layers or experts (it is valid, if absurd):
  // list the modules only when their tensors are few enough to name.
  const double tensors =
      3.0 + static_cast<double>(config.n_layers) *
                (12.0 + 4.0 * static_cast<double>(config.n_experts + config.n_shared_experts));
  if (tensors <= 100000) {
    for (const auto& [module, count] : parameter_count_by_module(config))
      fmt::print("  {:<28} {:>12}\n", module, count);
  } else {
    fmt::print("  ({} layers{}: too many modules to list)\n", config.n_layers,
               config.is_moe() ? fmt::format(" of {} experts", config.n_experts) : "");
  }
  fmt::print("  {:<28} {:>12}\n\n", "total", config.parameter_count());
  // In double: a valid config's cache can be too large for int64 bytes.
  const double floats = static_cast<double>(config.kv_cache_floats_per_token());
  fmt::print("KV cache per token: {:.0f} numbers, {:.0f} bytes in f32\n", floats, floats * 4);
  fmt::print("KV cache at max_seq_len {}: {:.0f} bytes per sequence in f32\n", config.max_seq_len,
             floats * 4 * static_cast<double>(config.max_seq_len));

  const MemoryEstimate train = estimate_training_memory(config, o.batch_size, seq_len, 0.0, 0);
  fmt::print("\nmemory to train, batch {} × {} tokens: {}\n", o.batch_size, seq_len,
             train.describe());
  fmt::print("  (without the corpus: attnlab train adds 5 bytes per byte of it)\n");
  const MemoryEstimate sample = estimate_sampling_memory(config, 1, config.max_seq_len);
  fmt::print("memory to sample one sequence of {} tokens: {}\n", config.max_seq_len,
             sample.describe());
  fmt::print("  (loading takes up to {} from a training checkpoint, {} from a converted one)\n",
             format_bytes(sampling_load_bytes(config, true)),
             format_bytes(sampling_load_bytes(config, false)));
  if (auto available = available_memory())
    fmt::print("available now: {} ({})\n", format_bytes(available->bytes), available->source);
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* cmd =
      app.add_subcommand("info", "Print a model's config, parameter counts and cache size");
  cmd->add_option("--checkpoint", opts->checkpoint, "A checkpoint (.safetensors)")
      ->check(CLI::ExistingFile);
  opts->model.add_to(*cmd);
  cmd->add_option("--vocab-size", opts->vocab_size, "Vocabulary size for a preset (default 65)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--batch-size", opts->batch_size,
                  "Batch size of the training memory estimate (default 12)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--seq-len", opts->seq_len,
                  "Sequence length of the training memory estimate (default: max_seq_len)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->callback([opts] {
    ATTN_CHECK(!opts->checkpoint.empty() || opts->model.given(),
               "info needs a model: --checkpoint FILE, --preset NAME or --config FILE");
    run_info(*opts);
  });
}

}  // namespace attnlab::cli
