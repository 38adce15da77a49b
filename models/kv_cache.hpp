// The KV caches of a decoding model: what one layer keeps of every token it
// has seen, so that a new token attends to them without recomputing them.
//
//   KvCache        mha, gqa, mqa: the rotated keys and the values of the Hkv
//                  KV heads only, [B, max_len, Hkv, dh] each. GQA and MQA
//                  really save memory: the cache is never expanded to H heads
//                  (query head h reads KV head h / (H / Hkv) in place).
//   LatentKvCache  mla: per token one row of dr + d_c numbers, the rotated
//                  RoPE key k_r (shared by all heads) followed by the latent
//                  c_kv. Per-head keys and values are never stored, nor
//                  computed: the decoder scores queries against the row
//                  directly (see models/README.md, "the absorption trick").
//                  k_r comes first so that one RoPE call over the row
//                  (rotating its first dr channels) rotates it in place.
//
// Both are plain preallocated buffers for `batch` sequences of up to `max_len`
// tokens; the decoder owns the position (how many tokens are filled).
#pragma once

#include <cstdint>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

class KvCache {
 public:
  KvCache(int64_t batch, int64_t max_len, int64_t kv_heads, int64_t head_dim, DType dtype);

  int64_t batch() const { return batch_; }
  int64_t max_len() const { return max_len_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  DType dtype() const { return keys_.dtype(); }
  const Tensor& keys() const { return keys_; }      // [B, max_len, Hkv, dh]
  const Tensor& values() const { return values_; }  // [B, max_len, Hkv, dh]

  // The Hkv·dh numbers of token t of sequence b.
  template <typename T>
  T* key(int64_t b, int64_t t) const {
    return keys_.data<T>() + (b * max_len_ + t) * token_stride();
  }
  template <typename T>
  T* value(int64_t b, int64_t t) const {
    return values_.data<T>() + (b * max_len_ + t) * token_stride();
  }
  int64_t token_stride() const { return kv_heads_ * head_dim_; }  // elements

  // Bytes one token of one sequence takes: 2·Hkv·dh·element size.
  int64_t bytes_per_token() const;
  int64_t capacity_bytes() const { return batch_ * max_len_ * bytes_per_token(); }

 private:
  int64_t batch_, max_len_, kv_heads_, head_dim_;
  Tensor keys_, values_;
};

class LatentKvCache {
 public:
  LatentKvCache(int64_t batch, int64_t max_len, int64_t latent_dim, int64_t rope_dim, DType dtype);

  int64_t batch() const { return batch_; }
  int64_t max_len() const { return max_len_; }
  int64_t latent_dim() const { return latent_dim_; }  // d_c
  int64_t rope_dim() const { return rope_dim_; }      // dr
  DType dtype() const { return rows_.dtype(); }
  const Tensor& rows() const { return rows_; }  // [B, max_len, dr + d_c]

  // Token t of sequence b: its row [k_r (dr) ; c_kv (d_c)].
  template <typename T>
  T* row(int64_t b, int64_t t) const {
    return rows_.data<T>() + (b * max_len_ + t) * token_stride();
  }
  template <typename T>
  T* latent(int64_t b, int64_t t) const {
    return row<T>(b, t) + rope_dim_;
  }
  int64_t token_stride() const { return rope_dim_ + latent_dim_; }  // elements

  // Bytes one token of one sequence takes: (d_c + dr)·element size.
  int64_t bytes_per_token() const;
  int64_t capacity_bytes() const { return batch_ * max_len_ * bytes_per_token(); }

 private:
  int64_t batch_, max_len_, latent_dim_, rope_dim_;
  Tensor rows_;
};

}  // namespace attnlab
