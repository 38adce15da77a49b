// Global-norm gradient clipping: when ‖g‖₂ over all parameters together
// exceeds max_norm, every gradient is scaled by max_norm / ‖g‖₂, so the
// direction of the step is kept and only its length is capped.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "attnlab/autograd/variable.hpp"

namespace attnlab {

// The global norm of the gradients (those that exist), before clipping.
double global_grad_norm(const std::vector<std::pair<std::string, Variable>>& params);

// Clips in place when max_norm > 0; returns the norm before clipping.
double clip_grad_norm(std::vector<std::pair<std::string, Variable>>& params, double max_norm);

}  // namespace attnlab
