// The model config of docs/MODEL-SPEC.md: a JSON object, validated against every
// rule of the spec, with its defaults resolved.
//
//   ModelConfig c = config_from_file("baby.json");   // or config_from_json(text)
//   ModelConfig p = preset_config("baby", 96, {.attention = "mla"});
//   std::string text = config_to_json(c);             // every key that applies, resolved
//
// A ModelConfig that came from JSON or a preset is resolved and canonical:
// derived defaults are filled in (head_dim = D/H, n_kv_heads per variant,
// ffn_hidden per FFN kind), and keys the chosen variant ignores hold one fixed
// value, so that operator== compares models rather than spellings:
//   - mla:        n_kv_heads = n_heads, rope_fraction = 1 (mla ignores both);
//   - mha/gqa/mqa: q_lora_rank = kv_lora_rank = rope_head_dim = 0 (unused).
// config_to_json writes every key of the table that applies to the variant
// with its resolved value (the MLA ranks only for mla: docs/MODEL-SPEC.md's integer
// keys are positive), and config_from_json(config_to_json(c)) == c.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attnlab/nn/block_config.hpp"
#include "attnlab/tensor/shape.hpp"

namespace attnlab {

std::string attention_name(AttentionKind a);  // "mha", "gqa", "mqa", "mla"
std::string ffn_name(FeedForwardKind f);      // "swiglu", "relu"
// Parse a name; throw an Error naming the key and the allowed values.
AttentionKind parse_attention(const std::string& name);
FeedForwardKind parse_ffn(const std::string& name);

// A block's fields (d_model, n_heads, head_dim, attention, n_kv_heads,
// rope_theta, rope_fraction, the MLA ranks, ffn, ffn_hidden, n_experts, top_k,
// n_shared_experts, norm_eps: nn/block_config.hpp) plus the model-wide keys.
// The layers read the block's fields from here, nothing copied.
struct ModelConfig : BlockArchitecture {
  int64_t vocab_size = 0;  // V (required)
  int64_t n_layers = 0;    // L (required)
  int64_t max_seq_len = 256;
  double aux_loss_coef = 0.01;
  bool tie_embeddings = false;

  bool operator==(const ModelConfig&) const = default;

  // The sequence length meant by a --seq-len of seq_len: 0 stands for
  // max_seq_len; one longer than max_seq_len is refused ("--seq-len N exceeds
  // the model's max_seq_len M").
  int64_t resolve_seq_len(int64_t seq_len) const;
  // Channels of a head vector that RoPE rotates: r = 2·floor(rope_fraction·dh/2)
  // (computed in double) for mha/gqa/mqa; rope_head_dim for mla.
  int64_t rope_dims() const;
  // Numbers a decoding model caches per token, over all layers:
  // 2·L·Hkv·dh for mha/gqa/mqa, L·(kv_lora_rank + rope_head_dim) for mla.
  int64_t kv_cache_floats_per_token() const;
  // Every parameter by its docs/MODEL-SPEC.md name, with its shape, in this order:
  //   tok_emb.weight
  //   for each layer i:
  //     layers.i.attn_norm.weight
  //     layers.i.attn.{wq,wk,wv,wo}.weight                       (mha/gqa/mqa)
  //     layers.i.attn.{w_dq,w_uq,w_qr,w_dkv,w_uk,w_uv,w_kr,wo}.weight (mla)
  //     layers.i.ffn_norm.weight
  //     dense:  layers.i.ffn.<ffn>
  //     MoE:    layers.i.moe.router.weight, layers.i.moe.experts.{e}.<ffn> for
  //             e = 0…E−1, then layers.i.moe.shared.{s}.<ffn> for s = 0…S−1
  //   norm.weight
  //   lm_head.weight                                             (unless tied)
  // where <ffn> is w_gate.weight, w_up.weight, w_down.weight (swiglu) or
  // w_up.weight, w_up.bias, w_down.weight, w_down.bias (relu).
  std::vector<std::pair<std::string, Shape>> parameter_shapes() const;
  // The number of parameters: the sum of parameter_shapes() (a tied lm_head
  // counts once). Throws if it does not fit in int64.
  int64_t parameter_count() const;
};

// Parse, resolve the defaults and validate. Every refusal is an Error whose
// message starts with `what` and names the offending key.
ModelConfig config_from_json(const std::string& json_text, const std::string& what = "config");
ModelConfig config_from_file(const std::string& path);  // `what` is the path
// Every key that applies (the MLA ranks only for mla), resolved, as a
// pretty-printed JSON object in the table's order.
std::string config_to_json(const ModelConfig& config);

// Check the rules of docs/MODEL-SPEC.md on an already resolved config (positive
// sizes, the n_kv_heads rules, mla's keys, rope_fraction, top_k, shared experts,
// a parameter count that fits in int64). config_from_json and preset_config
// both end here; call it again after changing a field by hand.
void validate_config(const ModelConfig& config, const std::string& what = "config");

// Named presets, with the attention variant and experts chosen on top:
//   tiny:  D=64,  L=2, H=4, max_seq_len=64  (the synthetic-task survey's model)
//   baby:  D=128, L=4, H=4, max_seq_len=64
//   small: D=384, L=6, H=6, max_seq_len=256
// both swiglu, rope_fraction 1, untied. Variant defaults: gqa → n_kv_heads =
// H/2; mqa → 1; mla → q_lora_rank = D/2, kv_lora_rank = D/4, rope_head_dim =
// dh/2. With n_experts = E > 0: top_k defaults to min(2, E) and a top_k above
// E is refused; n_shared_experts defaults to 0. top_k or n_shared_experts
// without n_experts > 0 is refused. The result goes through the same checks
// as a JSON config.
struct PresetOptions {
  std::optional<std::string> attention = std::nullopt;  // "mha" (default), "gqa", "mqa", "mla"
  std::optional<int64_t> n_experts = std::nullopt;
  std::optional<int64_t> top_k = std::nullopt;
  std::optional<int64_t> n_shared_experts = std::nullopt;
};
ModelConfig preset_config(const std::string& name, int64_t vocab_size,
                          const PresetOptions& opts = {});
std::vector<std::string> preset_names();  // {"baby", "small"}

}  // namespace attnlab
