// The four attention variants side by side, on one tiny input.
//
// MHA, GQA and MQA are one class (nn/grouped_query_attention.hpp) with 4, 2
// and 1 KV heads; MLA (nn/multi_latent_attention.hpp) caches a small latent
// instead of keys and values. For each, this prints the attention's
// parameters and the bytes its KV cache takes per token (one layer, f32),
// then runs MLA a second time in its decoder form, with w_uk and w_uv
// absorbed (models/README.md, "the absorption trick"):
//
//     MLA decodes as multi-query attention over the latent: one KV head,
//     dr + d_c wide, keys [k_r ; c_kv], values c_kv, queries
//     [q_r,h ; c_q·w_uq,hᵀ·w_uk,h], outputs mapped back through w_uv,h and wo_h.
//
// and checks that both forms compute the same output (in f64, to 1e-10), for
// the layer written out here by hand and for the library's KV-cached Decoder.
// Run: build/release/examples/attention_variants
#include <fmt/format.h>

#include <cmath>

#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/nn/grouped_query_attention.hpp"
#include "attnlab/nn/multi_latent_attention.hpp"
#include "attnlab/tensor/ops.hpp"
#include "attnlab/tensor/reference/attention_reference.hpp"
#include "attnlab/tensor/reference/rope_reference.hpp"

using namespace attnlab;

namespace {

constexpr int64_t T = 6, D = 32, H = 4, dh = 8;  // tokens, model width, heads, head dim
constexpr int64_t d_cq = 16, d_c = 8, dr = 4;    // MLA: query latent, KV latent, RoPE part
constexpr int64_t kF32 = 4;                      // bytes of a cached number

int64_t parameters(const Module& m) {
  int64_t n = 0;
  for (const auto& [name, p] : m.named_parameters()) n += p.value().numel();
  return n;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> av = a.to_vector(), bv = b.to_vector();
  double worst = 0;
  for (size_t i = 0; i < av.size(); ++i) worst = std::max(worst, std::abs(av[i] - bv[i]));
  return worst;
}

// y [T, n] = x [T, k] · w [n, k]ᵀ
Tensor linear(const Tensor& x, const Variable& w) {
  return matmul(x, w.value().transpose(0, 1));
}

// The MLA layer's output for x [1, T, D] in its decoder form, by hand.
Tensor absorbed_mla(const MultiLatentAttention& m, const Tensor& x) {
  const Tensor X = x.reshape({T, D});
  const Tensor c_q = linear(X, m.w_dq().weight());    // [T, d_cq]
  const Tensor c_kv = linear(X, m.w_dkv().weight());  // [T, d_c]: all the cache keeps ...
  const double theta = m.config().rope_theta;
  const Tensor q_r =
      reference::rope_forward(linear(c_q, m.w_qr().weight()).reshape({1, T, H, dr}), dr, theta);
  const Tensor k_r =  // ... with this: one RoPE key per token, shared by all heads
      reference::rope_forward(linear(X, m.w_kr().weight()).reshape({1, T, 1, dr}), dr, theta);

  // One KV head, dr + d_c wide: key [k_r ; c_kv], value c_kv.
  Tensor k = Tensor::empty({1, T, 1, dr + d_c}, DType::F64);
  k.narrow(3, 0, dr).copy_(k_r);
  k.narrow(3, dr, d_c).copy_(c_kv.reshape({1, T, 1, d_c}));
  const Tensor v = c_kv.reshape({1, T, 1, d_c});
  // Query head h: [q_r,h ; c_q·w_uq,hᵀ·w_uk,h]. Its dot product with a key is
  // q_r,h·k_r + (c_q·w_uq,hᵀ)·(c_kv·w_uk,hᵀ) = [q_c ; q_r]·[k_c ; k_r] of training.
  Tensor q = Tensor::empty({1, T, H, dr + d_c}, DType::F64);
  q.narrow(3, 0, dr).copy_(q_r);
  const Tensor w_uq = m.w_uq().weight().value(), w_uk = m.w_uk().weight().value();
  for (int64_t h = 0; h < H; ++h) {
    const Tensor q_c = matmul(c_q, w_uq.narrow(0, h * dh, dh).transpose(0, 1));  // [T, dh]
    q.narrow(3, dr, d_c)
        .select(2, h)
        .copy_(matmul(q_c, w_uk.narrow(0, h * dh, dh)).reshape({1, T, d_c}));
  }
  // Multi-query attention over the latent; the scale stays the training one.
  const Tensor o = reference::attention_forward(q, k, v, m.scale()).out;  // [1, T, H, d_c]
  // Head h's output goes through w_uv,h (back to dh) and its columns of wo.
  const Tensor w_uv = m.w_uv().weight().value(), wo = m.wo().weight().value();
  Tensor out = Tensor::zeros({T, D}, DType::F64);
  for (int64_t h = 0; h < H; ++h) {
    const Tensor o_h = o.select(2, h).reshape({T, d_c});
    const Tensor v_h = matmul(o_h, w_uv.narrow(0, h * dh, dh).transpose(0, 1));  // [T, dh]
    add_(out, matmul(v_h, wo.narrow(1, h * dh, dh).transpose(0, 1)));
  }
  return out.reshape({1, T, D});
}

}  // namespace

int main() {
  NoGradGuard no_grad;
  Rng data(7);
  const Tensor x = Tensor::normal({1, T, D}, data, 0.0, 1.0, DType::F64);
  fmt::print("one input of {} tokens, D = {}, H = {} query heads of dh = {}\n\n", T, D, H, dh);
  fmt::print("{:<14} {:>8} {:>11} {:>22}\n", "variant", "KV heads", "parameters",
             "KV cache bytes/token");

  // Every attention layer reads its sizes from one config (nn/block_config.hpp).
  TransformerBlockConfig layer;
  layer.d_model = D;
  layer.n_heads = H;
  layer.head_dim = dh;
  layer.dtype = DType::F64;
  for (const auto& [name, kv_heads] : {std::pair{"MHA", H}, {"GQA", H / 2}, {"MQA", int64_t{1}}}) {
    Rng rng(1);
    layer.n_kv_heads = kv_heads;
    const GroupedQueryAttention attn(layer, rng);
    attn.forward(Variable(x));
    // The cache keeps k and v of every KV head: 2·Hkv·dh numbers per token.
    fmt::print("{:<14} {:>8} {:>11} {:>22}\n", name, kv_heads, parameters(attn),
               2 * kv_heads * dh * kF32);
  }

  Rng rng(1);
  layer.q_lora_rank = d_cq;
  layer.kv_lora_rank = d_c;
  layer.rope_head_dim = dr;
  const MultiLatentAttention mla(layer, rng);
  const Tensor trained = mla.forward(Variable(x)).value();
  const Tensor absorbed = absorbed_mla(mla, x);
  // The cache keeps c_kv and k_r: d_c + dr numbers per token.
  fmt::print("{:<14} {:>8} {:>11} {:>22}\n", "MLA", "(latent)", parameters(mla), (d_c + dr) * kF32);
  // Decoder form: w_dq, w_qr, w_dkv, w_kr as trained; w_uq_uk [H·d_c, d_cq]
  // replaces w_uq and w_uk, wo_uv [D, H·d_c] replaces w_uv and wo.
  const int64_t absorbed_parameters =
      d_cq * D + H * d_c * d_cq + H * dr * d_cq + d_c * D + dr * D + D * H * d_c;
  fmt::print("{:<14} {:>8} {:>11} {:>22}\n", "MLA absorbed", 1, absorbed_parameters,
             (d_c + dr) * kF32);
  const double layer_error = max_abs_diff(trained, absorbed);
  fmt::print("\nMLA, training form vs absorbed form: max |difference| = {:.2e}\n", layer_error);

  // The same agreement for the library's Decoder on a one-layer MLA model.
  ModelConfig config = preset_config("baby", 40, {.attention = "mla"});
  config.d_model = D;
  config.n_layers = 1;
  config.n_heads = H;
  config.head_dim = dh;
  config.q_lora_rank = d_cq;
  config.kv_lora_rank = d_c;
  config.rope_head_dim = dr;
  config.ffn_hidden = 64;
  validate_config(config);
  const LanguageModel model(config, DType::F64, /*seed=*/1);
  const DecoderWeights weights = absorb_weights(model, DType::F64);
  const DecoderAgreement agreement = check_decoder_agreement(model, weights, 3, 1e-10);
  fmt::print(
      "Decoder (KV cache of {} bytes/token in f64) vs training forward, {} tokens: relative "
      "error {:.2e}\n",
      Decoder(weights, DType::F64).cache_bytes_per_token(), agreement.seq_len,
      agreement.max_relative_error);

  if (!(layer_error < 1e-10)) {
    fmt::print(stderr, "attention_variants: the absorbed MLA disagrees with its training form\n");
    return 1;
  }
  return 0;
}
