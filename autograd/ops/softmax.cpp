// Softmax and log-softmax over the last axis. Both keep only their output y
// for backward, which is all their derivatives need.
#include "attnlab/autograd/ops.hpp"

namespace attnlab {

// dx = y ⊙ (g − Σ g·y)
Variable softmax(const Variable& x) {
  Tensor y = attnlab::softmax(x.value());
  return record("softmax", y, {x},
                [x, y](const Tensor& g) { accumulate_grad(x, softmax_backward(y, g)); });
}

// dx = g − exp(y) · Σ g
Variable log_softmax(const Variable& x) {
  Tensor y = attnlab::log_softmax(x.value());
  return record("log_softmax", y, {x},
                [x, y](const Tensor& g) { accumulate_grad(x, log_softmax_backward(y, g)); });
}

}  // namespace attnlab
