#include "cli/model_options.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <vector>

#include "attnlab/tensor/error.hpp"
#include "cli/commands.hpp"

namespace attnlab::cli {

void add_deprecated_top_k(CLI::App& cmd, std::optional<int64_t>& experts_per_token,
                          CLI::Option* new_spelling) {
  cmd.add_option("--top-k", experts_per_token, "")
      ->group("")  // hidden: not in --help, not offered as "did you mean"
      ->check(CLI::Range(int64_t{1}, int64_t{1024}))
      ->each([new_spelling](const std::string&) {
        // Option callbacks run once the whole line is parsed: count() is final.
        if (new_spelling->count() > 0)
          throw UsageError("give --experts-per-token or its old spelling --top-k, not both");
        fmt::print(stderr,
                   "attnlab: warning: --top-k (experts per token) is now --experts-per-token; "
                   "the old spelling goes away in the next release\n");
      });
}

void ModelOptions::add_to(CLI::App& cmd) {
  cmd.add_option("--preset", preset,
                 fmt::format("Built-in model: {}", fmt::join(preset_names(), ", ")));
  cmd.add_option("--config", config_path, "Model config, a JSON file (docs/MODEL-SPEC.md keys)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--attention", attention, "Attention variant for a preset: mha, gqa, mqa or mla")
      ->check(CLI::IsMember({"mha", "gqa", "mqa", "mla"}));
  cmd.add_option("--experts", experts, "Mixture of experts with E experts per layer (preset)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  CLI::Option* per_token =
      cmd.add_option("--experts-per-token", top_k,
                     "Experts each token is routed to (with --experts; default 2; the config's "
                     "top_k)")
          ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  add_deprecated_top_k(cmd, top_k, per_token);
  cmd.add_option("--shared-experts", shared_experts,
                 "Shared experts every token also goes through (with --experts)")
      ->check(CLI::Range(int64_t{0}, int64_t{64}));
}

ModelConfig ModelOptions::resolve(int64_t vocab_size) const {
  usage_check(preset.empty() || config_path.empty(), "give --preset or --config, not both");
  if (!config_path.empty()) {
    usage_check(attention.empty() && !experts && !top_k && !shared_experts,
                "--attention, --experts, --experts-per-token and --shared-experts go with "
                "--preset; a --config file sets these keys itself");
    return config_from_file(config_path);
  }
  usage_check(!preset.empty(), "no model: give --preset NAME or --config FILE");
  const std::vector<std::string> presets = preset_names();
  usage_check(std::find(presets.begin(), presets.end(), preset) != presets.end(),
              "unknown preset '{}' (the presets are {})", preset, fmt::join(presets, ", "));
  PresetOptions opts;
  if (!attention.empty()) opts.attention = attention;
  opts.n_experts = experts;
  opts.top_k = top_k;
  opts.n_shared_experts = shared_experts;
  return preset_config(preset, vocab_size, opts);
}

}  // namespace attnlab::cli
