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

  // Adds --preset, --config, --attention, --experts, --top-k, --shared-experts.
  void add_to(CLI::App& cmd);
  bool given() const { return !preset.empty() || !config_path.empty(); }
  // The config these flags describe; vocab_size is used by presets (a JSON
  // config names its own). Refuses contradictory flags with a message.
  ModelConfig resolve(int64_t vocab_size) const;
};

}  // namespace attnlab::cli
