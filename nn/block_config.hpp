// The one config every layer of a transformer block reads, so that each
// number is named once from the model config down to the smallest layer:
//   BlockArchitecture      what a block is, as docs/MODEL-SPEC.md names it;
//                          models' ModelConfig is this plus the model-wide keys
//   TransformerBlockConfig a BlockArchitecture plus how the weights are made
//                          (dtype, init) and the training-only dropout
// Every layer (GroupedQueryAttention, MultiLatentAttention, FeedForward,
// MixtureOfExperts, TransformerBlock) takes a TransformerBlockConfig and reads
// only the fields of its kind: a FeedForward reads ffn, d_model and
// ffn_hidden, nothing else.
#pragma once

#include <cstdint>

#include "attnlab/nn/layer_kinds.hpp"
#include "attnlab/tensor/dtype.hpp"

namespace attnlab {

class Rng;

struct BlockArchitecture {
  int64_t d_model = 0;   // D
  int64_t n_heads = 0;   // H
  int64_t head_dim = 0;  // dh; MLA: the non-rotated ("nope") part of q and k, and v's width
  AttentionKind attention = AttentionKind::MHA;  // MLA: MultiLatentAttention; else GroupedQuery
  int64_t n_kv_heads = 0;  // GroupedQuery: Hkv, H (MHA), a divisor of H (GQA) or 1 (MQA)
  double rope_theta = 10000.0;
  double rope_fraction = 1.0;  // GroupedQuery: share of each head's channels RoPE rotates
  int64_t q_lora_rank = 0;     // MLA: d_cq, width of the compressed query c_q
  int64_t kv_lora_rank = 0;    // MLA: d_c, width of the cached latent c_kv
  int64_t rope_head_dim = 0;   // MLA: dr, width of the decoupled RoPE part; even
  FeedForwardKind ffn = FeedForwardKind::SwiGLU;  // the FFN, or the kind of every expert
  int64_t ffn_hidden = 0;                         // F, also the width of every expert
  int64_t n_experts = 0;                          // E; 0: a dense FFN
  int64_t top_k = 2;                              // MoE: experts per token, 1 ≤ k ≤ E
  int64_t n_shared_experts = 0;                   // MoE: experts every token goes through too
  double norm_eps = 1e-6;

  bool operator==(const BlockArchitecture&) const = default;
  bool is_moe() const { return n_experts > 0; }
};

struct TransformerBlockConfig : BlockArchitecture {
  DType dtype = DType::F32;
  double init_std = 0.02;  // every weight but the output projections
  double out_std = 0.02;   // wo and w_down: docs/MODEL-SPEC.md uses 0.02 / sqrt(2·L)
  // Dropout on each residual branch and on the attention probabilities, in
  // training only (as nanoGPT). With p > 0 the attention runs unfused
  // (nn/attention_dropout.hpp), drawing its masks from dropout_rng, which must
  // then be set (the language model owns it).
  double dropout = 0.0;
  Rng* dropout_rng = nullptr;
};

}  // namespace attnlab
