// Embedding: a table of V learned vectors of width D, looked up by token id.
#pragma once

#include <cstdint>
#include <span>

#include "attnlab/nn/module.hpp"

namespace attnlab {

class Embedding : public Module {
 public:
  // weight [V, D] ~ normal(0, init_std)
  Embedding(int64_t vocab_size, int64_t dim, DType dtype, Rng& rng, double init_std = 0.02);

  // ids laid out as ids_shape (e.g. (B, T)) → (..ids_shape, D). Backward adds
  // each position's gradient into its token's row (a token seen twice gets both).
  Variable forward(std::span<const int32_t> ids, const Shape& ids_shape) const;

  int64_t vocab_size() const { return weight_.size(0); }
  int64_t dim() const { return weight_.size(1); }
  const Variable& weight() const { return weight_; }

 private:
  const Variable& weight_;
};

}  // namespace attnlab
