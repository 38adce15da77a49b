// Grouped-query attention (Ainslie et al., 2023): one implementation for
// three of the four attention variants, told apart only by the number of
// key/value heads Hkv:
//     MHA (Vaswani et al., 2017)   Hkv = H      every query head has its own K, V
//     GQA                          Hkv = H / g  g query heads share one K, V
//     MQA (Shazeer, 2019)          Hkv = 1      all query heads share one K, V
// Query head h reads key/value head h / (H / Hkv). Fewer KV heads shrink the
// KV cache of a decoder to 2·Hkv·dh numbers per token per layer.
//
//     q = x·wqᵀ → (B, T, H, dh),  k = x·wkᵀ, v = x·wvᵀ → (B, T, Hkv, dh)
//     q, k = RoPE(q), RoPE(k)     (the first r channels of each head)
//     o = softmax(q·kᵀ / sqrt(dh), causal) · v → (B, T, H·dh)
//     out = o·woᵀ
#pragma once

#include <cstdint>

#include "attnlab/nn/block_config.hpp"
#include "attnlab/nn/linear.hpp"
#include "attnlab/nn/rotary_embedding.hpp"

namespace attnlab {

class GroupedQueryAttention : public Module {
 public:
  // Parameters: wq.weight [H·dh, D], wk.weight [Hkv·dh, D], wv.weight [Hkv·dh, D],
  // wo.weight [D, H·dh], drawn from rng in that order. Reads d_model,
  // n_heads, n_kv_heads, head_dim, rope_fraction, rope_theta, dtype, init_std
  // (wq, wk, wv), out_std (wo) and dropout (on the probabilities).
  GroupedQueryAttention(const TransformerBlockConfig& config, Rng& rng);

  // x is (B, T, D) → (B, T, D); token t at position t.
  Variable forward(const Variable& x) const;

  // The two halves of forward: project and rotate (positions start at
  // position_offset), then, after attention, project the heads back. The
  // attention maps read q and k from project (models/attention_maps.hpp);
  // the KV-cached decoder runs plain kernels on stacked weights instead
  // (models/decoder.cpp).
  struct QueryKeyValue {
    Variable q;  // (B, T, H, dh), rotated
    Variable k;  // (B, T, Hkv, dh), rotated
    Variable v;  // (B, T, Hkv, dh)
  };
  QueryKeyValue project(const Variable& x, int64_t position_offset) const;
  Variable output(const Variable& heads) const;  // (B, T, H, dh) → (B, T, D)

  const TransformerBlockConfig& config() const { return config_; }
  const RotaryEmbedding& rotary() const { return rotary_; }
  double scale() const;  // 1 / sqrt(dh)
  const Linear& wq() const { return wq_; }
  const Linear& wk() const { return wk_; }
  const Linear& wv() const { return wv_; }
  const Linear& wo() const { return wo_; }

 private:
  TransformerBlockConfig config_;
  RotaryEmbedding rotary_;
  Linear wq_, wk_, wv_, wo_;
};

}  // namespace attnlab
