#include "attnlab/nn/linear.hpp"

#include "attnlab/autograd/ops.hpp"

namespace attnlab {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, DType dtype, Rng& rng,
               double init_std)
    : weight_(register_parameter(
          "weight", Tensor::normal({out_features, in_features}, rng, 0.0, init_std, dtype))) {
  ATTN_CHECK(in_features > 0 && out_features > 0, "Linear needs positive sizes, got {} → {}",
             in_features, out_features);
  if (bias) bias_ = &register_parameter("bias", Tensor::zeros({out_features}, dtype));
}

const Variable& Linear::bias() const {
  ATTN_CHECK(bias_ != nullptr, "this Linear has no bias");
  return *bias_;
}

Variable Linear::forward(const Variable& x) const {
  const Variable y = linear(x, weight_);  // (..., out)
  return bias_ ? add(y, *bias_) : y;      // the bias broadcasts over the leading axes
}

}  // namespace attnlab
