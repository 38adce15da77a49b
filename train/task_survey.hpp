// The synthetic-task survey (`attnlab survey --task recall|induction`): every
// attention variant trained on the same task, budget, seeds and data order,
// at each setting of one difficulty axis (recall: the number of key–value
// pairs; induction: the copied length), then scored on held-out sequences.
// In-process (a run is seconds to a minute of the tiny preset). Writes:
//   survey.md, survey.csv      a row per variant and setting: accuracy (mean
//                              ± std over seeds), exact sequences, answer loss,
//                              KV cache bytes per token, throughput
//   accuracy_sweep.svg         accuracy against difficulty, one line per variant
//   accuracy_by_answer.svg     accuracy at each answer (query j) at one setting
//   accuracy_per_cache_byte.svg  accuracy against KV-cache bytes per token
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "attnlab/train/synthetic_tasks.hpp"
#include "attnlab/train/task_training.hpp"

namespace attnlab {

struct TaskSurveyOptions {
  SyntheticTask task;          // kind, vocab and context; task.size is unused
  std::vector<int64_t> sizes;  // the difficulty sweep (pairs / copied length), ascending
  std::string preset = "tiny";
  TaskTrainOptions train;  // steps, batch, lr; the seed is 1337 + s for seed s
  std::optional<int64_t> experts, top_k;
  std::vector<std::string> only;  // train only these variants ("mha", "mqa+moe", …); empty: all
  int64_t seeds = 1;
  int64_t threads = 0;  // as shown in the report (the caller sets the pool)
  std::string out_dir = "survey";
  std::string command_line;
  // Progress, when given a stream: on a terminal (interactive) one bar over
  // the whole sweep, redrawn; otherwise a plain line every fifth of a run. A
  // line per finished run either way.
  std::FILE* progress = nullptr;
  bool interactive = false;
};

struct TaskSurveyRow {
  std::string variant;
  int64_t size = 0;  // the setting of the difficulty axis
  int64_t runs = 0;
  double accuracy = 0, accuracy_spread = 0;
  double sequence_accuracy = 0;
  double answer_loss = 0;
  std::vector<double> accuracy_by_answer;  // mean over seeds
  int64_t kv_bytes_per_token = 0, attention_params = 0, total_params = 0;
  double train_tokens_per_s = 0, train_tokens_per_s_spread = 0;  // median, ± half the IQR
};

// Default sweeps (they fit the default vocabulary 64 and context 64): recall
// 2, 4, 8, 16 pairs; induction 4, 8, 16, 32 tokens.
std::vector<int64_t> default_task_sizes(TaskKind kind);

std::vector<TaskSurveyRow> run_task_survey(const TaskSurveyOptions& options);

}  // namespace attnlab
