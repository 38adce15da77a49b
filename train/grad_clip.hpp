// Global-norm gradient clipping: when ‖g‖₂ over all parameters together
// exceeds max_norm, every gradient is scaled by max_norm / ‖g‖₂, so the
// direction of the step is kept and only its length is capped.
//
// The norm is √(Σ_p Σ g_p²): each parameter's sum of squares (0 for one
// without a gradient), added in parameter order. Ranks that each hold some
// of the parameters (data_parallel.hpp) gather those pieces and add them in
// the same order, so the norm has the same bits whatever the number of ranks.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "attnlab/autograd/variable.hpp"

namespace attnlab {

using NamedParameterList = std::vector<std::pair<std::string, Variable>>;

// Σ g² of each parameter's gradient (0 when it has none), in order.
std::vector<double> gradient_sums_of_squares(const NamedParameterList& params);
// √ of the pieces added in order.
double global_norm_of(std::span<const double> pieces);
// The global norm of the gradients (those that exist), before clipping.
double global_grad_norm(const NamedParameterList& params);

// Scales the gradients by max_norm / norm when max_norm > 0 and their global
// norm, `norm`, exceeds it.
void clip_to_norm(NamedParameterList& params, double norm, double max_norm);
// Both: clips in place when max_norm > 0; returns the norm before clipping.
double clip_grad_norm(NamedParameterList& params, double max_norm);

}  // namespace attnlab
