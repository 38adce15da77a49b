// RoPE kernels: the math is in rope.hpp.
#include "attnlab/tensor/rope.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace attnlab {
namespace {

// cos(p·θ_j) and sin(p·θ_j) for positions p in [first, first + count), j < r/2,
// computed in double and stored in T, row p − first.
template <typename T>
struct RopeTable {
  int64_t rotary_dims = 0;
  double theta = 0;
  int64_t first = 0, count = 0;
  std::vector<T> cos, sin;        // [count, r/2]
  std::vector<double> frequency;  // θ_j

  RopeTable(int64_t r, double th, int64_t first_position)
      : rotary_dims(r), theta(th), first(first_position), frequency(r / 2) {
    for (int64_t j = 0; j < r / 2; ++j)
      frequency[j] = std::pow(theta, -2.0 * static_cast<double>(j) / static_cast<double>(r));
  }
  // Adds the rows of positions [first + count, first + new_count).
  void extend(int64_t new_count) {
    const int64_t half = rotary_dims / 2;
    cos.resize(new_count * half);
    sin.resize(new_count * half);
    for (int64_t i = count; i < new_count; ++i)
      for (int64_t j = 0; j < half; ++j) {
        const double angle = static_cast<double>(first + i) * frequency[j];
        cos[i * half + j] = static_cast<T>(std::cos(angle));
        sin[i * half + j] = static_cast<T>(std::sin(angle));
      }
    count = new_count;
  }
};

// Tables from position 0 are kept per thread for the last few (r, theta)
// pairs and grown on demand: a model has one or two pairs, and its positions
// stay below max_seq_len. Positions beyond kCachedPositions get a table of
// their own for the call.
constexpr int64_t kCachedPositions = int64_t{1} << 16;
constexpr size_t kCachedTables = 8;

template <typename T>
const RopeTable<T>& rope_table(int64_t r, double theta, int64_t first, int64_t count) {
  const int64_t end = first + count;
  if (end > kCachedPositions) {
    thread_local std::unique_ptr<RopeTable<T>> own;
    own = std::make_unique<RopeTable<T>>(r, theta, first);
    own->extend(count);
    return *own;
  }
  thread_local std::vector<std::unique_ptr<RopeTable<T>>> cache;
  auto it = std::find_if(cache.begin(), cache.end(),
                         [&](const auto& t) { return t->rotary_dims == r && t->theta == theta; });
  if (it == cache.end()) {
    if (cache.size() == kCachedTables) cache.erase(cache.begin());
    cache.push_back(std::make_unique<RopeTable<T>>(r, theta, 0));
    it = cache.end() - 1;
  }
  RopeTable<T>& table = **it;
  if (table.count < end) table.extend(std::min(kCachedPositions, (end + 255) / 256 * 256));
  return table;
}

constexpr int64_t kParallelElements = int64_t{1} << 16;

// out (B, T, heads, d) ← x rotated by +angle (kInverse: by −angle)
template <bool kInverse, typename T>
void rotate(T* out, const T* x, const RopeDims& dims) {
  const int64_t T_len = dims.tokens, heads = dims.heads, d = dims.head_dim;
  const int64_t half = dims.rotary_dims / 2, rows = dims.batch * T_len;
  if (rows == 0 || heads == 0 || d == 0) return;
  if (half == 0) {
    if (out != x) std::copy(x, x + rows * heads * d, out);
    return;
  }
  const RopeTable<T>& table =
      rope_table<T>(dims.rotary_dims, dims.theta, dims.position_offset, T_len);
#pragma omp parallel for schedule(static) if (rows * heads * d >= kParallelElements)
  for (int64_t bt = 0; bt < rows; ++bt) {
    const int64_t row = dims.position_offset + bt % T_len - table.first;
    const T* cos = table.cos.data() + row * half;
    const T* sin = table.sin.data() + row * half;
    for (int64_t h = 0; h < heads; ++h) {
      const T* xr = x + (bt * heads + h) * d;
      T* yr = out + (bt * heads + h) * d;
      for (int64_t j = 0; j < half; ++j) {
        const T x0 = xr[2 * j], x1 = xr[2 * j + 1];
        const T c = cos[j], s = kInverse ? -sin[j] : sin[j];
        yr[2 * j] = x0 * c - x1 * s;
        yr[2 * j + 1] = x0 * s + x1 * c;
      }
      if (out != x) std::copy(xr + 2 * half, xr + d, yr + 2 * half);
    }
  }
}

void check_rope(const Tensor& x, int64_t r, double theta, int64_t offset, const char* what) {
  ATTN_CHECK(x.dim() == 4, "{}: x must be [B, T, heads, d], got shape {}", what,
             shape_str(x.shape()));
  ATTN_CHECK(r >= 0 && r % 2 == 0 && r <= x.size(3),
             "{}: rotary_dims must be even and in [0, d = {}], got {} (x {})", what, x.size(3), r,
             shape_str(x.shape()));
  ATTN_CHECK(std::isfinite(theta) && theta > 0, "{}: theta must be positive, got {}", what, theta);
  ATTN_CHECK(offset >= 0, "{}: position_offset must be ≥ 0, got {}", what, offset);
}

template <bool kInverse>
Tensor rotate_tensor(const Tensor& x_in, int64_t r, double theta, int64_t offset,
                     const char* what) {
  check_rope(x_in, r, theta, offset, what);
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const RopeDims dims{x.size(0), x.size(1), x.size(2), x.size(3), r, theta, offset};
  dispatch_dtype(x.dtype(),
                 [&]<typename T>() { rotate<kInverse>(out.data<T>(), x.data<T>(), dims); });
  return out;
}

}  // namespace

template <typename T>
void rope_forward(T* out, const T* x, const RopeDims& dims) {
  rotate<false>(out, x, dims);
}
template <typename T>
void rope_backward(T* dx, const T* dout, const RopeDims& dims) {
  rotate<true>(dx, dout, dims);
}
template void rope_forward<float>(float*, const float*, const RopeDims&);
template void rope_forward<double>(double*, const double*, const RopeDims&);
template void rope_backward<float>(float*, const float*, const RopeDims&);
template void rope_backward<double>(double*, const double*, const RopeDims&);

Tensor rope_forward(const Tensor& x, int64_t rotary_dims, double theta, int64_t position_offset) {
  return rotate_tensor<false>(x, rotary_dims, theta, position_offset, "rope");
}
Tensor rope_backward(const Tensor& dout, int64_t rotary_dims, double theta,
                     int64_t position_offset) {
  return rotate_tensor<true>(dout, rotary_dims, theta, position_offset, "rope backward");
}

}  // namespace attnlab
