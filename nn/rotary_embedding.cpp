#include "attnlab/nn/rotary_embedding.hpp"

#include <cmath>

#include "attnlab/autograd/ops.hpp"

namespace attnlab {

RotaryEmbedding::RotaryEmbedding(int64_t rotary_dims, double theta)
    : rotary_dims_(rotary_dims), theta_(theta) {
  ATTN_CHECK(rotary_dims >= 0 && rotary_dims % 2 == 0,
             "RoPE rotates channel pairs: rotary_dims must be even and ≥ 0, got {}", rotary_dims);
  ATTN_CHECK(theta > 0, "RoPE theta must be positive, got {}", theta);
}

int64_t RotaryEmbedding::rotary_dims_for(int64_t head_dim, double fraction) {
  ATTN_CHECK(fraction >= 0 && fraction <= 1, "rope_fraction must lie in [0, 1], got {}", fraction);
  return 2 * static_cast<int64_t>(std::floor(fraction * static_cast<double>(head_dim) / 2.0));
}

Variable RotaryEmbedding::apply(const Variable& x, int64_t position_offset) const {
  ATTN_CHECK(x.dim() == 4 && x.size(3) >= rotary_dims_,
             "RoPE needs x as (B, T, heads, d ≥ {}), got shape {}", rotary_dims_,
             shape_str(x.shape()));
  if (rotary_dims_ == 0) return x;  // nothing to rotate: no op on the tape
  return rope(x, rotary_dims_, theta_, position_offset);
}

}  // namespace attnlab
