#include "attnlab/tensor/reference/swiglu_reference.hpp"

#include <cmath>
#include <vector>

namespace attnlab::reference {

Tensor swiglu_forward(const Tensor& gate, const Tensor& up) {
  const std::vector<double> a = gate.to_vector(), b = up.to_vector();
  std::vector<double> y(a.size());
  for (size_t i = 0; i < a.size(); ++i) y[i] = a[i] / (1 + std::exp(-a[i])) * b[i];
  return Tensor::from_data<double>(gate.shape(), y);
}

SwiGluGradients swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up) {
  const std::vector<double> a = gate.to_vector(), b = up.to_vector(), g = dout.to_vector();
  std::vector<double> da(a.size()), db(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const double s = 1 / (1 + std::exp(-a[i]));
    da[i] = g[i] * b[i] * s * (1 + a[i] * (1 - s));
    db[i] = g[i] * a[i] * s;
  }
  return {Tensor::from_data<double>(gate.shape(), da), Tensor::from_data<double>(gate.shape(), db)};
}

}  // namespace attnlab::reference
