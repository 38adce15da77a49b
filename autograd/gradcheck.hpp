// gradcheck: is an op's backward the derivative of its forward?
//
// For a function f of some f64 tensors, it compares the analytic gradient
// (one backward() pass) with central finite differences,
//     ∂s/∂x_i ≈ (s(x + ε e_i) − s(x − ε e_i)) / 2ε,
// of the scalar s = Σ f(x) ⊙ R, where R is a fixed random tensor shaped like
// f(x). Projecting on a random R checks the whole Jacobian at once (a wrong
// entry shows up with probability 1) for the cost of one backward pass and
// two forward passes per input element. As PyTorch's gradcheck, it works in
// double precision (ε = 1e-6), where the truncation and rounding errors of
// central differences are far below the tolerance.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "attnlab/autograd/variable.hpp"

namespace attnlab {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;  // pass when |analytic − numeric| ≤ atol + rtol · |numeric|
  double rtol = 1e-3;
  uint64_t seed = 0;  // of the projection R
};

struct GradcheckResult {
  bool ok = true;
  double worst_error = 0;  // largest |analytic − numeric| / (atol + rtol · |numeric|)
  int input = -1;          // where it was
  int64_t element = -1;    // (row-major index into that input)
  double analytic = 0, numeric = 0;
  std::vector<std::string> ops;  // the ops f recorded (the suite's coverage list)
  std::string message;           // a readable summary
};

// inputs must be f64; each becomes a leaf Variable that requires a gradient.
GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opts = {});

// The op names seen by every gradcheck that passed in this process (for the
// suite's check that each op of differentiable_ops() was covered).
const std::vector<std::string>& gradchecked_ops();

}  // namespace attnlab
