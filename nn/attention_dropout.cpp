#include "attnlab/nn/attention_dropout.hpp"

#include <limits>

namespace attnlab {
namespace {

// (B, T, Hkv, d) → (B, H, T, d), each KV head repeated for the H/Hkv query
// heads that read it.
Variable heads_first(const Variable& x, int64_t heads) {
  const int64_t kv_heads = x.size(2);
  Variable per_head = permute(x, {2, 0, 1, 3});  // (Hkv, B, T, d)
  if (kv_heads != heads) {
    std::vector<int32_t> source(heads);
    for (int64_t h = 0; h < heads; ++h) source[h] = static_cast<int32_t>(h / (heads / kv_heads));
    per_head = index_select(per_head, source);  // (H, B, T, d)
  }
  return permute(per_head, {1, 0, 2, 3});  // (B, H, T, d)
}

}  // namespace

Variable causal_attention_with_dropout(const Variable& q, const Variable& k, const Variable& v,
                                       double scale, double p, Rng& rng) {
  const int64_t T = q.size(1), H = q.size(2);
  ATTN_CHECK(k.size(2) > 0 && H % k.size(2) == 0, "n_kv_heads ({}) must divide n_heads ({})",
             k.size(2), H);
  const Variable qh = permute(q, {0, 2, 1, 3});  // (B, H, T, dk)
  const Variable kh = heads_first(k, H), vh = heads_first(v, H);
  const Variable s = mul_scalar(matmul(qh, transpose(kh, -1, -2)), scale);  // (B, H, T, T)
  Tensor future = Tensor::zeros({T, T}, q.dtype());  // 1 where key j lies after query i
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = i + 1; j < T; ++j) future.narrow(0, i, 1).narrow(1, j, 1).fill_(1.0);
  const Variable probs =
      dropout(softmax(masked_fill(s, future, -std::numeric_limits<double>::infinity())), p, rng);
  const Variable o = matmul(probs, vh);  // (B, H, T, dv)
  return permute(o, {0, 2, 1, 3});       // (B, T, H, dv)
}

}  // namespace attnlab
