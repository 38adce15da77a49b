// Multi-head latent attention, MLA (DeepSeek-V2, 2024), with decoupled RoPE.
//
// Keys and values of all H heads are rebuilt from one small latent c_kv per
// token, so a decoder caches c_kv (d_c numbers) plus one rotated key part k_r
// (dr numbers) shared by all heads: d_c + dr per token per layer, against
// 2·Hkv·dh for MHA/GQA/MQA. Queries go through a latent c_q as well (that
// saves parameters and activations, not cache).
//
//     c_q  = x·w_dqᵀ                         (B, T, d_cq)
//     q_c  = c_q·w_uqᵀ → (B, T, H, dh)        the "content" query
//     q_r  = RoPE(c_q·w_qrᵀ) → (B, T, H, dr)  the positional query
//     c_kv = x·w_dkvᵀ                        (B, T, d_c)   cached
//     k_c  = c_kv·w_ukᵀ → (B, T, H, dh)
//     v    = c_kv·w_uvᵀ → (B, T, H, dh)
//     k_r  = RoPE(x·w_krᵀ) → (B, T, 1, dr)    one per token, shared by all heads; cached
//     q = [q_c ; q_r], k = [k_c ; k_r]       (last axis: dh + dr channels)
//     o = softmax(q·kᵀ / sqrt(dh + dr), causal) · v;  out = o·woᵀ
//
// Why RoPE is decoupled: a rotation between c_kv and the key would depend on
// the position, so w_uk could no longer be absorbed into the query at decode
// time (q_c·k_cᵀ = (q_c·w_uk)·c_kvᵀ: attention straight on the cached
// latents). Position therefore rides on the separate, small q_r/k_r channels.
// As docs/MODEL-SPEC.md says, and unlike DeepSeek-V2, c_q and c_kv are not normalised.
#pragma once

#include <cstdint>

#include "attnlab/nn/block_config.hpp"
#include "attnlab/nn/linear.hpp"
#include "attnlab/nn/rotary_embedding.hpp"

namespace attnlab {

class MultiLatentAttention : public Module {
 public:
  // Parameters, drawn from rng in this order:
  //   w_dq.weight [d_cq, D], w_uq.weight [H·dh, d_cq], w_qr.weight [H·dr, d_cq],
  //   w_dkv.weight [d_c, D], w_uk.weight [H·dh, d_c], w_uv.weight [H·dh, d_c],
  //   w_kr.weight [dr, D], wo.weight [D, H·dh]
  // Reads d_model, n_heads, head_dim, q_lora_rank, kv_lora_rank,
  // rope_head_dim, rope_theta, dtype, init_std, out_std (wo) and dropout.
  MultiLatentAttention(const TransformerBlockConfig& config, Rng& rng);

  // x is (B, T, D) → (B, T, D); token t at position t.
  Variable forward(const Variable& x) const;

  // The pieces of forward, also read by the attention maps
  // (models/attention_maps.hpp). The KV-cached decoder does not call them: it
  // caches c_kv and k_r and absorbs w_uk and w_uv (models/decoder.cpp).
  struct QueryAndLatents {
    Variable q;     // (B, T, H, dh + dr): [q_c ; q_r], rotated
    Variable c_kv;  // (B, T, d_c): what the cache keeps ...
    Variable k_r;   // (B, T, 1, dr), rotated: ... with this
  };
  QueryAndLatents project(const Variable& x, int64_t position_offset) const;
  struct KeysValues {
    Variable k;  // (B, S, H, dh + dr): [k_c ; k_r repeated for every head]
    Variable v;  // (B, S, H, dh)
  };
  // c_kv (B, S, d_c) and k_r (B, S, 1, dr) of S tokens → their keys and values.
  KeysValues keys_values(const Variable& c_kv, const Variable& k_r) const;
  Variable output(const Variable& heads) const;  // (B, T, H, dh) → (B, T, D)

  const TransformerBlockConfig& config() const { return config_; }
  const RotaryEmbedding& rotary() const { return rotary_; }
  double scale() const;  // 1 / sqrt(dh + dr)
  const Linear& w_dq() const { return w_dq_; }
  const Linear& w_uq() const { return w_uq_; }
  const Linear& w_qr() const { return w_qr_; }
  const Linear& w_dkv() const { return w_dkv_; }
  const Linear& w_uk() const { return w_uk_; }
  const Linear& w_uv() const { return w_uv_; }
  const Linear& w_kr() const { return w_kr_; }
  const Linear& wo() const { return wo_; }

 private:
  TransformerBlockConfig config_;
  RotaryEmbedding rotary_;
  Linear w_dq_, w_uq_, w_qr_, w_dkv_, w_uk_, w_uv_, w_kr_, wo_;
};

}  // namespace attnlab
