// The inference model: a KV-cached decoder built from a model's weights, with
// no autograd on its path: plain kernels on preallocated buffers.
//
//   DecoderWeights w = read_decoder_weights("model.safetensors");  // either form
//   Decoder dec(w, DType::F32, {.batch = 1});
//   Tensor last = dec.prefill(prompt_ids, prompt_len);  // [B, V]: logits of the last position
//   const Tensor& next = dec.step(ids);                 // one token per sequence → [B, V]
//
// It computes what the training forward (models/language_model.hpp) computes
// for the same token ids, position by position, but keeps each layer's keys
// and values (models/kv_cache.hpp) so that a new token costs one pass of
// matrix-vector products instead of a forward over the whole context:
//
//   mha/gqa/mqa  per layer x·[wq; wk; wv]ᵀ (one product), RoPE on q and k at
//                the token's position, k and v appended to the cache of the
//                Hkv KV heads, attention of the H query heads over the cache,
//                o·woᵀ.
//   mla          x·[w_dq; w_kr; w_dkv]ᵀ (one product) gives c_q, k_r and
//                c_kv; [k_r ; c_kv] is appended to the cache; the query of
//                head h is [RoPE(q_r,h) ; c_q·w_uq_uk,hᵀ]: w_uk is absorbed,
//                so it scores against the cached rows directly; the output
//                of head h is the probability-weighted sum of cached c_kv,
//                mapped through wo_uv, which absorbs w_uv. No per-head key or
//                value of any token is ever computed.
//   FFN/MoE      as trained; a MoE runs only the experts each token chose.
//
// prefill() feeds many tokens at once (matrix-matrix products and the fused
// causal attention kernel, with the new tokens as the last queries); step()
// feeds one token per sequence (matrix-vector products through BLAS and a
// small attention over the cache). After construction nothing is allocated
// per step. The B sequences of a batch advance together: they share the
// position.
//
// Positions never reach max_seq_len (docs/MODEL-SPEC.md): a prefill or step that
// would is refused with a message. To decode on past it, start again with
// reset() and prefill the most recent tokens (generate() in sampling.hpp does
// this with GenerateOptions::slide).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "attnlab/models/config.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/kv_cache.hpp"

namespace attnlab {

struct DecoderOptions {
  int64_t batch = 1;  // B: sequences decoded together
  // Longest context: 0 means the config's max_seq_len, which it may not exceed.
  int64_t max_len = 0;
  // Prefill runs in chunks of at most this many tokens per sequence (0: as
  // many as fit in 4096 rows); buffers are sized for one chunk.
  int64_t prefill_chunk = 0;
  // What the KV caches store: the decoder's dtype, or bf16 (an f32 decoder
  // only): half the bytes, each cached key (after RoPE) and value, or MLA
  // row, rounded to nearest even; the attention widens them to f32.
  KvCacheFormat kv_cache = KvCacheFormat::F32;
  // Keep what step() computes of each layer's attention probabilities and
  // MoE routing (batch 1 only), for attention maps (models/attention_maps.hpp).
  bool record_attention = false;
};

class Decoder {
 public:
  Decoder(const DecoderWeights& weights, DType dtype = DType::F32,
          const DecoderOptions& options = {});
  ~Decoder();
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;

  // ids holds B·T token ids, row-major [B, T], at positions position() …
  // position() + T − 1. Returns the logits of the last position [B, V], or
  // with all_positions those of every position [B, T, V]; a fresh tensor.
  Tensor prefill(std::span<const int32_t> ids, int64_t seq_len, bool all_positions = false);
  // The same as prefill (the last position's logits [B, V]), but each
  // sequence is fed on its own, by the very products a decoder of batch 1
  // would run: sequence b gets the bits it would get decoded alone (what
  // batched sampling needs; prefill's batch-wide products differ in the last
  // bits). Slower than prefill for many sequences.
  Tensor prefill_each(std::span<const int32_t> ids, int64_t seq_len);
  // One token per sequence (B ids) at position(). Returns the logits [B, V]:
  // a decoder-owned buffer, overwritten by the next call.
  const Tensor& step(std::span<const int32_t> ids);
  // Forgets every cached token: the next token is at position 0.
  void reset();

  const ModelConfig& config() const;
  DType dtype() const;
  int64_t batch() const;
  int64_t max_len() const;
  int64_t position() const;  // tokens cached per sequence
  KvCacheFormat kv_cache_format() const;

  // Cache size: bytes per token of one sequence, over all layers (2·L·Hkv·dh
  // or L·(d_c + dr) numbers, times the element size: 4 in f32, 2 in bf16), the bytes holding the
  // cached tokens now (B · position · per token), and the bytes allocated.
  int64_t cache_bytes_per_token() const;
  int64_t cache_bytes() const;
  int64_t cache_capacity_bytes() const;
  // The cache of layer i: kv_cache for mha/gqa/mqa, latent_cache for mla
  // (the other is null).
  const KvCache* kv_cache(int64_t layer) const;
  const LatentKvCache* latent_cache(int64_t layer) const;

  // The MoE load-balancing loss of docs/MODEL-SPEC.md over every token fed since
  // reset(), summed over layers (0 for a dense model): what the training
  // forward's aux would be for the same tokens.
  double aux_loss() const;

  // With DecoderOptions::record_attention, what step() saw since reset():
  // layer l's probabilities [H, max_len, max_len] (row t: the token at
  // position t over keys 0 … t, as the decoder computed them; for mla the
  // absorbed form's) and, for a MoE, each position's k experts [max_len, k]
  // (prefilled positions too: convert's check compares routings).
  const Tensor& attention_record(int64_t layer) const;
  const std::vector<int32_t>& routing_record(int64_t layer) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The logits [B, T, V] of ids [B, T] through a fresh decoding of them: the
// first `prefill_tokens` (≥ 1) in one prefill, the rest one step at a time.
// Resets the decoder first. What inspect --decode and the agreement tests use.
Tensor decode_logits(Decoder& decoder, std::span<const int32_t> ids, int64_t seq_len,
                     int64_t prefill_tokens);

// max over rows (positions) of max_v |a − ref| / max_v |ref|: the error of
// logits a [..., V] against ref, relative to the size of each row of ref.
double logits_relative_error(const Tensor& a, const Tensor& ref);

}  // namespace attnlab
