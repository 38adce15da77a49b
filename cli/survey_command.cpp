// attnlab survey: train every attention variant on the same budget and
// compare them side by side (train/survey.hpp); and survey-decode, the hidden
// worker that measures one checkpoint's decoding speed in a process of its own.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/train/output_lock.hpp"
#include "attnlab/train/progress.hpp"
#include "attnlab/train/survey.hpp"
#include "cli/commands.hpp"

namespace attnlab::cli {

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
  cmd->add_option("--top-k", o->top_k, "Experts per token for the MoE versions (default 2)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  cmd->add_option("--seeds", o->seeds, "Runs per variant, with seeds 1337, 1338, … (default 1)")
      ->check(CLI::Range(int64_t{1}, int64_t{100}));
  cmd->add_option("--data", o->data_path,
                  "A DATA_DIR of attnlab tokenize, or a corpus file (default: bundled "
                  "tiny-shakespeare)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--threads", o->threads, "Threads per run (default 0: all cores)")
      ->check(CLI::Range(int64_t{0}, int64_t{1024}));
  cmd->add_option("--out", o->out_dir, "Output directory (default: survey)");
  cmd->add_flag("--quick", o->quick, "A tiny budget (60 steps) that finishes in about a minute");
  cmd->add_flag("--quiet", o->quiet, "Print nothing but errors");
  cmd->callback([o, cmd] {
    ATTN_CHECK(!o->top_k || o->experts, "--top-k goes with --experts");
    if (o->data_path.empty()) o->data_path = default_corpus();
    const OutputLock lock = OutputLock::directory(o->out_dir);  // one writer per directory
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
