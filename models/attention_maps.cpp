#include "attnlab/models/attention_maps.hpp"

#include "attnlab/autograd/ops.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/tensor/reference/attention_reference.hpp"

namespace attnlab {
namespace {

void check_length(const ModelConfig& c, std::span<const int32_t> ids) {
  ATTN_CHECK(!ids.empty() && static_cast<int64_t>(ids.size()) <= c.max_seq_len,
             "attention maps need 1 … max_seq_len {} tokens, got {}", c.max_seq_len, ids.size());
}

AttentionMaps empty_maps(const ModelConfig& c, int64_t T) {
  AttentionMaps m;
  m.tokens = T;
  m.heads = c.n_heads;
  m.top_k = c.is_moe() ? c.top_k : 0;
  m.probabilities.assign(c.n_layers,
                         std::vector<std::vector<double>>(c.n_heads, std::vector<double>(T * T)));
  if (c.is_moe()) m.experts.assign(c.n_layers, std::vector<int32_t>(T * c.top_k));
  return m;
}

}  // namespace

AttentionMaps decoder_attention_maps(const DecoderWeights& weights, std::span<const int32_t> ids,
                                     DType dtype) {
  const ModelConfig& c = weights.config;
  check_length(c, ids);
  const int64_t T = static_cast<int64_t>(ids.size());
  Decoder decoder(weights, dtype, {.batch = 1, .max_len = T, .record_attention = true});
  for (int64_t t = 0; t < T; ++t) decoder.step(ids.subspan(t, 1));  // one query per step
  AttentionMaps m = empty_maps(c, T);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::vector<double> p = decoder.attention_record(l).to_vector();  // [H, T, T]
    for (int64_t h = 0; h < c.n_heads; ++h)
      std::copy_n(p.begin() + h * T * T, T * T, m.probabilities[l][h].begin());
    if (c.is_moe()) m.experts[l] = decoder.routing_record(l);
  }
  return m;
}

AttentionMaps training_attention_maps(const LanguageModel& model, std::span<const int32_t> ids) {
  const ModelConfig& c = model.config();
  check_length(c, ids);
  const int64_t T = static_cast<int64_t>(ids.size());
  NoGradGuard no_grad;
  AttentionMaps m = empty_maps(c, T);
  Variable x = model.token_embedding().forward(ids, {1, T});  // (1, T, D)
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const TransformerBlock& block = *model.blocks()[l];
    const Variable h = block.attn_norm().forward(x);
    Tensor p;  // [1, H, T, T]
    Variable attended;
    if (const GroupedQueryAttention* a = block.grouped_query_attention()) {
      const auto qkv = a->project(h, 0);
      p = reference::attention_probabilities(qkv.q.value(), qkv.k.value(), a->scale());
      attended = a->forward(h);
    } else {
      const MultiLatentAttention* mla = block.multi_latent_attention();
      const auto latents = mla->project(h, 0);
      const auto kv = mla->keys_values(latents.c_kv, latents.k_r);
      p = reference::attention_probabilities(latents.q.value(), kv.k.value(), mla->scale());
      attended = mla->forward(h);
    }
    const std::vector<double> pv = p.to_vector();
    for (int64_t hh = 0; hh < c.n_heads; ++hh)
      std::copy_n(pv.begin() + hh * T * T, T * T, m.probabilities[l][hh].begin());
    if (const MixtureOfExperts* moe = block.mixture_of_experts())
      m.experts[l] = moe->forward(block.ffn_norm().forward(add(x, attended))).chosen;
    x = block.forward(x).x;
  }
  return m;
}

}  // namespace attnlab
