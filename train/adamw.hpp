// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"):
//   m ← β1·m + (1−β1)·g            v ← β2·v + (1−β2)·g²
//   p ← p − lr·( m̂ / (sqrt(v̂) + ε) + λ·p ),   m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)
// The weight decay λ acts on the weights directly, not through the gradient,
// and only on matrices (dim ≥ 2): norm gains and biases are not decayed (as
// nanoGPT). The update itself is one fused SIMD kernel per parameter
// (tensor/ops.hpp: adamw_update_).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "attnlab/autograd/variable.hpp"

namespace attnlab {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

class AdamW {
 public:
  using NamedParameters = std::vector<std::pair<std::string, Variable>>;
  AdamW(NamedParameters params, AdamWOptions options);

  // One update of every parameter that has a gradient, at learning rate lr.
  // A parameter without a gradient (an expert no token chose) is left as it is,
  // and so are its moments.
  void step(double lr);
  int64_t steps_taken() const { return step_; }

  // Moments by parameter name ("optim.m.<name>", "optim.v.<name>" in a
  // checkpoint), and the step count, for saving and exact resume.
  const NamedParameters& parameters() const { return params_; }
  const std::vector<Tensor>& first_moments() const { return m_; }
  const std::vector<Tensor>& second_moments() const { return v_; }
  void load_state(std::vector<Tensor> m, std::vector<Tensor> v, int64_t step);

  // Weight decay applies to matrices (linear and embedding weights), never to
  // vectors (RMSNorm gains, biases): decided by the shape alone.
  static bool decays(const Tensor& param) { return param.dim() >= 2; }

 private:
  NamedParameters params_;
  AdamWOptions options_;
  std::vector<Tensor> m_, v_;
  int64_t step_ = 0;
};

}  // namespace attnlab
