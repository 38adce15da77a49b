// The position-wise feed-forward network of a transformer block, in one of
// two kinds (docs/MODEL-SPEC.md), each expert of a MoE being one too:
//
//   SwiGLU (Shazeer, "GLU Variants Improve Transformer", 2020), no biases:
//       y = w_down( silu(x·w_gateᵀ) ⊙ (x·w_upᵀ) )
//     the gate branch decides, per hidden unit, how much of the up branch passes.
//   ReLU (Vaswani et al., 2017), with biases:
//       y = w_down( relu(x·w_upᵀ + b_up) ) + b_down
#pragma once

#include <cstdint>
#include <memory>

#include "attnlab/nn/block_config.hpp"
#include "attnlab/nn/linear.hpp"

namespace attnlab {

class FeedForward : public Module {
 public:
  // Parameters, drawn from rng in this order:
  //   SwiGLU: w_gate.weight [F, D], w_up.weight [F, D], w_down.weight [D, F]
  //   ReLU:   w_up.weight [F, D], w_up.bias [F], w_down.weight [D, F], w_down.bias [D]
  // Reads ffn (the kind), d_model, ffn_hidden, dtype, init_std (w_gate, w_up)
  // and out_std (w_down).
  FeedForward(const TransformerBlockConfig& config, Rng& rng);

  // x is (..., D) → (..., D)
  Variable forward(const Variable& x) const;

  const TransformerBlockConfig& config() const { return config_; }

 private:
  TransformerBlockConfig config_;
  std::unique_ptr<Linear> w_gate_;  // SwiGLU only
  Linear w_up_, w_down_;
};

}  // namespace attnlab
