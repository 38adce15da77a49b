// Weight matrices stored for reading fast: f32, bf16, or int8 with one f32
// scale per group of 32 along a row (llama.cpp's Q8_0 layout, with an f32
// scale where Q8_0 has an f16 one), and the product of activations with them.
//
// A decoded token at batch 1 is a string of matrix-vector products, and a
// matrix-vector product is bound by the bytes of the matrix it reads, not by
// arithmetic: 4 bytes per weight in f32, 2 in bf16, 1 + 4/32 in int8. So the
// products here run on the stored format directly. f32 and bf16 widen each
// weight to f32 in registers (bf16 → f32 is a 16-bit shift) and accumulate in
// f32. int8 goes the way of llama.cpp: the activations are quantized too, per
// row and group of 32 (quantize_rows below), each group's dot product is
// taken in integers (exact: |dot| ≤ 32·127² < 2²⁴) and only the group
// results are combined in f32 (int8_dot_reference says in which order).
//
//   bf16   w = the upper 16 bits of the f32 rounded to nearest (ties to even):
//          |w − w_f32| ≤ 2⁻⁸ |w_f32|.
//   int8   per row, per group g of 32 consecutive columns (the last group of a
//          row may be shorter): s_g = max |w| over the group / 127,
//          q = round(w / s_g) ∈ [−127, 127] (ties to even), w = q · s_g:
//          |w − w_f32| ≤ s_g / 2 (and 0 for a group of zeros, s_g = 0).
//
// packed_linear computes out = x · Wᵀ (+ out): every element of out is one
// dot product taken in one fixed order (f32, bf16: lanes of the target's
// vector width, two accumulators; int8: int8_dot_reference's order, the same
// on every CPU), the same whatever the number of rows of x in the call and
// the number of threads: a row decoded alone and the same row inside a batch
// give the same bits. int8 products give the same bits on every x86 CPU too
// (AVX-512 VNNI, AVX2, or the portable loop).
//
// The int8 tile layout (in memory only; a checkpoint stores plain rows). The
// kernels want one i32 lane per group, so a row's groups are taken 16 at a
// time (a block; the last block of a row may hold fewer, n), and a block is
// stored as 8 slices of 4·n bytes: slice t holds bytes [4t, 4t + 4) of each
// of the block's groups in turn. An AVX-512 VNNI instruction (vpdpbusd) on a
// slice adds 4 products into each group's lane; 8 slices make the group's
// dot product, with no shuffles. A row of tiles has groups · 32 bytes (a
// shorter last group is padded with zeros). A row of 4 groups (97 … 128
// columns, baby's d_model) would fill a quarter of the vector: that kernel
// takes 4 rows of W per instruction instead (packed_linear.cpp), the same bits.
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
  std::span<const uint16_t> bf16_bits() const { return bf16_; }  // BF16: [rows·cols]
  // Int8: the values as a checkpoint stores them, [rows·cols] row by row, read
  // back from the tile layout (only the tiles are kept in memory).
  std::vector<int8_t> int8_values() const;
  std::span<const float> int8_scales() const { return scales_; }  // Int8: [rows·groups]
  // Int8: the values in the tile layout, [rows · groups·32].
  std::span<const int8_t> int8_tiles() const { return tiles_; }

 private:
  WeightFormat format_ = WeightFormat::F32;
  int64_t rows_ = 0, cols_ = 0;
  Tensor f32_;  // [rows, cols], contiguous
  std::vector<uint16_t> bf16_;
  std::vector<float> scales_;
  std::vector<int8_t> tiles_;  // Int8: the values in the tile layout, what the product reads

  void build_tiles(std::span<const int8_t> values);  // values [rows·cols], row by row
};

// Where column c of a row of `groups` groups sits in the tile layout.
int64_t int8_tile_offset(int64_t c, int64_t groups);
// A row of int8 values [cols] into the tile layout [groups(cols)·32].
void tile_int8_row(const int8_t* values, int64_t cols, int8_t* tiles);

// Rows of activations quantized for the int8 product, each row per group g
// of 32 columns as the weights are: s_g = max |x| over the group / 127,
// q = round(x / s_g) (to nearest, ties to even) ∈ [−127, 127], x ≈ q · s_g
// with |x − q · s_g| ≤ s_g / 2 (a group of zeros: s_g = 0, q = 0).
struct QuantizedRows {
  int64_t rows = 0, cols = 0, groups = 0;
  std::vector<int8_t> tiles;  // [rows · groups·32], the tile layout
  std::vector<float> scales;  // [rows · groups]
  std::vector<int32_t> sums;  // [rows · groups]: Σ q over the group
};
// x [rows, cols] (row stride ldx) into q (its buffers reused).
void quantize_rows(const float* x, int64_t ldx, int64_t rows, int64_t cols, QuantizedRows& q);

// One int8 dot product, the order every target follows (so that all give
// the same bits): for each group g, dot_g = Σ w·x over the group, exact in
// int32; lane j = g mod 16 accumulates acc_j = fma(f32(dot_g), s_w,g · s_x,g,
// acc_j) over the blocks in turn; then the 16 lanes are summed as a tree:
// acc_i += acc_(i+h) for h = 8, 4, 2, 1; the result is acc_0. w, x: one row
// of tiles each; their scales [groups].
// The int8 product's path on this CPU: "avx512-vnni", "avx2" or "portable".
std::string_view int8_kernel_name();

float int8_dot_reference(const int8_t* w_tiles, const float* w_scales, const int8_t* x_tiles,
                         const float* x_scales, int64_t groups);

// out [rows, n] (row stride ldo) = x [rows, k] (row stride ldx) · wᵀ + beta ·
// out, w [n, k] packed; beta is 0 or 1 (with 0, out is not read). Output
// rows of w are shared among the threads in fixed blocks. int8: x is
// quantized first (quantize_rows), so out is not x · unpack(w)ᵀ but that with
// x rounded too.
void packed_linear(float* out, int64_t ldo, const float* x, int64_t ldx, int64_t rows,
                   const PackedMatrix& w, float beta);

}  // namespace attnlab
