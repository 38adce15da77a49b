// attnlab train: train a model from a preset or a config on a corpus, into a
// run directory; or continue a stopped run exactly with --resume.
#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <optional>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/memory_estimate.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/train/communicator.hpp"
#include "attnlab/train/data_parallel.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/output_lock.hpp"
#include "attnlab/train/progress.hpp"
#include "attnlab/train/training_run.hpp"
#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "cli/stop_signal.hpp"
#include "cli/validators.hpp"

namespace attnlab::cli {
namespace {

struct TrainOptions {
  ModelOptions model;
  TrainSettings settings;
  std::string out;
  std::string resume;
  std::string init_from;
  int64_t save_every = 0;
  bool quiet = false;
};

// The vocabulary of a corpus, a refusal naming the file.
int64_t vocab_size_of(const std::string& data_path) {
  try {
    return corpus_vocab_size(data_path);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", data_path, e.what()));
  }
}

// `path` as a shell word: as it is when it holds only safe characters, else in
// single quotes (each ' written as '\'').
std::string shell_quoted(const std::string& path) {
  const bool safe = !path.empty() && path.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_-./+=:@,%") == std::string::npos;
  if (safe) return path;
  std::string out = "'";
  for (char c : path) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Refuses, before anything is allocated, a run that does not fit in memory.
void check_training_memory(const ModelConfig& config, const TrainSettings& s) {
  std::error_code ec;
  const auto corpus_bytes = std::filesystem::file_size(s.data_path, ec);
  const int64_t seq_len = config.resolve_seq_len(s.seq_len);
  check_memory_fits(
      estimate_training_memory(config, s.batch_size, seq_len, s.dropout,
                               ec ? 0 : static_cast<int64_t>(corpus_bytes), s.eval_batches),
      "this training run",
      "choose a smaller model, --batch-size or --seq-len (attnlab info shows the "
      "estimate)");
}

// The same for a run to resume, from its last checkpoint's config and settings
// (metadata "config" and "train.settings", see train/training_run.cpp). A
// checkpoint that cannot be read this way is left to resume_run to refuse.
void check_resume_memory(const std::string& run_dir) {
  ModelConfig config;
  TrainSettings settings;
  try {
    const std::string last = (std::filesystem::path(run_dir) / "last.safetensors").string();
    if (!std::filesystem::is_regular_file(last)) return;
    const SafetensorsFile file = read_safetensors(last);
    const auto c = file.metadata.find("config"), t = file.metadata.find("train.settings");
    if (c == file.metadata.end() || t == file.metadata.end()) return;
    config = config_from_json(c->second, last);
    settings = TrainSettings::from_json(t->second, last);
  } catch (const Error&) {
    return;
  }
  check_training_memory(config, settings);
}

// A run killed while writing a file (SIGKILL, a power cut) leaves its
// temporary behind: `<name>.tmp.<pid>.<n>` beside last.safetensors,
// best.safetensors, metrics.csv or settings.json (models/atomic_file.hpp). Such a file is
// never taken for a checkpoint (its name does not end in .safetensors); a new
// run in the directory, or a resumed one, removes those whose writer is no
// longer running, so they do not pile up.
// The writer's pid when `file` is a temporary `<name>.tmp.<pid>.<n>` of one of
// a run's files (last.safetensors, best.safetensors, metrics.csv, settings.json).
std::optional<long> temporary_writer(const std::string& file) {
  auto digits = [](const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  for (const char* name :
       {"last.safetensors", "best.safetensors", "metrics.csv", "settings.json"}) {
    const std::string prefix = std::string(name) + ".tmp.";
    if (file.rfind(prefix, 0) != 0) continue;
    const std::string rest = file.substr(prefix.size());  // "<pid>.<n>"
    const size_t dot = rest.find('.');
    if (dot == std::string::npos || !digits(rest.substr(0, dot)) || !digits(rest.substr(dot + 1)))
      return std::nullopt;
    return std::strtol(rest.substr(0, dot).c_str(), nullptr, 10);
  }
  return std::nullopt;
}

void remove_stale_temporaries(const std::string& run_dir) {
  std::error_code ec;
  try {  // best effort: a directory that cannot be listed is left as it is
    for (const auto& entry : std::filesystem::directory_iterator(run_dir, ec)) {
      const std::optional<long> pid = temporary_writer(entry.path().filename().string());
      if (!pid) continue;
      const bool writer_gone =
          *pid <= 0 || (::kill(static_cast<pid_t>(*pid), 0) != 0 && errno == ESRCH);
      if (writer_gone) std::filesystem::remove(entry.path(), ec);
    }
  } catch (const std::filesystem::filesystem_error&) {
  }
}

// The fingerprint of the running program's file, which every rank of a
// data-parallel run must share (0 when it cannot be read: then only the
// settings and data are compared).
uint64_t program_fingerprint() {
  try {
    return fingerprint(read_text_file("/proc/self/exe"));
  } catch (const Error&) {
    return 0;
  }
}

void train(CLI::App& cmd, TrainOptions& o, Communicator& ranks) {
  // Progress and evaluations on stdout (survey reads them from its runs);
  // warnings, errors and the interrupt's resume command on stderr.
  RunOutput output{
      .interactive = ProgressDisplay::draws_bar(stdout), .quiet = o.quiet, .stream = stdout};
  // Ctrl-C or SIGTERM: the step in progress ends, last.safetensors is written,
  // and the run stops with the command that continues it.
  const StopOnSignal stop;
  const RunControl control{.stop = stop.flag(), .save_every = o.save_every};
  const std::string run_dir = o.resume.empty() ? o.out : o.resume;
  RunSummary summary;
  if (ranks.size() > 1) check_ranks_agree(ranks, {{"attnlab program", program_fingerprint()}});
  if (!o.resume.empty()) {
    // A resumed run keeps its model, data and optimizer settings; its length
    // and schedule may change.
    for (const char* flag :
         {"--preset", "--config", "--attention", "--experts", "--experts-per-token", "--top-k",
          "--shared-experts", "--data", "--batch-size", "--seq-len", "--weight-decay", "--clip",
          "--accum", "--eval-batches", "--dropout", "--seed", "--out", "--init-from"})
      usage_check(cmd.count(flag) == 0,
                  "{} cannot be changed on --resume: a resumed run keeps its model, data and "
                  "optimizer (--steps, --decay-steps, --lr, --min-lr, --warmup, --eval-every, "
                  "--save-every and --threads may be given)",
                  flag);
    ResumeChanges changes;
    auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
    if (given("--steps")) changes.steps = o.settings.steps;
    if (given("--decay-steps")) changes.decay_steps = o.settings.decay_steps;
    if (given("--warmup")) changes.warmup = o.settings.warmup;
    if (given("--eval-every")) changes.eval_every = o.settings.eval_every;
    if (given("--lr")) changes.lr = o.settings.lr;
    if (given("--min-lr")) changes.min_lr = o.settings.min_lr;
    // One writer per run directory (train/output_lock.hpp), from before the
    // first read of the state it continues; a missing one is resume_run's to
    // refuse. Under mpirun, rank 0 is the writer.
    std::optional<OutputLock> lock;
    if (ranks.is_root() && std::filesystem::is_directory(o.resume))
      lock.emplace(OutputLock::directory(o.resume));
    if (ranks.is_root()) remove_stale_temporaries(o.resume);
    check_resume_memory(o.resume);
    summary = resume_run(o.resume, changes, output, &ranks, control);
  } else {
    usage_check(!o.out.empty(), "train needs --out RUN_DIR (or --resume RUN_DIR)");
    NewRun run;
    run.settings = o.settings;
    try {  // a new run's settings are its flags (or their defaults)
      run.settings.validate();
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
    if (run.settings.data_path.empty()) run.settings.data_path = default_corpus();
    run.out_dir = o.out;
    if (!o.init_from.empty()) {
      // The model is the checkpoint's: flags that choose one contradict it.
      for (const char* flag : {"--preset", "--config", "--attention", "--experts",
                               "--experts-per-token", "--top-k", "--shared-experts"})
        usage_check(cmd.count(flag) == 0,
                    "{} goes with a new model; --init-from {} trains the checkpoint's own", flag,
                    o.init_from);
      run.init_from = o.init_from;
      run.config = read_checkpoint(o.init_from).config;
    } else {
      ModelOptions model = o.model;
      if (!model.given()) model.preset = "baby";
      run.config = model.resolve(vocab_size_of(run.settings.data_path));
    }
    check_training_memory(run.config, run.settings);
    // Taken before start_run checks that the directory holds no run yet, so
    // that check and the run's first file are one step for other writers.
    // Under mpirun, rank 0 is the writer.
    std::optional<OutputLock> lock;
    if (ranks.is_root()) {
      lock.emplace(OutputLock::directory(o.out));
      remove_stale_temporaries(o.out);
    }
    summary = start_run(run, output, &ranks, control);
  }
  if (summary.stopped) {
    if (ranks.is_root())
      fmt::print(stderr,
                 "attnlab: interrupted: {} holds step {}; continue with: attnlab train --resume "
                 "{}\n",
                 (std::filesystem::path(run_dir) / "last.safetensors").string(), summary.steps,
                 shell_quoted(run_dir));
    throw ExitStatus{kExitInterrupted};
  }
  if (o.quiet || !ranks.is_root()) return;
  fmt::print("done: {} steps in {}, val loss {:.4f} ({:.4f} bits/byte), best {:.4f}\n",
             summary.steps, ProgressDisplay::format_duration(summary.elapsed_s), summary.val_loss,
             summary.val_bits_per_byte, summary.best_val_loss);
  if (summary.ranks > 1 && summary.step_seconds > 0)
    fmt::print(
        "data-parallel on {} processes: rank 0 spent {:.1f}% of its step time in "
        "collectives ({:.1f} ms per step)\n",
        summary.ranks, 100 * summary.communication_seconds / summary.step_seconds,
        1e3 * summary.communication_seconds / std::max<double>(1, summary.session_steps));
}

// Under mpirun, one of several ranks (train/communicator.hpp): an error that
// only this rank met ends every rank at once, with this rank's message, so
// that none waits for it forever. An error that every rank met together
// (ErrorOnEveryRank) is reported by rank 0 alone, here (main() prints the others).
void run_train(CLI::App& cmd, TrainOptions& o) {
  const std::unique_ptr<Communicator> ranks = connect_ranks();
  try {
    train(cmd, o, *ranks);
  } catch (const ErrorOnEveryRank& e) {
    // Said before MPI is finalized: the quiet ranks end once rank 0 got there.
    if (e.report()) {
      std::fprintf(stderr, "attnlab: error: %s\n", e.what());
      std::fflush(stderr);
    }
    throw ErrorOnEveryRank(e.what(), false);
  } catch (const std::exception& e) {
    if (ranks->size() == 1) throw;
    if (ranks->is_root())
      std::fprintf(stderr, "attnlab: error: %s\n", e.what());
    else
      std::fprintf(stderr, "attnlab: error: rank %d of %d: %s\n", ranks->rank(), ranks->size(),
                   e.what());
    std::fflush(stderr);
    ranks->abort(1);
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  TrainSettings& s = o->settings;
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a model (default: the baby preset on the bundled tiny-shakespeare)");
  o->model.add_to(*cmd);
  cmd->add_option("--data", s.data_path,
                  "A DATA_DIR written by attnlab tokenize, or a corpus file of UTF-8 text "
                  "tokenized by characters (default: bundled tiny-shakespeare)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--steps", s.steps, "Total optimizer steps of the run (default 2000)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--batch-size", s.batch_size, "Sequences per micro-batch (default 12)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--seq-len", s.seq_len,
                  "Tokens per sequence, T (default: the model's max_seq_len)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--lr", s.lr, "Peak learning rate (default 1e-3)")->check(kPositiveNumber);
  cmd->add_option("--min-lr", s.min_lr,
                  "Learning rate at the end of the cosine decay (default 1e-4)")
      ->check(kNonNegativeNumber);
  cmd->add_option("--warmup", s.warmup, "Linear warmup steps (default 100)")
      ->check(kNonNegativeNumber);
  cmd->add_option(
         "--decay-steps", s.decay_steps,
         "Step where the cosine decay reaches --min-lr (default: --steps of the new run; on "
         "--resume, 0 is the new --steps)")
      ->check(kNonNegativeNumber);
  cmd->add_option("--weight-decay", s.weight_decay, "AdamW weight decay on matrices (default 0.1)")
      ->check(kNonNegativeNumber);
  cmd->add_option("--clip", s.clip, "Clip the global gradient norm to this (default 1.0; 0: off)")
      ->check(kNonNegativeNumber);
  cmd->add_option("--accum", s.accum,
                  "Micro-batches per optimizer step (default 1); under mpirun -np N, a multiple "
                  "of N, dealt to the N processes (the bits do not depend on N)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--eval-every", s.eval_every,
                  "Steps between evaluations and checkpoints (default 250; 0: only at the end)")
      ->check(kNonNegativeNumber);
  cmd->add_option("--eval-batches", s.eval_batches,
                  "Validation batches per evaluation (default 100)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--dropout", s.dropout,
                  "Dropout on attention probabilities and residual branches (default 0)")
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--seed", s.seed, "Seed of the init and of the batch order (default 1337)")
      ->check(kSeed);
  cmd->add_option("-t,--threads", s.threads,
                  "Threads (default 0: all cores or one, whichever trains faster, measured as it "
                  "goes)")
      ->check(CLI::Range(int64_t{0}, int64_t{1024}));
  cmd->add_option("--out", o->out, "Run directory: checkpoints and metrics.csv");
  cmd->add_option("--resume", o->resume,
                  "Continue the run in this directory exactly where it stopped (--steps: the new "
                  "total; --decay-steps, --lr, --min-lr, --warmup, --eval-every may change too)");
  cmd->add_option("--init-from", o->init_from,
                  "Start a new run (new data, schedule and optimizer) from this training "
                  "checkpoint's weights, config and tokenizer: fine-tuning")
      ->check(CLI::ExistingFile);
  cmd->add_option("--save-every", o->save_every,
                  "Also write last.safetensors every N steps (default 0: once 5 minutes have "
                  "passed since the last write; every evaluation writes it too). Ctrl-C or "
                  "SIGTERM ends the step in progress, writes it and exits 130; a second Ctrl-C "
                  "aborts at once")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_flag("--quiet", o->quiet,
                "Print nothing but errors (else progress on stdout: a bar on a terminal, plain "
                "lines in a file or a pipe or under mpirun)");
  cmd->callback([cmd, o] { run_train(*cmd, *o); });
}

}  // namespace attnlab::cli
