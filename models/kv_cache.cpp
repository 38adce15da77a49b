#include "attnlab/models/kv_cache.hpp"

namespace attnlab {
namespace {

void check_sizes(int64_t batch, int64_t max_len, int64_t a, int64_t b, const char* what) {
  ATTN_CHECK(batch > 0 && max_len > 0 && a > 0 && b >= 0,
             "{}: sizes must be positive, got batch {}, max_len {}, {} and {}", what, batch,
             max_len, a, b);
}

}  // namespace

// Zeroed, so that a cache is never read uninitialised even by a buggy caller
// (the attention only reads the filled positions).
KvCache::KvCache(int64_t batch, int64_t max_len, int64_t kv_heads, int64_t head_dim, DType dtype)
    : batch_((check_sizes(batch, max_len, kv_heads, head_dim, "KvCache"), batch)),
      max_len_(max_len),
      kv_heads_(kv_heads),
      head_dim_(head_dim),
      keys_(Tensor::zeros({batch, max_len, kv_heads, head_dim}, dtype)),
      values_(Tensor::zeros({batch, max_len, kv_heads, head_dim}, dtype)) {}

int64_t KvCache::bytes_per_token() const {
  return 2 * kv_heads_ * head_dim_ * static_cast<int64_t>(dtype_size(dtype()));
}

LatentKvCache::LatentKvCache(int64_t batch, int64_t max_len, int64_t latent_dim, int64_t rope_dim,
                             DType dtype)
    : batch_((check_sizes(batch, max_len, latent_dim, rope_dim, "LatentKvCache"), batch)),
      max_len_(max_len),
      latent_dim_(latent_dim),
      rope_dim_(rope_dim),
      rows_(Tensor::zeros({batch, max_len, rope_dim + latent_dim}, dtype)) {}

int64_t LatentKvCache::bytes_per_token() const {
  return (latent_dim_ + rope_dim_) * static_cast<int64_t>(dtype_size(dtype()));
}

}  // namespace attnlab
