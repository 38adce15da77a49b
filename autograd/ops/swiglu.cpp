// SwiGLU's gate (kernels: tensor/swiglu.hpp), y = silu(a) ⊙ b:
//   da = g ⊙ b ⊙ s ⊙ (1 + a ⊙ (1 − s)),  s = sigmoid(a)
//   db = g ⊙ silu(a)
// Saved for backward: a and b (the inputs); s is recomputed.
#include "attnlab/tensor/swiglu.hpp"

#include "attnlab/autograd/ops.hpp"

namespace attnlab {

Variable swiglu(const Variable& gate, const Variable& up) {
  return record("swiglu", swiglu_forward(gate.value(), up.value()), {gate, up},
                [gate, up](const Tensor& g) {
                  SwiGluGrads grads = swiglu_backward(g, gate.value(), up.value());
                  accumulate_grad(gate, grads.dgate);
                  accumulate_grad(up, grads.dup);
                });
}

}  // namespace attnlab
