// The learning-rate schedule of nanoGPT: linear warmup, then cosine decay to a
// floor, then the floor.
//   step < warmup:         lr · (step + 1) / (warmup + 1)
//   warmup ≤ step ≤ decay: min_lr + ½(1 + cos(π·r))·(lr − min_lr),
//                          r = (step − warmup) / (decay − warmup)
//   step > decay:          min_lr
#pragma once

#include <cstdint>

namespace attnlab {

struct LrSchedule {
  double lr = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup_steps = 100;
  int64_t decay_steps = 2000;  // the step at which the floor is reached

  double at(int64_t step) const;  // step counts from 0
};

}  // namespace attnlab
