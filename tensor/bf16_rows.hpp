// Rows of bf16 numbers read as f32: what the decoder's bf16 KV cache
// (models/kv_cache.hpp) needs. A cached token is a row of bf16 bits (the
// upper half of an f32, rounded to nearest even: float_to_bf16 of
// tensor/packed_matrix.hpp); the attention over the cache widens each row to
// f32 in registers (a 16-bit shift, exact) and computes in f32, so the cache
// is read in half the bytes of an f32 cache.
//
// Each output element is computed in one fixed order that depends on the
// sizes alone (not on m, nor on which other rows are in the call): a
// sequence's scores are the same bits in a batch or alone.
#pragma once

#include <cstdint>

namespace attnlab {

// out[i] = the bf16 rounding of x[i] (to nearest, ties to even), i < n.
void round_to_bf16(const float* x, uint16_t* out, int64_t n);
// out[i] = x[i] widened to f32 (exact), i < n.
void widen_bf16(const uint16_t* x, float* out, int64_t n);

// s[r·lds + j] = alpha · Σ_c q[r·ldq + c] · rows[j·ld + c]  for r < m, j < n,
// c < k: m query rows scored against n bf16 rows (keys), each key read once
// for all m queries. Each dot product is packed_linear's bf16 dot product.
void bf16_rows_scores(const float* q, int64_t ldq, int64_t m, const uint16_t* rows, int64_t ld,
                      int64_t n, int64_t k, float alpha, float* s, int64_t lds);

// o[r·ldo + c] = Σ_j p[r·ldp + j] · rows[j·ld + c]  for r < m, c < k, j < n
// (summed in the order of j): m probability rows mixing n bf16 rows (values).
void bf16_rows_mix(const float* p, int64_t ldp, int64_t m, const uint16_t* rows, int64_t ld,
                   int64_t n, int64_t k, float* o, int64_t ldo);

}  // namespace attnlab
