// attnlab survey: train every attention variant on the same budget and
// compare them side by side (train/survey.hpp); and survey-decode, the hidden
// worker that measures one checkpoint's decoding speed in a process of its own.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/train/output_lock.hpp"
#include "attnlab/train/progress.hpp"
#include "attnlab/train/survey.hpp"
#include "cli/commands.hpp"
#include "cli/model_options.hpp"

namespace attnlab::cli {
namespace {

// What an earlier survey leaves in its directory (train/survey.hpp), and
// the lock files.
bool holds_only_survey_files(const std::string& dir) {
  static const std::set<std::string> kSurveyFiles = {
      "survey.md", "survey.csv",           "val_loss.svg",         "kv_cache.svg",
      "runs",      "train_throughput.svg", "decode_throughput.svg"};
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (!OutputLock::is_lock_file(entry.path()) &&
        !kSurveyFiles.count(entry.path().filename().string()))
      return false;
  return true;
}

}  // namespace

void add_survey_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<SurveyOptions>();
  o->command_line = command_line;
  o->quiet = false;  // the library is quiet unless asked; the program prints unless --quiet
  CLI::App* cmd = app.add_subcommand(
      "survey", "Train mha, gqa, mqa and mla on the same budget and compare them (table + charts)");
  cmd->add_option("--preset", o->preset, "Model preset: baby (default) or small")
      ->check(CLI::IsMember({"baby", "small"}));
  cmd->add_option("--steps", o->steps, "Training steps per run (default 2000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--experts", o->experts, "Also train MoE versions with E experts")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  CLI::Option* per_token =
      cmd->add_option("--experts-per-token", o->top_k,
                      "Experts each token is routed to in the MoE versions (default 2)")
          ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  add_deprecated_top_k(*cmd, o->top_k, per_token);
  cmd->add_option("--seeds", o->seeds, "Runs per variant, with seeds 1337, 1338, … (default 1)")
      ->check(CLI::Range(int64_t{1}, int64_t{100}));
  cmd->add_option("--data", o->data_path,
                  "A DATA_DIR of attnlab tokenize, or a corpus file (default: bundled "
                  "tiny-shakespeare)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--threads", o->threads, "Threads per run (default 0: all cores)")
      ->check(CLI::Range(int64_t{0}, int64_t{1024}));
  cmd->add_option("--out", o->out_dir,
                  "Output directory (default: survey; created with its parents; one holding "
                  "anything but an earlier survey needs --force)");
  auto force = std::make_shared<bool>(false);
  cmd->add_flag("--force", *force,
                "Write into --out even when it holds files attnlab survey did not write");
  cmd->add_flag("--quick", o->quick, "A tiny budget (60 steps) that finishes in about a minute");
  cmd->add_flag("--quiet", o->quiet, "Print nothing but errors");
  cmd->callback([o, force] {
    usage_check(!o->top_k || o->experts, "--experts-per-token goes with --experts");
    if (o->data_path.empty()) o->data_path = default_corpus();
    const OutputLock lock = OutputLock::directory(o->out_dir);  // one writer per directory
    // A survey rewrites an earlier survey, never another command's output (a
    // run directory, say) unless told to.
    ATTN_CHECK(*force || holds_only_survey_files(o->out_dir),
               "--out {} holds files attnlab survey did not write{}: give --force to write "
               "into it anyway, or another --out",
               o->out_dir,
               std::filesystem::exists(std::filesystem::path(o->out_dir) / "last.safetensors")
                   ? " (it is a run directory of attnlab train)"
                   : "");
    o->exe = std::filesystem::read_symlink("/proc/self/exe").string();
    o->interactive = ProgressDisplay::stdout_is_terminal();
    const auto rows = run_survey(*o);
    if (!o->quiet)
      fmt::print("wrote {}/survey.md, survey.csv and 4 charts ({} variants)\n", o->out_dir,
                 rows.size());
  });

  // The decoding worker: one checkpoint, batch 1, a 32-token prefill, then
  // 128 greedy steps; writes {"tokens_per_s": …, "cache_bytes": …}.
  struct DecodeOptions {
    std::string checkpoint, result;
    int64_t threads = 0, prompt_tokens = 32, tokens = 128;
  };
  auto d = std::make_shared<DecodeOptions>();
  CLI::App* worker = app.add_subcommand("survey-decode", "");  // hidden: used by survey
  worker->group("");
  worker->add_option("--checkpoint", d->checkpoint)->required()->check(CLI::ExistingFile);
  worker->add_option("--result", d->result)->required();
  worker->add_option("--threads", d->threads);
  worker->add_option("--prompt-tokens", d->prompt_tokens);
  worker->add_option("--tokens", d->tokens);
  worker->callback([d] {
    const DecodeMeasurement m =
        measure_decode(d->checkpoint, d->prompt_tokens, d->tokens, d->threads);
    nlohmann::json j;
    j["tokens_per_s"] = m.tokens_per_s;
    j["cache_bytes"] = m.cache_bytes;
    write_file_atomically(d->result, j.dump());
  });
}

}  // namespace attnlab::cli
