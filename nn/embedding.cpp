#include "attnlab/nn/embedding.hpp"

#include "attnlab/autograd/ops.hpp"

namespace attnlab {

Embedding::Embedding(int64_t vocab_size, int64_t dim, DType dtype, Rng& rng, double init_std)
    : weight_(register_parameter("weight",
                                 Tensor::normal({vocab_size, dim}, rng, 0.0, init_std, dtype))) {}

Variable Embedding::forward(std::span<const int32_t> ids, const Shape& ids_shape) const {
  return embedding(weight_, ids, ids_shape);
}

}  // namespace attnlab
