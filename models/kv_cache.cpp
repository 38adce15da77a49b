#include "attnlab/models/kv_cache.hpp"

namespace attnlab {
namespace {

void check_sizes(int64_t batch, int64_t max_len, int64_t a, int64_t b, const char* what) {
  ATTN_CHECK(batch > 0 && max_len > 0 && a > 0 && b >= 0,
             "{}: sizes must be positive, got batch {}, max_len {}, {} and {}", what, batch,
             max_len, a, b);
}

}  // namespace

std::string_view kv_cache_format_name(KvCacheFormat format) {
  return format == KvCacheFormat::BF16 ? "bf16" : "f32";
}

KvCacheFormat parse_kv_cache_format(std::string_view name) {
  if (name == "f32") return KvCacheFormat::F32;
  if (name == "bf16") return KvCacheFormat::BF16;
  throw Error(fmt::format("unknown KV cache format '{}': use f32 or bf16", name));
}

// Zeroed, so that a cache is never read uninitialised even by a buggy caller
// (the attention only reads the filled positions).
CacheBuffer::CacheBuffer(const Shape& shape, DType dtype, KvCacheFormat format) {
  if (format == KvCacheFormat::BF16) {
    ATTN_CHECK(dtype == DType::F32, "a bf16 KV cache needs an f32 decoder, not {}",
               dtype_name(dtype));
    bf16_ = std::make_unique<uint16_t[]>(shape_numel(shape));  // value-initialised: zeros
  } else {
    dense_ = Tensor::zeros(shape, dtype);
  }
}

KvCache::KvCache(int64_t batch, int64_t max_len, int64_t kv_heads, int64_t head_dim, DType dtype,
                 KvCacheFormat format)
    : batch_((check_sizes(batch, max_len, kv_heads, head_dim, "KvCache"), batch)),
      max_len_(max_len),
      kv_heads_(kv_heads),
      head_dim_(head_dim),
      keys_({batch, max_len, kv_heads, head_dim}, dtype, format),
      values_({batch, max_len, kv_heads, head_dim}, dtype, format) {}

int64_t KvCache::bytes_per_token() const {
  return 2 * kv_heads_ * head_dim_ * keys_.element_size();
}

LatentKvCache::LatentKvCache(int64_t batch, int64_t max_len, int64_t latent_dim, int64_t rope_dim,
                             DType dtype, KvCacheFormat format)
    : batch_((check_sizes(batch, max_len, latent_dim, rope_dim, "LatentKvCache"), batch)),
      max_len_(max_len),
      latent_dim_(latent_dim),
      rope_dim_(rope_dim),
      rows_({batch, max_len, rope_dim + latent_dim}, dtype, format) {}

int64_t LatentKvCache::bytes_per_token() const {
  return (latent_dim_ + rope_dim_) * rows_.element_size();
}

}  // namespace attnlab
