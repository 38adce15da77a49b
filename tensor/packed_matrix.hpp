// Weight matrices stored for reading fast: f32, bf16, or int8 with one f32
// scale per group of 32 along a row (llama.cpp's Q8_0 layout, with an f32
// scale where Q8_0 has an f16 one), and the product of activations with them.
//
// A decoded token at batch 1 is a string of matrix-vector products, and a
// matrix-vector product is bound by the bytes of the matrix it reads, not by
// arithmetic: 4 bytes per weight in f32, 2 in bf16, 1 + 4/32 in int8. So the
// products here run on the stored format directly, widening each weight to
// f32 in registers (Highway: bf16 → f32 is a 16-bit shift; int8 → i32 → f32),
// and accumulate in f32.
//
//   bf16   w = the upper 16 bits of the f32 rounded to nearest (ties to even):
//          |w − w_f32| ≤ 2⁻⁸ |w_f32|.
//   int8   per row, per group g of 32 consecutive columns (the last group of a
//          row may be shorter): s_g = max |w| over the group / 127,
//          q = round(w / s_g) ∈ [−127, 127] (ties to even), w = q · s_g:
//          |w − w_f32| ≤ s_g / 2 (and 0 for a group of zeros, s_g = 0).
//
// packed_linear computes out = x · Wᵀ (+ out): every element of out is one
// dot product taken in one fixed order (lanes of the target's vector width,
// two accumulators, a group's partial sum scaled once for int8), the same
// whatever the number of rows of x in the call and the number of threads:
// a row decoded alone and the same row inside a batch give the same bits.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

enum class WeightFormat { F32, BF16, Int8 };

// "f32", "bf16", "int8"; parse_weight_format refuses anything else, listing them.
std::string_view weight_format_name(WeightFormat format);
WeightFormat parse_weight_format(std::string_view name);

// Columns per int8 scale.
inline constexpr int64_t kInt8GroupSize = 32;

// f32 ↔ bf16 bits (round to nearest, ties to even; NaN stays NaN).
uint16_t float_to_bf16(float x);
float bf16_to_float(uint16_t bits);

class PackedMatrix {
 public:
  PackedMatrix() = default;
  // w [rows, cols] (f32 or f64, any layout) in the given format; f64 is
  // rounded to f32 first. F32 of a contiguous f32 tensor shares its storage.
  static PackedMatrix pack(const Tensor& w, WeightFormat format);
  // From stored data (a checkpoint's): bf16 bits [rows·cols], or int8 values
  // [rows·cols] and scales [rows·groups(cols)]. Sizes are checked.
  static PackedMatrix from_bf16(int64_t rows, int64_t cols, std::span<const uint16_t> bits);
  static PackedMatrix from_int8(int64_t rows, int64_t cols, std::span<const int8_t> values,
                                std::span<const float> scales);
  // The rows of the parts, one after the other (all of one format and width).
  static PackedMatrix stack_rows(const std::vector<PackedMatrix>& parts);
  // Rows [begin, begin + count), a copy.
  PackedMatrix narrow_rows(int64_t begin, int64_t count) const;

  WeightFormat format() const { return format_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  static int64_t groups(int64_t cols) { return (cols + kInt8GroupSize - 1) / kInt8GroupSize; }
  // Bytes one product reads: values and scales.
  int64_t bytes() const;

  // The values the products compute with, as a new [rows, cols] tensor.
  Tensor unpack(DType dtype = DType::F32) const;
  // Row r of it into out [cols]; all rows into out [rows·cols].
  void unpack_row(int64_t r, float* out) const;
  void unpack_into(float* out) const;

  // F32: [rows·cols]
  std::span<const float> f32_values() const {
    return f32_.defined() ? std::span<const float>(f32_.data<float>(), f32_.numel())
                          : std::span<const float>();
  }
  std::span<const uint16_t> bf16_bits() const { return bf16_; }   // BF16: [rows·cols]
  std::span<const int8_t> int8_values() const { return int8_; }   // Int8: [rows·cols]
  std::span<const float> int8_scales() const { return scales_; }  // Int8: [rows·groups]

 private:
  WeightFormat format_ = WeightFormat::F32;
  int64_t rows_ = 0, cols_ = 0;
  Tensor f32_;  // [rows, cols], contiguous
  std::vector<uint16_t> bf16_;
  std::vector<int8_t> int8_;
  std::vector<float> scales_;
};

// out [rows, n] (row stride ldo) = x [rows, k] (row stride ldx) · wᵀ + beta ·
// out, w [n, k] packed; beta is 0 or 1 (with 0, out is not read). Output
// rows of w are shared among the threads in fixed blocks.
void packed_linear(float* out, int64_t ldo, const float* x, int64_t ldx, int64_t rows,
                   const PackedMatrix& w, float beta);

}  // namespace attnlab
