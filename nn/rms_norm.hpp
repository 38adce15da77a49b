// RMSNorm (Zhang & Sennrich, 2019): rescales each vector to unit root mean
// square, then by a learned gain; unlike LayerNorm it neither centres nor
// adds a bias:
//     y = x / sqrt(mean(x², last axis) + eps) · weight
#pragma once

#include <cstdint>

#include "attnlab/nn/module.hpp"

namespace attnlab {

class RMSNorm : public Module {
 public:
  // weight [dim] = 1
  RMSNorm(int64_t dim, double eps, DType dtype);

  // x is (..., dim) → (..., dim); one fused op, forward and backward.
  Variable forward(const Variable& x) const;

  double eps() const { return eps_; }
  const Variable& weight() const { return weight_; }

 private:
  const Variable& weight_;
  double eps_;
};

}  // namespace attnlab
