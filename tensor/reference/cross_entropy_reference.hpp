// Cross-entropy in plain loops: the readable twin of tensor/cross_entropy.hpp's
// kernel, held to it by the tests. Over N rows of logits x [N, V] with
// targets y:
//   loss = mean_i (lse_i − x_i,y_i),   lse_i = log Σ_c e^(x_ic)   (= −log softmax)
//   dloss/dx_ic = (softmax(x_i)_c − [c = y_i]) / N
// Double inside.
#pragma once

#include <cstdint>
#include <span>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab::reference {

double cross_entropy_forward(const Tensor& logits, std::span<const int32_t> targets);
// dlogits [N, V] (F64), times `scale` (the loss's incoming gradient).
Tensor cross_entropy_backward(const Tensor& logits, std::span<const int32_t> targets,
                              double scale = 1.0);

}  // namespace attnlab::reference
