// Helpers for the nn/ tests: gradient checks of a layer with respect to its
// inputs and its parameters, and the plain-loop references for RoPE and causal
// attention (tensor/reference/, independent of the fused ops).
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "attnlab/nn/module.hpp"
#include "attnlab/tensor/reference/attention_reference.hpp"
#include "attnlab/tensor/reference/rope_reference.hpp"
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

// RoPE and causal attention of docs/MODEL-SPEC.md in plain loops: the
// library's references (tensor/reference/), independent of the fused ops.
inline Tensor ref_rope(const Tensor& x, int64_t r, double theta, int64_t offset = 0) {
  return reference::rope_forward(x, r, theta, offset);
}
inline Tensor ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  return reference::attention_forward(q, k, v, scale).out;
}

// Names and shapes of a module's parameters, for comparing with docs/MODEL-SPEC.md.
inline std::vector<std::pair<std::string, Shape>> names_and_shapes(const Module& m) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [name, p] : m.named_parameters()) out.emplace_back(name, p.shape());
  return out;
}

}  // namespace attnlab::testing
