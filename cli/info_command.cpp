// attnlab info: what a model is: its config, parameters by module, and the
// size of its KV cache.
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "models/checkpoint.hpp"
#include "models/language_model.hpp"
#include "models/safetensors.hpp"

namespace attnlab::cli {
namespace {

struct InfoOptions {
  std::string checkpoint;
  ModelOptions model;
  int64_t vocab_size = 65;
};

void run_info(const InfoOptions& o) {
  ATTN_CHECK(o.checkpoint.empty() || !o.model.given(),
             "give --checkpoint or a model (--preset/--config), not both");
  ModelConfig config;
  if (!o.checkpoint.empty()) {
    // Only the header is needed; the tensors are checked by read_checkpoint.
    config = read_checkpoint(o.checkpoint).config;
  } else {
    config = o.model.resolve(o.vocab_size);
  }
  fmt::print("config:\n{}\n\n", config_to_json(config));
  fmt::print("parameters by module:\n");
  for (const auto& [module, count] : parameter_count_by_module(config))
    fmt::print("  {:<28} {:>12}\n", module, count);
  fmt::print("  {:<28} {:>12}\n\n", "total", config.parameter_count());
  const int64_t floats = config.kv_cache_floats_per_token();
  fmt::print("KV cache per token: {} numbers, {} bytes in f32\n", floats, floats * 4);
  fmt::print("KV cache at max_seq_len {}: {} bytes per sequence in f32\n", config.max_seq_len,
             floats * 4 * config.max_seq_len);
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
  cmd->callback([opts] {
    ATTN_CHECK(!opts->checkpoint.empty() || opts->model.given(),
               "info needs a model: --checkpoint FILE, --preset NAME or --config FILE");
    run_info(*opts);
  });
}

}  // namespace attnlab::cli
