#include "attnlab/nn/grouped_query_attention.hpp"

#include <cmath>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/nn/attention_dropout.hpp"

namespace attnlab {
namespace {

// Checked before any weight is drawn, so a bad config fails with its own message.
const TransformerBlockConfig& validated(const TransformerBlockConfig& c) {
  ATTN_CHECK(c.d_model > 0 && c.n_heads > 0 && c.head_dim > 0,
             "attention needs positive d_model, n_heads and head_dim, got {}, {}, {}", c.d_model,
             c.n_heads, c.head_dim);
  ATTN_CHECK(c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0,
             "n_kv_heads ({}) must divide n_heads ({})", c.n_kv_heads, c.n_heads);
  ATTN_CHECK(c.dropout >= 0 && c.dropout < 1, "attention dropout must lie in [0, 1), got {}",
             c.dropout);
  return c;
}

}  // namespace

GroupedQueryAttention::GroupedQueryAttention(const TransformerBlockConfig& config, Rng& rng)
    : config_(validated(config)),
      rotary_(RotaryEmbedding::rotary_dims_for(config.head_dim, config.rope_fraction),
              config.rope_theta),
      wq_(config.d_model, config.n_heads * config.head_dim, false, config.dtype, rng,
          config.init_std),
      wk_(config.d_model, config.n_kv_heads * config.head_dim, false, config.dtype, rng,
          config.init_std),
      wv_(config.d_model, config.n_kv_heads * config.head_dim, false, config.dtype, rng,
          config.init_std),
      wo_(config.n_heads * config.head_dim, config.d_model, false, config.dtype, rng,
          config.out_std) {
  register_module("wq", wq_);
  register_module("wk", wk_);
  register_module("wv", wv_);
  register_module("wo", wo_);
}

double GroupedQueryAttention::scale() const {
  return 1.0 / std::sqrt(static_cast<double>(config_.head_dim));
}

GroupedQueryAttention::QueryKeyValue GroupedQueryAttention::project(const Variable& x,
                                                                    int64_t position_offset) const {
  ATTN_CHECK(x.dim() == 3 && x.size(2) == config_.d_model,
             "attention input must be (B, T, {}), got shape {}", config_.d_model,
             shape_str(x.shape()));
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t H = config_.n_heads, Hkv = config_.n_kv_heads, dh = config_.head_dim;
  // The projections are fresh contiguous tensors, so splitting the last axis
  // into heads is a view: heads stay interleaved as (B, T, heads, dh), the
  // layout the fused RoPE and attention ops read, and nothing is permuted.
  const Variable q = reshape(wq_.forward(x), {B, T, H, dh});
  const Variable k = reshape(wk_.forward(x), {B, T, Hkv, dh});
  const Variable v = reshape(wv_.forward(x), {B, T, Hkv, dh});
  return {rotary_.apply(q, position_offset), rotary_.apply(k, position_offset), v};
}

Variable GroupedQueryAttention::output(const Variable& heads) const {
  // heads is (B, T, H, dh) → (B, T, H·dh) → (B, T, D)
  const int64_t B = heads.size(0), T = heads.size(1);
  return wo_.forward(reshape(heads, {B, T, config_.n_heads * config_.head_dim}));
}

Variable GroupedQueryAttention::forward(const Variable& x) const {
  const QueryKeyValue qkv = project(x, 0);
  // (B, T, H, dh): query head h attends with KV head h / (H / Hkv).
  if (is_training() && config_.dropout > 0) {
    ATTN_CHECK(config_.dropout_rng != nullptr, "attention dropout needs a dropout_rng");
    return output(causal_attention_with_dropout(qkv.q, qkv.k, qkv.v, scale(), config_.dropout,
                                                *config_.dropout_rng));
  }
  return output(causal_attention(qkv.q, qkv.k, qkv.v, scale()));
}

}  // namespace attnlab
