// Flags shared by the commands that take a model config: a named preset or a
// JSON file, with the attention variant and experts chosen on top.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "attnlab/models/config.hpp"

namespace attnlab::cli {

struct ModelOptions {
  std::string preset;
  std::string config_path;
  std::string attention;
  std::optional<int64_t> experts;
  std::optional<int64_t> top_k;
  std::optional<int64_t> shared_experts;

  // Adds --preset, --config, --attention, --experts, --experts-per-token
  // (with the deprecated --top-k), --shared-experts.
  void add_to(CLI::App& cmd);
  bool given() const { return !preset.empty() || !config_path.empty(); }
  // The config these flags describe; vocab_size is used by presets (a JSON
  // config names its own). Refuses contradictory flags and an unknown preset
  // (UsageError).
  ModelConfig resolve(int64_t vocab_size) const;
};

// The old spelling of --experts-per-token, kept hidden for a release (sample's
// --top-k is the sampling cut-off: one meaning per flag name): it sets the
// same value, is refused beside the new spelling, and warns on stderr.
void add_deprecated_top_k(CLI::App& cmd, std::optional<int64_t>& experts_per_token,
                          CLI::Option* new_spelling);

}  // namespace attnlab::cli
