// Dropout (Srivastava et al. 2014), "inverted": in training each element is
// kept with probability 1 − p and scaled by 1/(1 − p), so the expected value
// is unchanged and evaluation needs no rescaling.
//   y = x ⊙ m,  m_i = 1/(1−p) with probability 1−p, else 0;   dx = g ⊙ m
#include "attnlab/autograd/ops.hpp"

namespace attnlab {

Variable dropout(const Variable& x, double p, Rng& rng) {
  ATTN_CHECK(p >= 0 && p < 1, "dropout probability must lie in [0, 1), got {}", p);
  if (p == 0) return x;
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    T* m = mask.data<T>();
    const T keep = static_cast<T>(1.0 / (1.0 - p));
    for (int64_t i = 0, n = mask.numel(); i < n; ++i) m[i] = rng.uniform() < p ? T(0) : keep;
  });
  return record("dropout", attnlab::mul(x.value(), mask), {x},
                [x, mask](const Tensor& g) { accumulate_grad(x, attnlab::mul(g, mask)); });
}

}  // namespace attnlab
