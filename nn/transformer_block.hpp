// One pre-norm transformer block (GPT-2 and later): each sub-layer reads a
// normalised copy of the residual stream and adds its result back to it,
//     x = x + Attn(RMSNorm(x; attn_norm))
//     x = x + FFN(RMSNorm(x; ffn_norm))       (FFN: dense, or a mixture of experts)
// so the stream itself is never normalised and gradients flow straight down
// the sum from the loss to the embedding.
#pragma once

#include <cstdint>
#include <memory>

#include "attnlab/nn/feed_forward.hpp"
#include "attnlab/nn/grouped_query_attention.hpp"
#include "attnlab/nn/mixture_of_experts.hpp"
#include "attnlab/nn/multi_latent_attention.hpp"
#include "attnlab/nn/rms_norm.hpp"

namespace attnlab {

// The numbers of one block; the language model fills it from its config.
struct TransformerBlockConfig {
  int64_t d_model = 0;                           // D
  int64_t n_heads = 0;                           // H
  int64_t head_dim = 0;                          // dh (MLA: the non-rotated part)
  AttentionKind attention = AttentionKind::MHA;  // MLA: MultiLatentAttention; else GroupedQuery
  int64_t n_kv_heads = 0;                        // GroupedQuery: Hkv (H for MHA, 1 for MQA)
  double rope_fraction = 1.0;                    // GroupedQuery
  double rope_theta = 10000.0;
  int64_t q_lora_rank = 0;    // MultiLatent: d_cq
  int64_t kv_lora_rank = 0;   // MultiLatent: d_c
  int64_t rope_head_dim = 0;  // MultiLatent: dr
  FeedForwardKind ffn = FeedForwardKind::SwiGLU;
  int64_t ffn_hidden = 0;        // F (also every expert's width)
  int64_t n_experts = 0;         // E; 0: a dense FFN
  int64_t top_k = 2;             // when E > 0
  int64_t n_shared_experts = 0;  // when E > 0
  double norm_eps = 1e-6;
  // Dropout on each residual branch and on the attention probabilities, in
  // training only (as nanoGPT), with masks drawn from dropout_rng, which must
  // be set when dropout > 0.
  double dropout = 0.0;
  Rng* dropout_rng = nullptr;
  DType dtype = DType::F32;
  double init_std = 0.02;  // every weight but the output projections
  double out_std = 0.02;   // wo and w_down: docs/MODEL-SPEC.md uses 0.02 / sqrt(2·L)
};

struct TransformerBlockOutput {
  Variable x;    // (B, T, D)
  Variable aux;  // the MoE load-balancing loss (a scalar); a constant 0 for a dense block
};

class TransformerBlock : public Module {
 public:
  // Submodules, in registration (and random-draw) order: attn_norm, attn,
  // ffn_norm, then ffn (dense) or moe (n_experts > 0).
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
