#include "attnlab/nn/multi_latent_attention.hpp"

#include <cmath>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/nn/attention_dropout.hpp"

namespace attnlab {
namespace {

// Checked before any weight is drawn, so a bad config fails with its own message.
const TransformerBlockConfig& validated(const TransformerBlockConfig& c) {
  ATTN_CHECK(c.d_model > 0 && c.n_heads > 0 && c.head_dim > 0,
             "MLA needs positive d_model, n_heads and head_dim, got {}, {}, {}", c.d_model,
             c.n_heads, c.head_dim);
  ATTN_CHECK(c.q_lora_rank > 0 && c.kv_lora_rank > 0,
             "MLA needs positive q_lora_rank and kv_lora_rank, got {} and {}", c.q_lora_rank,
             c.kv_lora_rank);
  ATTN_CHECK(c.rope_head_dim > 0 && c.rope_head_dim % 2 == 0,
             "MLA's rope_head_dim must be positive and even, got {}", c.rope_head_dim);
  ATTN_CHECK(c.dropout >= 0 && c.dropout < 1, "attention dropout must lie in [0, 1), got {}",
             c.dropout);
  return c;
}

}  // namespace

MultiLatentAttention::MultiLatentAttention(const TransformerBlockConfig& config, Rng& rng)
    : config_(validated(config)),
      rotary_(config.rope_head_dim, config.rope_theta),
      w_dq_(config.d_model, config.q_lora_rank, false, config.dtype, rng, config.init_std),
      w_uq_(config.q_lora_rank, config.n_heads * config.head_dim, false, config.dtype, rng,
            config.init_std),
      w_qr_(config.q_lora_rank, config.n_heads * config.rope_head_dim, false, config.dtype, rng,
            config.init_std),
      w_dkv_(config.d_model, config.kv_lora_rank, false, config.dtype, rng, config.init_std),
      w_uk_(config.kv_lora_rank, config.n_heads * config.head_dim, false, config.dtype, rng,
            config.init_std),
      w_uv_(config.kv_lora_rank, config.n_heads * config.head_dim, false, config.dtype, rng,
            config.init_std),
      w_kr_(config.d_model, config.rope_head_dim, false, config.dtype, rng, config.init_std),
      wo_(config.n_heads * config.head_dim, config.d_model, false, config.dtype, rng,
          config.out_std) {
  register_module("w_dq", w_dq_);
  register_module("w_uq", w_uq_);
  register_module("w_qr", w_qr_);
  register_module("w_dkv", w_dkv_);
  register_module("w_uk", w_uk_);
  register_module("w_uv", w_uv_);
  register_module("w_kr", w_kr_);
  register_module("wo", wo_);
}

double MultiLatentAttention::scale() const {
  return 1.0 / std::sqrt(static_cast<double>(config_.head_dim + config_.rope_head_dim));
}

MultiLatentAttention::QueryAndLatents MultiLatentAttention::project(const Variable& x,
                                                                    int64_t position_offset) const {
  ATTN_CHECK(x.dim() == 3 && x.size(2) == config_.d_model,
             "attention input must be (B, T, {}), got shape {}", config_.d_model,
             shape_str(x.shape()));
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t H = config_.n_heads, dh = config_.head_dim, dr = config_.rope_head_dim;
  const Variable c_q = w_dq_.forward(x);                            // (B, T, d_cq)
  const Variable q_c = reshape(w_uq_.forward(c_q), {B, T, H, dh});  // (B, T, H, dh)
  const Variable q_r = rotary_.apply(reshape(w_qr_.forward(c_q), {B, T, H, dr}),
                                     position_offset);  // (B, T, H, dr)
  const Variable c_kv = w_dkv_.forward(x);              // (B, T, d_c)
  // One positional key per token: a single "head" of dr channels.
  const Variable k_r =
      rotary_.apply(reshape(w_kr_.forward(x), {B, T, 1, dr}), position_offset);  // (B, T, 1, dr)
  return {concat({q_c, q_r}, 3), c_kv, k_r};
}

MultiLatentAttention::KeysValues MultiLatentAttention::keys_values(const Variable& c_kv,
                                                                   const Variable& k_r) const {
  const int64_t B = c_kv.size(0), S = c_kv.size(1);
  const int64_t H = config_.n_heads, dh = config_.head_dim;
  const Variable k_c = reshape(w_uk_.forward(c_kv), {B, S, H, dh});  // (B, S, H, dh)
  const Variable v = reshape(w_uv_.forward(c_kv), {B, S, H, dh});    // (B, S, H, dh)
  // Every head reads the same k_r: repeat it H times along the head axis.
  // concat's backward hands each copy its slice of the gradient, and those
  // add up in k_r (a value used H times gets H contributions).
  const Variable k_r_heads = concat(std::vector<Variable>(H, k_r), 2);  // (B, S, H, dr)
  return {concat({k_c, k_r_heads}, 3), v};
}

Variable MultiLatentAttention::output(const Variable& heads) const {
  // heads is (B, T, H, dh) → (B, T, H·dh) → (B, T, D)
  const int64_t B = heads.size(0), T = heads.size(1);
  return wo_.forward(reshape(heads, {B, T, config_.n_heads * config_.head_dim}));
}

Variable MultiLatentAttention::forward(const Variable& x) const {
  const QueryAndLatents latents = project(x, 0);
  const KeysValues kv = keys_values(latents.c_kv, latents.k_r);
  // q, k (B, T, H, dh + dr), v (B, T, H, dh) → (B, T, H, dh)
  if (is_training() && config_.dropout > 0) {
    ATTN_CHECK(config_.dropout_rng != nullptr, "attention dropout needs a dropout_rng");
    return output(causal_attention_with_dropout(latents.q, kv.k, kv.v, scale(), config_.dropout,
                                                *config_.dropout_rng));
  }
  return output(causal_attention(latents.q, kv.k, kv.v, scale()));
}

}  // namespace attnlab
