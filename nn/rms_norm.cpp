#include "attnlab/nn/rms_norm.hpp"

#include "attnlab/autograd/ops.hpp"

namespace attnlab {

RMSNorm::RMSNorm(int64_t dim, double eps, DType dtype)
    : weight_(register_parameter("weight", Tensor::ones({dim}, dtype))), eps_(eps) {
  ATTN_CHECK(eps > 0, "RMSNorm eps must be positive, got {}", eps);
}

Variable RMSNorm::forward(const Variable& x) const {
  return rms_norm(x, weight_, eps_);
}

}  // namespace attnlab
