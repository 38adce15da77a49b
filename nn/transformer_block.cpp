#include "attnlab/nn/transformer_block.hpp"

#include "attnlab/autograd/ops.hpp"

namespace attnlab {
namespace {

const TransformerBlockConfig& validated(const TransformerBlockConfig& c) {
  ATTN_CHECK(c.dropout >= 0 && c.dropout < 1, "dropout must lie in [0, 1), got {}", c.dropout);
  ATTN_CHECK(c.n_experts >= 0, "n_experts must be ≥ 0, got {}", c.n_experts);
  ATTN_CHECK(c.n_experts > 0 || c.n_shared_experts == 0,
             "n_shared_experts must be 0 without experts, got {}", c.n_shared_experts);
  return c;
}

std::unique_ptr<GroupedQueryAttention> make_gqa(const TransformerBlockConfig& c, Rng& rng) {
  if (c.attention == AttentionKind::MLA) return nullptr;
  GroupedQueryAttentionConfig a;
  a.d_model = c.d_model;
  a.n_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = c.head_dim;
  a.rope_fraction = c.rope_fraction;
  a.rope_theta = c.rope_theta;
  a.dropout = c.dropout;
  a.dropout_rng = c.dropout_rng;
  a.dtype = c.dtype;
  a.init_std = c.init_std;
  a.out_std = c.out_std;
  return std::make_unique<GroupedQueryAttention>(a, rng);
}

std::unique_ptr<MultiLatentAttention> make_mla(const TransformerBlockConfig& c, Rng& rng) {
  if (c.attention != AttentionKind::MLA) return nullptr;
  MultiLatentAttentionConfig a;
  a.d_model = c.d_model;
  a.n_heads = c.n_heads;
  a.head_dim = c.head_dim;
  a.q_lora_rank = c.q_lora_rank;
  a.kv_lora_rank = c.kv_lora_rank;
  a.rope_head_dim = c.rope_head_dim;
  a.rope_theta = c.rope_theta;
  a.dropout = c.dropout;
  a.dropout_rng = c.dropout_rng;
  a.dtype = c.dtype;
  a.init_std = c.init_std;
  a.out_std = c.out_std;
  return std::make_unique<MultiLatentAttention>(a, rng);
}

std::unique_ptr<FeedForward> make_ffn(const TransformerBlockConfig& c, Rng& rng) {
  if (c.n_experts > 0) return nullptr;
  return std::make_unique<FeedForward>(
      FeedForwardConfig{c.ffn, c.d_model, c.ffn_hidden, c.dtype, c.init_std, c.out_std}, rng);
}

std::unique_ptr<MixtureOfExperts> make_moe(const TransformerBlockConfig& c, Rng& rng) {
  if (c.n_experts == 0) return nullptr;
  return std::make_unique<MixtureOfExperts>(
      MixtureOfExpertsConfig{c.ffn, c.d_model, c.ffn_hidden, c.n_experts, c.top_k,
                             c.n_shared_experts, c.dtype, c.init_std, c.out_std},
      rng);
}

}  // namespace

// Members are built in declaration order (attn_norm, attention, ffn_norm,
// FFN), which is also the order in which they draw from rng.
TransformerBlock::TransformerBlock(const TransformerBlockConfig& config, Rng& rng)
    : config_(validated(config)),
      attn_norm_(config.d_model, config.norm_eps, config.dtype),
      gqa_(make_gqa(config, rng)),
      mla_(make_mla(config, rng)),
      ffn_norm_(config.d_model, config.norm_eps, config.dtype),
      ffn_(make_ffn(config, rng)),
      moe_(make_moe(config, rng)) {
  register_module("attn_norm", attn_norm_);
  if (gqa_) register_module("attn", *gqa_);
  if (mla_) register_module("attn", *mla_);
  register_module("ffn_norm", ffn_norm_);
  if (ffn_) register_module("ffn", *ffn_);
  if (moe_) register_module("moe", *moe_);
}

TransformerBlockOutput TransformerBlock::forward(const Variable& x) const {
  // x is (B, T, D). Residual dropout acts on each branch before it joins the stream.
  const bool drop = is_training() && config_.dropout > 0;
  ATTN_CHECK(!drop || config_.dropout_rng != nullptr, "dropout {} needs a dropout_rng",
             config_.dropout);
  auto branch = [&](const Variable& y) {
    return drop ? dropout(y, config_.dropout, *config_.dropout_rng) : y;
  };
  const Variable h = attn_norm_.forward(x);
  Variable out = add(x, branch(gqa_ ? gqa_->forward(h) : mla_->forward(h)));
  const Variable g = ffn_norm_.forward(out);
  if (ffn_) return {add(out, branch(ffn_->forward(g))), Variable(Tensor::scalar(0.0, x.dtype()))};
  MixtureOfExpertsOutput moe = moe_->forward(g);
  return {add(out, branch(moe.y)), moe.aux};
}

}  // namespace attnlab
