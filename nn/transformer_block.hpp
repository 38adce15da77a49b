// One pre-norm transformer block (GPT-2 and later): each sub-layer reads a
// normalised copy of the residual stream and adds its result back to it,
//     x = x + Attn(RMSNorm(x; attn_norm))
//     x = x + FFN(RMSNorm(x; ffn_norm))       (FFN: dense, or a mixture of experts)
// so the stream itself is never normalised and gradients flow straight down
// the sum from the loss to the embedding.
#pragma once

#include <cstdint>
#include <memory>

#include "attnlab/nn/block_config.hpp"
#include "attnlab/nn/feed_forward.hpp"
#include "attnlab/nn/grouped_query_attention.hpp"
#include "attnlab/nn/mixture_of_experts.hpp"
#include "attnlab/nn/multi_latent_attention.hpp"
#include "attnlab/nn/rms_norm.hpp"

namespace attnlab {

struct TransformerBlockOutput {
  Variable x;    // (B, T, D)
  Variable aux;  // the MoE load-balancing loss (a scalar); a constant 0 for a dense block
};

class TransformerBlock : public Module {
 public:
  // Submodules, in registration (and random-draw) order: attn_norm, attn,
  // ffn_norm, then ffn (dense) or moe (n_experts > 0). Every sublayer reads
  // its part of the same config.
  TransformerBlock(const TransformerBlockConfig& config, Rng& rng);

  // x is (B, T, D) → (B, T, D)
  TransformerBlockOutput forward(const Variable& x) const;

  const TransformerBlockConfig& config() const { return config_; }
  const RMSNorm& attn_norm() const { return attn_norm_; }
  const RMSNorm& ffn_norm() const { return ffn_norm_; }
  // Exactly one of each pair is non-null, by config.
  const GroupedQueryAttention* grouped_query_attention() const { return gqa_.get(); }
  const MultiLatentAttention* multi_latent_attention() const { return mla_.get(); }
  const FeedForward* feed_forward() const { return ffn_.get(); }
  const MixtureOfExperts* mixture_of_experts() const { return moe_.get(); }

 private:
  TransformerBlockConfig config_;
  RMSNorm attn_norm_;
  std::unique_ptr<GroupedQueryAttention> gqa_;
  std::unique_ptr<MultiLatentAttention> mla_;
  RMSNorm ffn_norm_;
  std::unique_ptr<FeedForward> ffn_;
  std::unique_ptr<MixtureOfExperts> moe_;
};

}  // namespace attnlab
