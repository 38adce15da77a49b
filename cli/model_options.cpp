#include "cli/model_options.hpp"

#include <fmt/ranges.h>

#include "attnlab/tensor/error.hpp"

namespace attnlab::cli {

void ModelOptions::add_to(CLI::App& cmd) {
  cmd.add_option("--preset", preset,
                 fmt::format("Built-in model: {}", fmt::join(preset_names(), ", ")));
  cmd.add_option("--config", config_path, "Model config, a JSON file (docs/MODEL-SPEC.md keys)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--attention", attention, "Attention variant for a preset: mha, gqa, mqa or mla")
      ->check(CLI::IsMember({"mha", "gqa", "mqa", "mla"}));
  cmd.add_option("--experts", experts, "Mixture of experts with E experts per layer (preset)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  cmd.add_option("--top-k", top_k, "Experts per token (with --experts; default 2)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  cmd.add_option("--shared-experts", shared_experts,
                 "Shared experts every token also goes through (with --experts)")
      ->check(CLI::Range(int64_t{0}, int64_t{64}));
}

ModelConfig ModelOptions::resolve(int64_t vocab_size) const {
  ATTN_CHECK(preset.empty() || config_path.empty(), "give --preset or --config, not both");
  if (!config_path.empty()) {
    ATTN_CHECK(attention.empty() && !experts && !top_k && !shared_experts,
               "--attention, --experts, --top-k and --shared-experts go with --preset; a --config "
               "file sets these keys itself");
    return config_from_file(config_path);
  }
  ATTN_CHECK(!preset.empty(), "no model: give --preset NAME or --config FILE");
  PresetOptions opts;
  if (!attention.empty()) opts.attention = attention;
  opts.n_experts = experts;
  opts.top_k = top_k;
  opts.n_shared_experts = shared_experts;
  return preset_config(preset, vocab_size, opts);
}

}  // namespace attnlab::cli
