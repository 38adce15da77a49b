#include "attnlab/tensor/reference/rms_norm_reference.hpp"

#include <cmath>
#include <vector>

namespace attnlab::reference {
namespace {

Shape rows_shape(const Tensor& x) {
  return Shape(x.shape().begin(), x.shape().end() - 1);
}

// rstd of every row of x [N, D].
std::vector<double> row_rstd(const std::vector<double>& x, int64_t N, int64_t D, double eps) {
  std::vector<double> rstd(N);
  for (int64_t i = 0; i < N; ++i) {
    double sum_sq = 0;
    for (int64_t c = 0; c < D; ++c) sum_sq += x[i * D + c] * x[i * D + c];
    rstd[i] = 1 / std::sqrt(sum_sq / static_cast<double>(D) + eps);
  }
  return rstd;
}

}  // namespace

RmsNormOutput rms_norm_forward(const Tensor& x_t, const Tensor& w_t, double eps) {
  const int64_t D = x_t.size(-1), N = x_t.numel() / D;
  const std::vector<double> x = x_t.to_vector(), w = w_t.to_vector();
  const std::vector<double> rstd = row_rstd(x, N, D, eps);
  std::vector<double> y(N * D);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t c = 0; c < D; ++c) y[i * D + c] = x[i * D + c] * rstd[i] * w[c];
  return {Tensor::from_data<double>(x_t.shape(), y),
          Tensor::from_data<double>(rows_shape(x_t), rstd)};
}

RmsNormGradients rms_norm_backward(const Tensor& g_t, const Tensor& x_t, const Tensor& w_t,
                                   double eps) {
  const int64_t D = x_t.size(-1), N = x_t.numel() / D;
  const std::vector<double> x = x_t.to_vector(), w = w_t.to_vector(), g = g_t.to_vector();
  const std::vector<double> rstd = row_rstd(x, N, D, eps);
  std::vector<double> dx(N * D), dw(D, 0.0);
  for (int64_t i = 0; i < N; ++i) {
    double mean_gwx = 0;  // mean(g⊙w⊙x̂)
    for (int64_t c = 0; c < D; ++c)
      mean_gwx += g[i * D + c] * w[c] * x[i * D + c] * rstd[i] / static_cast<double>(D);
    for (int64_t c = 0; c < D; ++c) {
      const double xhat = x[i * D + c] * rstd[i];
      dx[i * D + c] = rstd[i] * (g[i * D + c] * w[c] - xhat * mean_gwx);
      dw[c] += g[i * D + c] * xhat;
    }
  }
  return {Tensor::from_data<double>(x_t.shape(), dx), Tensor::from_data<double>({D}, dw)};
}

}  // namespace attnlab::reference
