// Helpers for the nn/ tests: gradient checks of a layer with respect to its
// inputs and its parameters, and plain-loop references for RoPE and causal
// attention (written from docs/MODEL-SPEC.md, independent of the fused ops).
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "attnlab/nn/module.hpp"
#include "tests/autograd/gradcheck_util.hpp"

namespace attnlab::testing {

using Vars = std::vector<Variable>;

// Fills every parameter of m with normal(0, scale) values, so that gains of 1
// and biases of 0 do not hide a wrong gradient.
inline void randomize_parameters(Module& m, uint64_t seed = 11, double scale = 0.5) {
  uint64_t i = 0;
  for (auto& [name, p] : m.named_parameters())
    p.mutable_value().copy_(rand64(p.shape(), seed + 101 * i++, scale));
}

// gradcheck of forward(inputs) with respect to the inputs AND every parameter
// of `layer`: the probed tensors are the inputs followed by the parameters (in
// named_parameters() order); each call binds the probe Variables into the
// layer with set_parameter, then runs forward on the input Variables.
inline GradcheckResult gradcheck_layer(Module& layer, const std::vector<Tensor>& inputs,
                                       const std::function<Variable(const Vars&)>& forward,
                                       const GradcheckOptions& opts = {}) {
  const auto named = layer.named_parameters();
  std::vector<Tensor> probed = inputs;
  for (const auto& [name, p] : named) probed.push_back(p.value().clone());
  const size_t n_inputs = inputs.size();
  auto result = gradcheck(
      [&](const Vars& v) {
        for (size_t i = 0; i < named.size(); ++i)
          layer.set_parameter(named[i].first, v[n_inputs + i]);
        return forward(Vars(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n_inputs)));
      },
      probed, opts);
  // Name the culprit: inputs first, then parameters.
  if (result.input >= static_cast<int>(n_inputs))
    result.message += " [parameter " + named[result.input - n_inputs].first + "]";
  // Give the layer back parameters of its own that require a gradient.
  for (const auto& [name, p] : named) layer.set_parameter(name, Variable(p.value().clone(), true));
  return result;
}

#define CHECK_LAYER_GRADCHECK(layer, inputs, forward)                                 \
  do {                                                                                \
    const auto result_ = ::attnlab::testing::gradcheck_layer(layer, inputs, forward); \
    INFO(result_.message);                                                            \
    CHECK(result_.ok);                                                                \
  } while (0)

// Largest |a − b| over two tensors of the same shape.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> av = a.to_vector(), bv = b.to_vector();
  double worst = 0;
  for (size_t i = 0; i < av.size(); ++i) worst = std::max(worst, std::abs(av[i] - bv[i]));
  return worst;
}

// x·wᵀ on plain tensors.
inline Tensor ref_linear(const Tensor& x, const Tensor& w) {
  return attnlab::matmul(x.contiguous(), w.transpose(0, 1));
}

// RoPE of docs/MODEL-SPEC.md on x (B, T, heads, d), positions offset + t, in loops.
inline Tensor ref_rope(const Tensor& x, int64_t r, double theta, int64_t offset = 0) {
  Tensor y = x.contiguous().clone();
  const int64_t B = x.size(0), T = x.size(1), Hh = x.size(2), d = x.size(3);
  double* p = y.data<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < Hh; ++h) {
        double* v = p + ((b * T + t) * Hh + h) * d;
        for (int64_t j = 0; j < r / 2; ++j) {
          const double angle =
              static_cast<double>(offset + t) *
              std::pow(theta, -2.0 * static_cast<double>(j) / static_cast<double>(r));
          const double x0 = v[2 * j], x1 = v[2 * j + 1];
          v[2 * j] = x0 * std::cos(angle) - x1 * std::sin(angle);
          v[2 * j + 1] = x0 * std::sin(angle) + x1 * std::cos(angle);
        }
      }
  return y;
}

// Causal attention, q (B, T, H, dk), k (B, T, Hkv, dk), v (B, T, Hkv, dv) →
// (B, T, H, dv); query head h reads KV head h / (H / Hkv). Loops, no fusion.
inline Tensor ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), dk = q.size(3);
  const int64_t Hkv = k.size(2), dv = v.size(3);
  Tensor out = Tensor::zeros({B, T, H, dv}, DType::F64);
  const double *qp = qc.data<double>(), *kp = kc.data<double>(), *vp = vc.data<double>();
  double* op = out.data<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / Hkv);
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> s(t + 1);
        double mx = -INFINITY;
        for (int64_t u = 0; u <= t; ++u) {
          double dot = 0;
          for (int64_t c = 0; c < dk; ++c)
            dot += qp[((b * T + t) * H + h) * dk + c] * kp[((b * T + u) * Hkv + g) * dk + c];
          s[u] = dot * scale;
          mx = std::max(mx, s[u]);
        }
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - mx));
        for (int64_t u = 0; u <= t; ++u)
          for (int64_t c = 0; c < dv; ++c)
            op[((b * T + t) * H + h) * dv + c] += s[u] / z * vp[((b * T + u) * Hkv + g) * dv + c];
      }
    }
  return out;
}

// Names and shapes of a module's parameters, for comparing with docs/MODEL-SPEC.md.
inline std::vector<std::pair<std::string, Shape>> names_and_shapes(const Module& m) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [name, p] : m.named_parameters()) out.emplace_back(name, p.shape());
  return out;
}

}  // namespace attnlab::testing
