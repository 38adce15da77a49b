// attnlab info: what a model is: its config, parameters by module, the size
// of its KV cache, and the memory it needs to train and to sample
// (models/memory_estimate.hpp) for a batch size and sequence length. For a
// checkpoint, also what its metadata tells of its training (step, val loss,
// settings, tokenizer, date), as far as the file holds it. --json: one JSON
// object for scripts.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

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
  bool json = false;
};

// The metadata value as JSON when it is JSON, else as a string; null when absent.
nlohmann::ordered_json meta_json(const std::map<std::string, std::string>& meta,
                                 const std::string& key) {
  const auto it = meta.find(key);
  if (it == meta.end()) return nullptr;
  const auto parsed =
      nlohmann::ordered_json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? nlohmann::ordered_json(it->second) : parsed;
}

// A number from the metadata (null when absent, not a number, or not finite).
nlohmann::ordered_json meta_number(const std::map<std::string, std::string>& meta,
                                   const std::string& key) {
  const nlohmann::ordered_json v = meta_json(meta, key);
  if (v.is_number() && std::isfinite(v.get<double>())) return v;
  return nullptr;
}

// What the checkpoint's metadata says of its training, in the order a reader
// wants it; keys the file does not hold are null.
nlohmann::ordered_json training_facts(const std::map<std::string, std::string>& meta) {
  nlohmann::ordered_json j;
  j["step"] = meta_number(meta, "train.step");
  j["val_loss"] = meta_number(meta, "train.val_loss");
  j["best_val_loss"] = meta_number(meta, "train.best_val_loss");
  j["trained_s"] = meta_number(meta, "train.elapsed_s");
  j["date"] = meta_json(meta, "train.date");
  j["init_from"] = meta_json(meta, "train.init_from");
  j["settings"] = meta_json(meta, "train.settings");
  // The tokenizer in a few words (its JSON may hold a whole SentencePiece model).
  nlohmann::ordered_json tokenizer;
  if (const auto it = meta.find("tokenizer"); it != meta.end()) {
    const nlohmann::ordered_json raw = meta_json(meta, "tokenizer");
    tokenizer["type"] = raw.is_object() && raw.contains("type") ? raw["type"] : nullptr;
    try {
      const auto t = tokenizer_from_json(it->second);
      tokenizer["vocab_size"] = t->vocab_size();
      tokenizer["description"] = t->describe();
    } catch (const Error& e) {
      tokenizer["error"] = e.what();
    }
  }
  j["tokenizer"] = tokenizer;
  return j;
}

void run_info(const InfoOptions& o) {
  usage_check(o.checkpoint.empty() || !o.model.given(),
              "give --checkpoint or a model (--preset/--config), not both");
  ModelConfig config;
  std::map<std::string, std::string> metadata;
  if (!o.checkpoint.empty()) {
    // Only the header is needed; the tensors are checked by read_checkpoint.
    Checkpoint ck = read_checkpoint(o.checkpoint);
    config = ck.config;
    metadata = std::move(ck.metadata);
  } else {
    config = o.model.resolve(o.vocab_size);
  }
  const int64_t seq_len = config.resolve_seq_len(o.seq_len);
  // In double: a valid config's cache can be too large for int64 bytes.
  const double floats = static_cast<double>(config.kv_cache_floats_per_token());
  if (o.json) {
    nlohmann::ordered_json j;
    j["checkpoint"] = o.checkpoint.empty() ? nlohmann::ordered_json(nullptr)
                                           : nlohmann::ordered_json(o.checkpoint);
    j["config"] = nlohmann::ordered_json::parse(config_to_json(config));
    j["parameters"] = config.parameter_count();
    j["kv_cache_bytes_per_token"] = floats * 4;
    j["kv_cache_bytes_per_token_bf16"] = floats * 2;  // sample --kv-cache bf16
    j.update(training_facts(metadata));
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("config:\n{}\n\n", config_to_json(config));
  if (!o.checkpoint.empty()) {
    const nlohmann::ordered_json t = training_facts(metadata);
    auto number = [](const nlohmann::ordered_json& v, const char* format) {
      return v.is_null() ? std::string("unknown")
                         : fmt::format(fmt::runtime(format), v.get<double>());
    };
    fmt::print("training (from the checkpoint's metadata; unknown: not in the file):\n");
    fmt::print("  step           {}\n", t["step"].is_null() ? "unknown" : t["step"].dump());
    fmt::print("  val loss       {} (best {})\n", number(t["val_loss"], "{:.4f}"),
               number(t["best_val_loss"], "{:.4f}"));
    fmt::print("  trained for    {}\n", number(t["trained_s"], "{:.0f} s"));
    fmt::print("  saved          {}\n",
               t["date"].is_string() ? t["date"].get<std::string>() : "unknown");
    if (t["init_from"].is_string())
      fmt::print("  started from   {}\n", t["init_from"].get<std::string>());
    const auto& tok = t["tokenizer"];
    fmt::print("  tokenizer      {}\n", tok.is_null() ? std::string("none")
                                        : tok.contains("description")
                                            ? tok["description"].get<std::string>()
                                            : tok.dump());
    fmt::print("  settings       {}\n\n",
               t["settings"].is_null() ? "unknown" : t["settings"].dump());
  }
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
  fmt::print(
      "KV cache per token: {:.0f} numbers, {:.0f} bytes in f32, {:.0f} in bf16 (sample "
      "--kv-cache bf16)\n",
      floats, floats * 4, floats * 2);
  fmt::print("KV cache at max_seq_len {}: {:.0f} bytes per sequence in f32, {:.0f} in bf16\n",
             config.max_seq_len, floats * 4 * static_cast<double>(config.max_seq_len),
             floats * 2 * static_cast<double>(config.max_seq_len));

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
      app.add_subcommand("info",
                         "Print a model's config, parameter counts and cache size; for a "
                         "checkpoint also its step, val loss, settings, tokenizer and date");
  cmd->add_option("-m,--checkpoint", opts->checkpoint, "A checkpoint (.safetensors)")
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
  cmd->add_flag("--json", opts->json,
                "Print one JSON object: config, parameters, kv_cache_bytes_per_token, and from a "
                "checkpoint step, val_loss, best_val_loss, trained_s, date, init_from, settings, "
                "tokenizer (null when the file does not say)");
  cmd->callback([opts] {
    usage_check(!opts->checkpoint.empty() || opts->model.given(),
                "info needs a model: --checkpoint FILE, --preset NAME or --config FILE");
    run_info(*opts);
  });
}

}  // namespace attnlab::cli
