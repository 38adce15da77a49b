// Linear: y = x · Wᵀ (+ b), the weight stored PyTorch-style as [out, in].
#pragma once

#include <cstdint>

#include "attnlab/nn/module.hpp"

namespace attnlab {

class Linear : public Module {
 public:
  // weight [out, in] ~ normal(0, init_std); bias [out] = 0 when `bias`.
  Linear(int64_t in_features, int64_t out_features, bool bias, DType dtype, Rng& rng,
         double init_std = 0.02);

  // x is (..., in) → (..., out)
  Variable forward(const Variable& x) const;

  int64_t in_features() const { return weight_.size(1); }
  int64_t out_features() const { return weight_.size(0); }
  const Variable& weight() const { return weight_; }
  bool has_bias() const { return bias_ != nullptr; }
  const Variable& bias() const;  // throws when there is none

 private:
  const Variable& weight_;
  const Variable* bias_ = nullptr;
};

}  // namespace attnlab
