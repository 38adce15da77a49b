#include "attnlab/tensor/reference/rope_reference.hpp"

#include <cmath>
#include <vector>

namespace attnlab::reference {
namespace {

// Rotates the first r channels of every head of x by direction · angle.
Tensor rotate(const Tensor& x_t, int64_t r, double theta, int64_t offset, double direction) {
  ATTN_CHECK(x_t.dim() == 4 && r >= 0 && r % 2 == 0 && r <= x_t.size(3),
             "reference rope: x {} with r = {}", shape_str(x_t.shape()), r);
  const int64_t B = x_t.size(0), T = x_t.size(1), H = x_t.size(2), d = x_t.size(3);
  std::vector<double> x = x_t.to_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        double* v = x.data() + ((b * T + t) * H + h) * d;
        for (int64_t j = 0; j < r / 2; ++j) {
          const double theta_j =
              std::pow(theta, -2.0 * static_cast<double>(j) / static_cast<double>(r));
          const double angle = direction * static_cast<double>(offset + t) * theta_j;
          const double x0 = v[2 * j], x1 = v[2 * j + 1];
          v[2 * j] = x0 * std::cos(angle) - x1 * std::sin(angle);
          v[2 * j + 1] = x0 * std::sin(angle) + x1 * std::cos(angle);
        }
      }
  return Tensor::from_data<double>(x_t.shape(), x);
}

}  // namespace

Tensor rope_forward(const Tensor& x, int64_t rotary_dims, double theta, int64_t offset) {
  return rotate(x, rotary_dims, theta, offset, 1.0);
}

Tensor rope_backward(const Tensor& dout, int64_t rotary_dims, double theta, int64_t offset) {
  return rotate(dout, rotary_dims, theta, offset, -1.0);
}

}  // namespace attnlab::reference
