// attnlab survey: train every attention variant on the same budget and
// compare them side by side (train/survey.hpp); and survey-decode, the hidden
// worker that measures one checkpoint's decoding speed in a process of its own.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/tensor/threads.hpp"
#include "attnlab/train/output_lock.hpp"
#include "attnlab/train/progress.hpp"
#include "attnlab/train/survey.hpp"
#include "attnlab/train/task_survey.hpp"
#include "cli/commands.hpp"
#include "cli/model_options.hpp"

namespace attnlab::cli {
namespace {

// What an earlier survey leaves in its directory (train/survey.hpp), and
// the lock files; and folders holding only those (docs/survey keeps the task
// surveys in recall/ and induction/ inside the language-model survey's).
bool holds_only_survey_files(const std::string& dir) {
  static const std::set<std::string> kSurveyFiles = {"survey.md",
                                                     "survey.csv",
                                                     "val_loss.svg",
                                                     "kv_cache.svg",
                                                     "runs",
                                                     "train_throughput.svg",
                                                     "decode_throughput.svg",
                                                     "loss_per_cache_byte.svg",
                                                     "length.svg",
                                                     "accuracy_sweep.svg",
                                                     "accuracy_by_answer.svg",
                                                     "accuracy_per_cache_byte.svg"};
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (!OutputLock::is_lock_file(entry.path()) &&
        !kSurveyFiles.count(entry.path().filename().string()) &&
        !(entry.is_directory() && holds_only_survey_files(entry.path().string())))
      return false;
  return true;
}

// The flags of --task recall / induction (the language-model survey ignores them).
struct TaskFlags {
  std::string task = "lm";
  std::vector<int64_t> pairs, copy_length;  // the sweeps; empty: the defaults
  std::vector<std::string> variants;
  int64_t vocab = 64, context = 64, batch_size = 32;
  double lr = 3e-3;
};

// The defaults a full task survey runs with, chosen so that the whole sweep
// takes minutes on two cores; --quick cuts it to a smoke test.
void run_task_survey_command(const SurveyOptions& o, const TaskFlags& f, const CLI::App& cmd) {
  TaskSurveyOptions t;
  t.task.kind = task_kind_from_name(f.task);
  t.task.vocab_size = f.vocab;
  t.task.seq_len = f.context;
  const std::vector<int64_t>& given = t.task.kind == TaskKind::kRecall ? f.pairs : f.copy_length;
  ATTN_CHECK((t.task.kind == TaskKind::kRecall ? f.copy_length : f.pairs).empty(),
             "{} goes with --task {}",
             t.task.kind == TaskKind::kRecall ? "--copy-length" : "--pairs",
             t.task.kind == TaskKind::kRecall ? "induction" : "recall");
  t.sizes = given.empty() ? default_task_sizes(t.task.kind) : given;
  std::sort(t.sizes.begin(), t.sizes.end());
  t.sizes.erase(std::unique(t.sizes.begin(), t.sizes.end()), t.sizes.end());
  t.preset = cmd.count("--preset") ? o.preset : "tiny";
  t.train.steps = cmd.count("--steps") ? o.steps : 1500;
  t.train.batch_size = f.batch_size;
  t.train.lr = f.lr;
  t.train.min_lr = f.lr / 10;
  if (o.quick) {
    t.train.steps = std::min<int64_t>(t.train.steps, 40);
    t.train.held_out_sequences = 64;
    if (t.sizes.size() > 2) t.sizes.erase(t.sizes.begin() + 2, t.sizes.end());  // the two easiest
  }
  t.only = f.variants;
  t.experts = o.experts;
  t.top_k = o.top_k;
  t.seeds = o.seeds;
  t.threads = o.threads;
  t.out_dir = o.out_dir;
  t.command_line = o.command_line;
  if (!o.quiet) {
    t.progress = stdout;
    t.interactive = ProgressDisplay::draws_bar(stdout);
  }
  set_num_threads(static_cast<int>(o.threads));
  const auto rows = run_task_survey(t);
  if (!o.quiet)
    fmt::print("wrote {}/survey.md, survey.csv and 3 charts ({} runs)\n", o.out_dir,
               static_cast<int64_t>(rows.size()) * t.seeds);
}

}  // namespace

void add_survey_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<SurveyOptions>();
  auto f = std::make_shared<TaskFlags>();
  o->command_line = command_line;
  o->quiet = false;  // the library is quiet unless asked; the program prints unless --quiet
  CLI::App* cmd = app.add_subcommand(
      "survey", "Train mha, gqa, mqa and mla on the same budget and compare them (table + charts)");
  cmd->add_option("--task", f->task,
                  "What to train on: lm (default: the corpus, validation loss), recall "
                  "(multi-query associative recall) or induction (copy a sequence); see "
                  "docs/guide/10-evals-and-synthetic-tasks.md")
      ->check(CLI::IsMember({"lm", "recall", "induction"}));
  cmd->add_option("--preset", o->preset,
                  "Model preset: tiny, baby or small (default: baby; tiny for the tasks)")
      ->check(CLI::IsMember({"tiny", "baby", "small"}));
  cmd->add_option("--steps", o->steps, "Training steps per run (default 2000; 1500 for the tasks)")
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
  cmd->add_option("-t,--threads", o->threads, "Threads per run (default 0: all cores)")
      ->check(CLI::Range(int64_t{0}, int64_t{1024}));
  cmd->add_option("--pairs", f->pairs,
                  "recall: the numbers of key-value pairs to sweep (default 2,4,8,16)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--copy-length", f->copy_length,
                  "induction: the copied lengths to sweep (default 4,8,16,32)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--vocab", f->vocab,
                  "recall/induction: vocabulary size, filler included (default 64)")
      ->check(CLI::Range(int64_t{3}, int64_t{1} << 24));
  cmd->add_option("--context", f->context, "recall/induction: context length T (default 64)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--batch-size", f->batch_size,
                  "recall/induction: sequences per step (default 32)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--lr", f->lr, "recall/induction: peak learning rate (default 3e-3)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--variants", f->variants,
                  "Only these variants, e.g. mha,mqa or gqa+moe with --experts (default: all)")
      ->delimiter(',');
  cmd->add_option("--out", o->out_dir,
                  "Output directory (default: survey; created with its parents; one holding "
                  "anything but an earlier survey needs --force)");
  auto force = std::make_shared<bool>(false);
  cmd->add_flag("--force", *force,
                "Write into --out even when it holds files attnlab survey did not write");
  cmd->add_flag("--quick", o->quick, "A tiny budget (60 steps) that finishes in about a minute");
  cmd->add_flag("--quiet", o->quiet,
                "Print nothing but errors (else every phase's progress on stdout: a bar on a "
                "terminal, plain lines in a file or a pipe or under mpirun)");
  cmd->callback([o, f, force, cmd] {
    usage_check(!o->top_k || o->experts, "--experts-per-token goes with --experts");
    if (f->task == "lm")
      for (const char* flag :
           {"--pairs", "--copy-length", "--vocab", "--context", "--batch-size", "--lr"})
        ATTN_CHECK(!cmd->count(flag), "{} goes with --task recall or induction", flag);
    else
      ATTN_CHECK(!cmd->count("--data"), "--data goes with --task lm (the tasks make their own)");
    if (o->data_path.empty() && f->task == "lm") o->data_path = default_corpus();
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
    if (f->task != "lm") return run_task_survey_command(*o, *f, *cmd);
    o->only = f->variants;
    o->exe = std::filesystem::read_symlink("/proc/self/exe").string();
    o->interactive = ProgressDisplay::draws_bar(stdout);
    const auto rows = run_survey(*o);
    if (!o->quiet)
      fmt::print("wrote {}/survey.md, survey.csv and 6 charts ({} variants)\n", o->out_dir,
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
    // "generated k/n" on stdout (a pipe to the survey) after each generation.
    const DecodeMeasurement m =
        measure_decode(d->checkpoint, d->prompt_tokens, d->tokens, d->threads, kSurveyDecodeRepeats,
                       [](int64_t done, int64_t n) {
                         fmt::print("generated {}/{}\n", done, n);
                         std::fflush(stdout);
                       });
    nlohmann::json j;
    j["tokens_per_s"] = m.tokens_per_s;
    j["tokens_per_s_spread"] = m.tokens_per_s_spread;
    j["cache_bytes"] = m.cache_bytes;
    write_file_atomically(d->result, j.dump());
  });
}

}  // namespace attnlab::cli
