// RoPE (kernels: tensor/rope.hpp). A rotation of each channel pair by the
// angle p·θ_j is orthogonal, so its gradient is the rotation by −p·θ_j:
//   dx[2j]   =  g[2j]·cos + g[2j+1]·sin
//   dx[2j+1] = −g[2j]·sin + g[2j+1]·cos
// and channels r … d pass g through. Nothing is saved but the arguments.
#include "attnlab/tensor/rope.hpp"
#include "attnlab/autograd/ops.hpp"

namespace attnlab {

Variable rope(const Variable& x, int64_t rotary_dims, double theta, int64_t position_offset) {
  Tensor y = rope_forward(x.value(), rotary_dims, theta, position_offset);
  return record("rope", y, {x}, [x, rotary_dims, theta, position_offset](const Tensor& g) {
    accumulate_grad(x, rope_backward(g, rotary_dims, theta, position_offset));
  });
}

}  // namespace attnlab
