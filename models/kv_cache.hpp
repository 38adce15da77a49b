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
//
// Either cache holds numbers of the decoder's dtype (KvCacheFormat::F32: f32,
// or f64 for the tests' f64 decoder) or bf16 (KvCacheFormat::BF16, f32
// decoders only): half the bytes, each number the f32 one rounded to nearest
// even (tensor/bf16_rows.hpp). Keys are rotated (RoPE) before they are
// stored, so a bf16 key is the rounding of the rotated f32 key. The elements
// are read as key<T>/value<T>/row<T> with T the decoder's float type, or
// uint16_t (the bf16 bits) for a bf16 cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <type_traits>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

enum class KvCacheFormat { F32, BF16 };
// "f32", "bf16"; parse_kv_cache_format refuses anything else, listing them.
std::string_view kv_cache_format_name(KvCacheFormat format);
KvCacheFormat parse_kv_cache_format(std::string_view name);

// The elements of a cache: the decoder's dtype, or bf16 bits.
class CacheBuffer {
 public:
  CacheBuffer(const Shape& shape, DType dtype, KvCacheFormat format);
  bool bf16() const { return bf16_ != nullptr; }
  DType dtype() const { return dense_.defined() ? dense_.dtype() : DType::F32; }
  int64_t element_size() const { return bf16() ? 2 : static_cast<int64_t>(dtype_size(dtype())); }
  const Tensor& dense() const { return dense_; }
  template <typename T>
  T* data() const {
    if constexpr (std::is_same_v<T, uint16_t>) {
      ATTN_CHECK(bf16(), "this KV cache holds {}, not bf16", dtype_name(dtype()));
      return bf16_.get();
    } else {
      return dense_.data<T>();
    }
  }

 private:
  Tensor dense_;                      // F32 format: the decoder's dtype
  std::unique_ptr<uint16_t[]> bf16_;  // BF16 format
};

class KvCache {
 public:
  KvCache(int64_t batch, int64_t max_len, int64_t kv_heads, int64_t head_dim, DType dtype,
          KvCacheFormat format = KvCacheFormat::F32);

  int64_t batch() const { return batch_; }
  int64_t max_len() const { return max_len_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  DType dtype() const { return keys_.dtype(); }  // the decoder's (a bf16 cache widens to f32)
  KvCacheFormat format() const { return keys_.bf16() ? KvCacheFormat::BF16 : KvCacheFormat::F32; }
  // F32 format: [B, max_len, Hkv, dh] each (undefined for a bf16 cache).
  const Tensor& keys() const { return keys_.dense(); }
  const Tensor& values() const { return values_.dense(); }

  // The Hkv·dh numbers of token t of sequence b (T = uint16_t: bf16 bits).
  template <typename T>
  T* key(int64_t b, int64_t t) const {
    return keys_.data<T>() + (b * max_len_ + t) * token_stride();
  }
  template <typename T>
  T* value(int64_t b, int64_t t) const {
    return values_.data<T>() + (b * max_len_ + t) * token_stride();
  }
  int64_t token_stride() const { return kv_heads_ * head_dim_; }  // elements

  // Bytes one token of one sequence takes: 2·Hkv·dh·element size (bf16: 2).
  int64_t bytes_per_token() const;
  int64_t capacity_bytes() const { return batch_ * max_len_ * bytes_per_token(); }

 private:
  int64_t batch_, max_len_, kv_heads_, head_dim_;
  CacheBuffer keys_, values_;
};

class LatentKvCache {
 public:
  LatentKvCache(int64_t batch, int64_t max_len, int64_t latent_dim, int64_t rope_dim, DType dtype,
                KvCacheFormat format = KvCacheFormat::F32);

  int64_t batch() const { return batch_; }
  int64_t max_len() const { return max_len_; }
  int64_t latent_dim() const { return latent_dim_; }  // d_c
  int64_t rope_dim() const { return rope_dim_; }      // dr
  DType dtype() const { return rows_.dtype(); }
  KvCacheFormat format() const { return rows_.bf16() ? KvCacheFormat::BF16 : KvCacheFormat::F32; }
  // F32 format: [B, max_len, dr + d_c] (undefined for a bf16 cache).
  const Tensor& rows() const { return rows_.dense(); }

  // Token t of sequence b: its row [k_r (dr) ; c_kv (d_c)] (T = uint16_t: bf16 bits).
  template <typename T>
  T* row(int64_t b, int64_t t) const {
    return rows_.data<T>() + (b * max_len_ + t) * token_stride();
  }
  template <typename T>
  T* latent(int64_t b, int64_t t) const {
    return row<T>(b, t) + rope_dim_;
  }
  int64_t token_stride() const { return rope_dim_ + latent_dim_; }  // elements

  // Bytes one token of one sequence takes: (d_c + dr)·element size (bf16: 2).
  int64_t bytes_per_token() const;
  int64_t capacity_bytes() const { return batch_ * max_len_ * bytes_per_token(); }

 private:
  int64_t batch_, max_len_, latent_dim_, rope_dim_;
  CacheBuffer rows_;
};

}  // namespace attnlab
