#include "attnlab/autograd/ops.hpp"

namespace attnlab {

const std::vector<std::string_view>& differentiable_ops() {
  static const std::vector<std::string_view> ops = {
      // elementwise
      "add", "sub", "mul", "div", "add_scalar", "mul_scalar", "neg", "exp", "log", "sqrt", "rsqrt",
      "tanh", "relu", "silu", "sigmoid", "gelu",
      // reductions
      "sum", "mean", "max",
      // matmul
      "matmul", "linear",
      // shape
      "reshape", "permute", "narrow", "concat", "contiguous",
      // indexing
      "index_select", "index_add", "gather", "where", "masked_fill",
      // softmax
      "softmax", "log_softmax", "cross_entropy",
      // dropout
      "dropout",
      // fused layers
      "rms_norm", "rope", "swiglu", "causal_attention"};
  return ops;
}

}  // namespace attnlab
