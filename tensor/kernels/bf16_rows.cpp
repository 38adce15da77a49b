// tensor/bf16_rows.hpp: scores against and mixtures of bf16 rows (the
// decoder's bf16 KV cache), widened to f32 in registers.
//
//   scores  each s[r, j] is DotRowsPlain (simd-inl.hpp, packed_linear's f32
//           and bf16 dot product) of key row j with query row r, query rows
//           taken 4 at a time so that a key is read once for all of them.
//   mix     o[r, c…c+L) accumulates p[r, j] · v_j[c…c+L) over j in order,
//           one vector per row, up to 4 rows sharing each widened chunk.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kernels/bf16_rows.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "attnlab/tensor/bf16_rows.hpp"
#include "attnlab/tensor/kernels/simd-inl.hpp"
#include "attnlab/tensor/packed_matrix.hpp"

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {

void Bf16RowsScores(const float* q, int64_t ldq, int64_t m, const uint16_t* rows, int64_t ld,
                    int64_t n, int64_t k, float alpha, float* s, int64_t lds) {
  constexpr int64_t R = 4;
  const size_t dim = static_cast<size_t>(k);
  for (int64_t r0 = 0; r0 < m; r0 += R) {
    const int64_t count = std::min(R, m - r0);
    const float* qs[R];
    for (int64_t r = 0; r < count; ++r) qs[r] = q + (r0 + r) * ldq;
    float dots[R];
    for (int64_t j = 0; j < n; ++j) {
      const uint16_t* key = rows + j * ld;
      if (count == R) {
        DotRowsPlain<R>(key, qs, dim, dots);
      } else {
        for (int64_t r = 0; r < count; ++r) DotRowsPlain<1>(key, qs + r, dim, dots + r);
      }
      for (int64_t r = 0; r < count; ++r) s[(r0 + r) * lds + j] = alpha * dots[r];
    }
  }
}

void Bf16RowsMix(const float* p, int64_t ldp, int64_t m, const uint16_t* rows, int64_t ld,
                 int64_t n, int64_t k, float* o, int64_t ldo) {
  constexpr int64_t R = 4;
  const hn::ScalableTag<float> d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r0 = 0; r0 < m; r0 += R) {
    const int64_t count = std::min(R, m - r0);
    for (int64_t c = 0; c < k; c += L) {
      const size_t width = static_cast<size_t>(std::min(L, k - c));
      hn::Vec<decltype(d)> acc[R];
      for (int64_t r = 0; r < R; ++r) acc[r] = hn::Zero(d);
      for (int64_t j = 0; j < n; ++j) {
        const auto v = LoadWeights(d, rows + j * ld, static_cast<size_t>(c), width);
        for (int64_t r = 0; r < count; ++r)
          acc[r] = hn::MulAdd(hn::Set(d, p[(r0 + r) * ldp + j]), v, acc[r]);
      }
      for (int64_t r = 0; r < count; ++r) {
        float* dst = o + (r0 + r) * ldo + c;
        if (width == hn::Lanes(d))
          hn::StoreU(acc[r], d, dst);
        else
          StoreTail(d, acc[r], dst, width);
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {

HWY_EXPORT(Bf16RowsScores);
HWY_EXPORT(Bf16RowsMix);

void round_to_bf16(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = float_to_bf16(x[i]);
}

void widen_bf16(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(x[i]);
}

void bf16_rows_scores(const float* q, int64_t ldq, int64_t m, const uint16_t* rows, int64_t ld,
                      int64_t n, int64_t k, float alpha, float* s, int64_t lds) {
  HWY_DYNAMIC_DISPATCH(Bf16RowsScores)(q, ldq, m, rows, ld, n, k, alpha, s, lds);
}

void bf16_rows_mix(const float* p, int64_t ldp, int64_t m, const uint16_t* rows, int64_t ld,
                   int64_t n, int64_t k, float* o, int64_t ldo) {
  HWY_DYNAMIC_DISPATCH(Bf16RowsMix)(p, ldp, m, rows, ld, n, k, o, ldo);
}

}  // namespace attnlab
#endif  // HWY_ONCE
