#include "attnlab/train/lr_schedule.hpp"

#include <cmath>
#include <numbers>

namespace attnlab {

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / (warmup_steps + 1);
  if (step > decay_steps || decay_steps <= warmup_steps) return min_lr;
  const double r = static_cast<double>(step - warmup_steps) / (decay_steps - warmup_steps);
  return min_lr + 0.5 * (1.0 + std::cos(std::numbers::pi * r)) * (lr - min_lr);
}

}  // namespace attnlab
