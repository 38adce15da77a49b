// A whole training run in a run directory, as `attnlab train` does it:
//
//   RUN_DIR/last.safetensors   the latest state: weights, AdamW moments
//                              (optim.m.*, optim.v.*), step, sampler position,
//                              settings, tokenizer (metadata train.*, tokenizer)
//   RUN_DIR/best.safetensors   the weights with the best validation loss so far
//   RUN_DIR/metrics.csv        one row per step (see metrics.hpp), appended
//                              and flushed as each step ends
//   RUN_DIR/settings.json      the settings and model config, for a reader
//                              (written when the run starts or resumes)
//
// Checkpoints are written at every evaluation, every RunControl::save_every
// steps (or, by default, once a few minutes have passed since the last), when
// the caller asks the run to stop, and at the end, each atomically
// (temporary file, fsync, rename), so a run killed at any moment leaves the
// last complete checkpoint behind, and `resume` continues exactly from it:
// a run of 2N steps and a run of N steps resumed to 2N end with the same bits.
// The order is best, metrics.csv, last: a kill between two of them leaves
// files that are ahead of last (a resume ignores their extra rows), never
// behind it. A kill in the middle of a write leaves only its temporary,
// `<name>.tmp.<pid>.<n>`, which `attnlab train` removes when it next starts
// in the directory (tests/cli/kill_test.cpp kills a run 50 times to check).
//
// One process writes a run directory at a time: `attnlab train` holds an
// OutputLock on it (output_lock.hpp) around start_run and resume_run, so the
// check that the directory holds no run yet and the run's first file are one
// step for other writers. A program calling these itself takes it the same way.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

#include "attnlab/models/config.hpp"
#include "attnlab/train/communicator.hpp"
#include "attnlab/train/train_settings.hpp"

namespace attnlab {

struct NewRun {
  ModelConfig config;  // vocab_size at least the corpus's
  TrainSettings settings;
  std::string out_dir;
  // When set, a training checkpoint whose weights the run starts from
  // (fine-tuning): its config replaces `config` and its tokenizer encodes the
  // corpus; the optimizer, the schedule and the batch order start afresh.
  std::string init_from = {};
};

// What a resumed run may change: its length, its schedule and how often it
// evaluates. A resume that changes nothing continues bit-exactly.
struct ResumeChanges {
  std::optional<int64_t> steps = {};        // the new total
  std::optional<int64_t> decay_steps = {};  // 0: the new total
  std::optional<int64_t> warmup = {}, eval_every = {};
  std::optional<double> lr = {}, min_lr = {};
};

struct RunSummary {
  int64_t steps = 0;
  double val_loss = 0;  // at the last evaluation
  double best_val_loss = 0;
  double val_bits_per_byte = 0;      // of val_loss
  double elapsed_s = 0;              // training time over the whole run, resumed parts included
  int ranks = 1;                     // the processes that trained it (this session)
  int64_t session_steps = 0;         // the steps of this session
  double step_seconds = 0;           // this session's steps, evaluations excluded
  double communication_seconds = 0;  // of which this rank spent in collectives
  bool stopped = false;              // stopped early at RunControl::stop
};

// What a run prints, and where: nothing unless the caller asks (quiet =
// false, as the attnlab program does, to stdout); the run's files are written
// either way.
struct RunOutput {
  bool interactive = false;    // redraw a progress bar (a terminal) or print plain lines
  bool quiet = true;           // print nothing
  std::FILE* stream = stderr;  // where the progress and evaluations go
};

// How the caller stops a run early and how often it saves. The library never
// installs a signal handler: `attnlab train` sets `stop` from its own.
struct RunControl {
  // Read between steps: once true, the run finishes the step in progress
  // (with its evaluation, if one is due), writes last.safetensors and returns
  // with RunSummary::stopped. A resume then continues exactly. With several
  // ranks, one rank's request stops them all at the same step.
  const std::atomic<bool>* stop = nullptr;
  // Also write last.safetensors every this many steps; 0: whenever
  // save_interval_s seconds have passed since the last write (0: never).
  // Evaluations always write it. Saving never changes the run's bits. With
  // several ranks, rank 0's clock times the saves.
  int64_t save_every = 0;
  double save_interval_s = 300;
};

// Trains a new model. Refuses an out_dir that already holds a run.
// ranks: the processes that train it together (data-parallel, see
// data_parallel.hpp), each calling this with the same arguments; rank 0
// prints and writes the run directory. nullptr: this process alone.
// The ranks must agree on the settings, the model and the data (each reads
// data_path itself, so it may be another path to the same file on another
// machine): ranks that differ are refused (ErrorOnEveryRank).
// control: a stop request and the save interval (the ranks agree on both
// after every step, so all stop and save at the same step).
RunSummary start_run(const NewRun& run, const RunOutput& output = {}, Communicator* ranks = nullptr,
                     const RunControl& control = {});
// Continues the run in out_dir with its settings, changed as asked (default:
// up to its own --steps), on any number of ranks (the checkpoint holds the
// whole optimizer state); every rank reads out_dir's last.safetensors. Steps
// past the schedule's decay horizon run at min_lr: unless the changes move
// the horizon, a warning says so (stderr).
RunSummary resume_run(const std::string& out_dir, const ResumeChanges& changes = {},
                      const RunOutput& output = {}, Communicator* ranks = nullptr,
                      const RunControl& control = {});

// The vocabulary a new run of this corpus needs (for presets: V from the corpus).
int64_t corpus_vocab_size(const std::string& data_path);

}  // namespace attnlab
