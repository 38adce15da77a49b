// Everything that defines a training run, besides the model config. Written
// into every checkpoint of the run (metadata key `train.settings`) so that
// `attnlab train --resume RUN_DIR` continues with the run's own settings.
//
// The defaults are nanoGPT's baby CPU recipe for tiny-shakespeare: batch 12,
// T = 64, AdamW (β 0.9/0.99, ε 1e-8, weight decay 0.1 on matrices), lr 1e-3
// with 100 warmup steps and cosine decay to 1e-4, clip 1.0, no dropout, 2000
// steps.
#pragma once

#include <cstdint>
#include <string>

namespace attnlab {

struct TrainSettings {
  std::string data_path;    // the corpus (UTF-8 text)
  int64_t steps = 2000;     // the run's total number of optimizer steps
  int64_t batch_size = 12;  // sequences per micro-batch
  int64_t seq_len = 0;      // T; 0 = the model's max_seq_len
  double lr = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup = 100;
  int64_t decay_steps = 0;  // where the cosine reaches min_lr; 0: resolved_decay_steps()
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double eps = 1e-8;
  double clip = 1.0;         // global gradient norm cap; 0 = no clipping
  int64_t accum = 1;         // micro-batches per optimizer step
  int64_t eval_every = 250;  // steps between evaluations (and checkpoints); 0 = only at the end
  int64_t eval_batches = 100;
  double dropout = 0.0;
  uint64_t seed = 1337;
  int64_t threads = 0;  // 0 = all cores

  // decay_steps, or steps when it is 0 (a new run fixes it then, so that a
  // resume with more --steps keeps the schedule).
  int64_t resolved_decay_steps() const { return decay_steps > 0 ? decay_steps : steps; }
  // Throws an Error naming the setting when a value is out of range.
  void validate() const;
  std::string to_json() const;
  static TrainSettings from_json(const std::string& json, const std::string& what);
};

}  // namespace attnlab
