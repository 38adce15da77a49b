// The training step, as a learner would write it, and the evaluation:
//
//   for each of `accum` micro-batches i:
//       loss_i = model.loss(batch_i) / accum;  loss_i.backward()
//   g = Σ_i ∇loss_i, added in the canonical tree order (canonical_sum.hpp)
//   norm = ‖g‖₂;  clip g to --clip
//   adamw.step(lr_schedule(step));  zero_grad()
//
// On several processes (ranks, data_parallel.hpp) each computes its share of
// the micro-batches and updates its shard of the parameters; the bits are
// those of one process. A Trainer owns the optimizer and the batch sampler,
// and holds everything a checkpoint needs to continue the run exactly
// (TrainerState).
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "attnlab/models/language_model.hpp"
#include "attnlab/train/adamw.hpp"
#include "attnlab/train/communicator.hpp"
#include "attnlab/train/data_parallel.hpp"
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
  double grad_norm = 0;              // before clipping
  int64_t tokens = 0;                // tokens processed by this step, by every rank
  double seconds_communicating = 0;  // of this rank, in this step
};

// The part of a run's state that is not the model's weights. The moments are
// those of every parameter, in named_parameters() order (on rank 0 only, when
// Trainer::state() gathers them from several ranks).
struct TrainerState {
  int64_t step = 0;
  Rng::State sampler{};
  Rng::State dropout{};
  std::vector<Tensor> adam_m, adam_v;
};

class Trainer {
 public:
  // seq_len: ModelConfig::resolve_seq_len of the settings' value.
  // ranks: the processes that train together, each with its own Trainer of
  // the same model, data and settings; nullptr: this process alone.
  Trainer(LanguageModel& model, const TrainingData& data, const TrainSettings& settings,
          Communicator* ranks = nullptr);

  // One optimizer step. Refuses (ErrorOnEveryRank) a non-finite loss without
  // touching the weights, so the last checkpoint stays the last good state.
  StepResult step();
  // Mean loss (cross-entropy) over the fixed evaluation batches of a split
  // (dealt to the ranks; the losses added in batch order).
  // on_batch(done, total): after each batch of this rank's share, for a
  // progress display (the caller's; the library prints nothing).
  double evaluate(Split split,
                  const std::function<void(int64_t done, int64_t total)>& on_batch = {});

  int64_t steps_done() const { return optimizer_.steps_taken(); }
  int64_t seq_len() const { return seq_len_; }
  const LrSchedule& schedule() const { return schedule_; }
  // Collective: every rank calls it; rank 0 gets the moments of every parameter.
  TrainerState state();
  // The state of every parameter (from a checkpoint, written by any number of ranks).
  void load_state(const TrainerState& state);
  Communicator& ranks() { return parallel_.ranks(); }

 private:
  LanguageModel& model_;
  std::unique_ptr<SingleProcess> alone_;  // the ranks when none are given
  DataParallel parallel_;
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
