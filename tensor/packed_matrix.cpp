// Packing, unpacking and the checks of tensor/packed_matrix.hpp; the product
// is in kernels/packed_linear.cpp.
#include "attnlab/tensor/packed_matrix.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace attnlab {

std::string_view weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::F32:
      return "f32";
    case WeightFormat::BF16:
      return "bf16";
    case WeightFormat::Int8:
      return "int8";
  }
  return "?";
}

WeightFormat parse_weight_format(std::string_view name) {
  for (WeightFormat f : {WeightFormat::F32, WeightFormat::BF16, WeightFormat::Int8})
    if (name == weight_format_name(f)) return f;
  throw Error(fmt::format("unknown weight format '{}': use f32, bf16 or int8", name));
}

uint16_t float_to_bf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if (std::isnan(x)) return static_cast<uint16_t>((bits >> 16) | 0x0040);  // stays a NaN
  // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit.
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

PackedMatrix PackedMatrix::pack(const Tensor& w, WeightFormat format) {
  ATTN_CHECK(w.dim() == 2, "pack: a matrix is 2-D, got shape {}", shape_str(w.shape()));
  const Tensor m = w.to(DType::F32).contiguous();
  PackedMatrix p;
  p.format_ = format;
  p.rows_ = m.size(0);
  p.cols_ = m.size(1);
  const float* src = m.data<float>();
  const int64_t n = p.rows_ * p.cols_;
  switch (format) {
    case WeightFormat::F32:
      p.f32_ = m;
      break;
    case WeightFormat::BF16:
      p.bf16_.resize(n);
      for (int64_t i = 0; i < n; ++i) p.bf16_[i] = float_to_bf16(src[i]);
      break;
    case WeightFormat::Int8: {
      const int64_t G = groups(p.cols_);
      std::vector<int8_t> values(n);
      p.scales_.resize(p.rows_ * G);
      for (int64_t r = 0; r < p.rows_; ++r)
        for (int64_t g = 0; g < G; ++g) {
          const int64_t c0 = g * kInt8GroupSize, c1 = std::min(p.cols_, c0 + kInt8GroupSize);
          const float* x = src + r * p.cols_;
          float amax = 0;
          for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::abs(x[c]));
          const float s = amax / 127.0f;
          p.scales_[r * G + g] = s;
          for (int64_t c = c0; c < c1; ++c) {
            const float q = s == 0.0f ? 0.0f : std::nearbyint(x[c] / s);
            values[r * p.cols_ + c] = static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
          }
        }
      p.build_tiles(values);
      break;
    }
  }
  return p;
}

PackedMatrix PackedMatrix::from_bf16(int64_t rows, int64_t cols, std::span<const uint16_t> bits) {
  ATTN_CHECK(rows >= 0 && cols >= 0 && static_cast<int64_t>(bits.size()) == rows * cols,
             "bf16 matrix [{}, {}]: {} values", rows, cols, bits.size());
  PackedMatrix p;
  p.format_ = WeightFormat::BF16;
  p.rows_ = rows;
  p.cols_ = cols;
  p.bf16_.assign(bits.begin(), bits.end());
  return p;
}

PackedMatrix PackedMatrix::from_int8(int64_t rows, int64_t cols, std::span<const int8_t> values,
                                     std::span<const float> scales) {
  ATTN_CHECK(rows >= 0 && cols >= 0 && static_cast<int64_t>(values.size()) == rows * cols,
             "int8 matrix [{}, {}]: {} values", rows, cols, values.size());
  ATTN_CHECK(static_cast<int64_t>(scales.size()) == rows * groups(cols),
             "int8 matrix [{}, {}]: {} scales, needs {} (one per group of {} columns of a row)",
             rows, cols, scales.size(), rows * groups(cols), kInt8GroupSize);
  for (float s : scales)
    ATTN_CHECK(std::isfinite(s) && s >= 0, "int8 matrix: a scale is {}, not finite and ≥ 0", s);
  PackedMatrix p;
  p.format_ = WeightFormat::Int8;
  p.rows_ = rows;
  p.cols_ = cols;
  p.scales_.assign(scales.begin(), scales.end());
  p.build_tiles(values);
  return p;
}

PackedMatrix PackedMatrix::stack_rows(const std::vector<PackedMatrix>& parts) {
  ATTN_CHECK(!parts.empty(), "stack_rows: no parts");
  PackedMatrix p;
  p.format_ = parts.front().format_;
  p.cols_ = parts.front().cols_;
  std::vector<Tensor> f32_parts;
  for (const PackedMatrix& m : parts) {
    if (m.f32_.defined()) f32_parts.push_back(m.f32_);
    ATTN_CHECK(m.format_ == p.format_ && m.cols_ == p.cols_,
               "stack_rows: parts of other formats or widths");
    p.rows_ += m.rows_;
    p.bf16_.insert(p.bf16_.end(), m.bf16_.begin(), m.bf16_.end());
    p.tiles_.insert(p.tiles_.end(), m.tiles_.begin(), m.tiles_.end());  // same width: rows follow
    p.scales_.insert(p.scales_.end(), m.scales_.begin(), m.scales_.end());
  }
  if (p.format_ == WeightFormat::F32) {
    p.f32_ = Tensor::empty({p.rows_, p.cols_}, DType::F32);
    int64_t at = 0;
    for (const Tensor& t : f32_parts) {
      p.f32_.narrow(0, at, t.size(0)).copy_(t);
      at += t.size(0);
    }
  }
  return p;
}

PackedMatrix PackedMatrix::narrow_rows(int64_t begin, int64_t count) const {
  ATTN_CHECK(begin >= 0 && count >= 0 && begin + count <= rows_, "narrow_rows: rows [{}, {}) of {}",
             begin, begin + count, rows_);
  PackedMatrix p;
  p.format_ = format_;
  p.rows_ = count;
  p.cols_ = cols_;
  const int64_t a = begin * cols_, b = (begin + count) * cols_, G = groups(cols_);
  if (f32_.defined()) p.f32_ = f32_.narrow(0, begin, count).contiguous();
  if (!bf16_.empty()) p.bf16_.assign(bf16_.begin() + a, bf16_.begin() + b);
  if (format_ == WeightFormat::Int8) {
    const int64_t width = G * kInt8GroupSize;  // a row of tiles
    p.tiles_.assign(tiles_.begin() + begin * width, tiles_.begin() + (begin + count) * width);
    p.scales_.assign(scales_.begin() + begin * G, scales_.begin() + (begin + count) * G);
  }
  return p;
}

int64_t PackedMatrix::bytes() const {
  return static_cast<int64_t>(f32_values().size() * 4 + bf16_.size() * 2 + tiles_.size() +
                              scales_.size() * 4);
}

void PackedMatrix::build_tiles(std::span<const int8_t> values) {
  const int64_t width = groups(cols_) * kInt8GroupSize;
  tiles_.assign(rows_ * width, 0);
  for (int64_t r = 0; r < rows_; ++r)
    tile_int8_row(values.data() + r * cols_, cols_, tiles_.data() + r * width);
}

std::vector<int8_t> PackedMatrix::int8_values() const {
  std::vector<int8_t> values;
  if (format_ != WeightFormat::Int8) return values;
  const int64_t G = groups(cols_), width = G * kInt8GroupSize;
  values.resize(rows_ * cols_);
  for (int64_t r = 0; r < rows_; ++r)
    for (int64_t c = 0; c < cols_; ++c)
      values[r * cols_ + c] = tiles_[r * width + int8_tile_offset(c, G)];
  return values;
}

// ------------------------------------------------------------- int8 tiles
int64_t int8_tile_offset(int64_t c, int64_t groups) {
  constexpr int64_t kBlock = 16;  // groups per block: one i32 lane each in a 512-bit vector
  const int64_t g = c / kInt8GroupSize, o = c % kInt8GroupSize;
  const int64_t b = g / kBlock, n = std::min(kBlock, groups - b * kBlock);
  return b * kBlock * kInt8GroupSize + (o / 4) * (4 * n) + (g % kBlock) * 4 + o % 4;
}

void tile_int8_row(const int8_t* values, int64_t cols, int8_t* tiles) {
  const int64_t G = PackedMatrix::groups(cols);
  std::fill(tiles, tiles + G * kInt8GroupSize, int8_t{0});
  for (int64_t c = 0; c < cols; ++c) tiles[int8_tile_offset(c, G)] = values[c];
}

void quantize_rows(const float* x, int64_t ldx, int64_t rows, int64_t cols, QuantizedRows& q) {
  const int64_t G = PackedMatrix::groups(cols), width = G * kInt8GroupSize;
  q.rows = rows;
  q.cols = cols;
  q.groups = G;
  q.tiles.resize(rows * width);
  q.scales.resize(rows * G);
  q.sums.resize(rows * G);
  int8_t plain[kInt8GroupSize];
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    int8_t* tr = q.tiles.data() + r * width;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t c0 = g * kInt8GroupSize, n = std::min(kInt8GroupSize, cols - c0);
      float amax = 0;
      for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(xr[c0 + i]));
      const float s = amax / 127.0f;
      int32_t sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float v = s == 0.0f ? 0.0f : std::nearbyint(xr[c0 + i] / s);
        plain[i] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
        sum += plain[i];
      }
      // Group g's 4-byte pieces, one per slice of its block (int8_tile_offset).
      const int64_t b = g / 16, width = 4 * std::min<int64_t>(16, G - b * 16);
      int8_t* dst = tr + b * 16 * kInt8GroupSize + (g % 16) * 4;
      for (int64_t i = n; i < kInt8GroupSize; ++i) plain[i] = 0;
      for (int64_t t = 0; t < 8; ++t) std::memcpy(dst + t * width, plain + 4 * t, 4);
      q.scales[r * G + g] = s;
      q.sums[r * G + g] = sum;
    }
  }
}

float int8_dot_reference(const int8_t* w_tiles, const float* w_scales, const int8_t* x_tiles,
                         const float* x_scales, int64_t groups) {
  float acc[16] = {};
  for (int64_t g = 0; g < groups; ++g) {
    int32_t dot = 0;
    for (int64_t o = 0; o < kInt8GroupSize; ++o) {
      const int64_t at = int8_tile_offset(g * kInt8GroupSize + o, groups);
      dot += static_cast<int32_t>(w_tiles[at]) * static_cast<int32_t>(x_tiles[at]);
    }
    float& a = acc[g % 16];
    a = std::fma(static_cast<float>(dot), w_scales[g] * x_scales[g], a);
  }
  for (int h = 8; h >= 1; h /= 2)
    for (int i = 0; i < h; ++i) acc[i] += acc[i + h];
  return acc[0];
}

void PackedMatrix::unpack_row(int64_t r, float* out) const {
  const int64_t at = r * cols_;
  switch (format_) {
    case WeightFormat::F32:
      std::memcpy(out, f32_.data<float>() + at, cols_ * sizeof(float));
      return;
    case WeightFormat::BF16:
      for (int64_t c = 0; c < cols_; ++c) out[c] = bf16_to_float(bf16_[at + c]);
      return;
    case WeightFormat::Int8: {
      const int64_t G = groups(cols_);
      const float* s = scales_.data() + r * G;
      const int8_t* t = tiles_.data() + r * G * kInt8GroupSize;
      for (int64_t c = 0; c < cols_; ++c)
        out[c] = static_cast<float>(t[int8_tile_offset(c, G)]) * s[c / kInt8GroupSize];
      return;
    }
  }
}

void PackedMatrix::unpack_into(float* out) const {
  for (int64_t r = 0; r < rows_; ++r) unpack_row(r, out + r * cols_);
}

Tensor PackedMatrix::unpack(DType dtype) const {
  Tensor out = Tensor::empty({rows_, cols_}, DType::F32);
  unpack_into(out.data<float>());
  return dtype == DType::F32 ? out : out.to(dtype);
}

}  // namespace attnlab
