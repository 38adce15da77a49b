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

}  // namespace

// Members are built in declaration order (attn_norm, attention, ffn_norm,
// FFN), which is also the order in which they draw from rng.
TransformerBlock::TransformerBlock(const TransformerBlockConfig& config, Rng& rng)
    : config_(validated(config)),
      attn_norm_(config.d_model, config.norm_eps, config.dtype),
      gqa_(config.attention != AttentionKind::MLA
               ? std::make_unique<GroupedQueryAttention>(config, rng)
               : nullptr),
      mla_(config.attention == AttentionKind::MLA
               ? std::make_unique<MultiLatentAttention>(config, rng)
               : nullptr),
      ffn_norm_(config.d_model, config.norm_eps, config.dtype),
      ffn_(config.is_moe() ? nullptr : std::make_unique<FeedForward>(config, rng)),
      moe_(config.is_moe() ? std::make_unique<MixtureOfExperts>(config, rng) : nullptr) {
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
