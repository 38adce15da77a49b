// Training and scoring a language model on a synthetic task
// (synthetic_tasks.hpp). The loss is the cross-entropy at the answer
// positions only (plus the MoE balance loss), so the model is graded on
// recalling and copying, not on guessing filler; the step is the Trainer's
// (AdamW, warmup + cosine, global-norm clipping) on batches drawn from the
// task's training stream in order: every model trained with the same seed
// sees the same sequences in the same order.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "attnlab/models/config.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/train/synthetic_tasks.hpp"

namespace attnlab {

struct TaskTrainOptions {
  int64_t steps = 600;
  int64_t batch_size = 32;
  double lr = 3e-3, min_lr = 3e-4;
  int64_t warmup = 50;
  double weight_decay = 0.1, clip = 1.0;
  uint64_t seed = 1337;              // the model's init and the data order
  int64_t held_out_sequences = 256;  // scored at the end, from the held-out stream
};

struct TaskScore {
  double accuracy = 0;           // argmax = answer, over every answer of the held-out sequences
  double sequence_accuracy = 0;  // sequences with every answer right
  std::vector<double> accuracy_by_answer;  // at answer j (query j of recall, token j of the copy)
  double answer_loss = 0;                  // mean cross-entropy at the answers (nats)
};

struct TaskRunResult {
  TaskScore score;
  std::vector<std::pair<int64_t, double>> loss_curve;  // (step, training answer loss)
  double train_tokens_per_s = 0;                       // median over steps (after the first)
  double train_tokens_per_s_spread = 0;                // half the interquartile range
};

// The answer loss of a batch: ce at its answer rows (+ aux_loss_coef · aux when MoE).
Variable task_loss(LanguageModel& model, const TaskBatch& batch);

// Scores the model on `sequences` held-out sequences (in eval mode, no tape).
TaskScore score_on_task(LanguageModel& model, const SyntheticTask& task, uint64_t seed,
                        int64_t sequences, int64_t batch_size = 32);

// Builds the model from config (init from options.seed), trains it and
// scores it. on_step(step, loss) is called after each step, if given.
TaskRunResult train_on_task(const ModelConfig& config, const SyntheticTask& task,
                            const TaskTrainOptions& options,
                            const std::function<void(int64_t, double)>& on_step = {});

}  // namespace attnlab
