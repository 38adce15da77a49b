// The training step, as a learner would write it, and the evaluation:
//
//   for each of `accum` micro-batches:
//       loss = model.loss(batch) / accum;  loss.backward()   (gradients add up)
//   norm = clip_grad_norm(params, clip)
//   adamw.step(lr_schedule(step));  zero_grad()
//
// A Trainer owns the optimizer and the batch sampler, and holds everything a
// checkpoint needs to continue the run exactly (TrainerState).
#pragma once

#include <memory>
#include <optional>

#include "attnlab/models/language_model.hpp"
#include "attnlab/train/adamw.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/lr_schedule.hpp"
#include "attnlab/train/train_settings.hpp"

namespace attnlab {

struct StepResult {
  int64_t step = 0;  // the number of optimizer steps done, this one included
  double loss = 0;   // mean over the micro-batches of the total loss
  double ce = 0;     // … of the cross-entropy
  double aux = 0;    // … of the unweighted aux loss
  double lr = 0;
  double grad_norm = 0;  // before clipping
  int64_t tokens = 0;    // tokens processed by this step
};

// The part of a run's state that is not the model's weights.
struct TrainerState {
  int64_t step = 0;
  Rng::State sampler{};
  Rng::State dropout{};
  std::vector<Tensor> adam_m, adam_v;
};

class Trainer {
 public:
  // seq_len: the settings' value, or the model's max_seq_len when that is 0.
  Trainer(LanguageModel& model, const TrainingData& data, const TrainSettings& settings);

  // One optimizer step. Refuses (Error) a non-finite loss without touching the
  // weights, so the last checkpoint stays the last good state.
  StepResult step();
  // Mean loss (cross-entropy) over the fixed evaluation batches of a split.
  double evaluate(Split split);

  int64_t steps_done() const { return optimizer_.steps_taken(); }
  int64_t seq_len() const { return seq_len_; }
  const LrSchedule& schedule() const { return schedule_; }
  TrainerState state() const;
  void load_state(const TrainerState& state);
  const AdamW& optimizer() const { return optimizer_; }

 private:
  LanguageModel& model_;
  const TrainingData& data_;
  TrainSettings settings_;
  int64_t seq_len_;
  LrSchedule schedule_;
  AdamW optimizer_;
  std::vector<std::pair<std::string, Variable>> params_;
  BatchSampler sampler_;
  Batch batch_;
  std::vector<Batch> eval_sets_[2];  // built on first use, then reused
};

}  // namespace attnlab
