// Matmul. For C = A·B (A [M,K], B [K,N], C [M,N]):
//   dA = dC · Bᵀ   [M,N]·[N,K]
//   dB = Aᵀ · dC   [K,M]·[M,N]
// Bᵀ and Aᵀ are transposed views, which BLAS reads with no copy.
#include "attnlab/autograd/ops.hpp"

namespace attnlab {
namespace {

// The batch axes of a gradient computed for a shared (2-d) operand are summed
// away by accumulate_grad; but for A's batch times a shared B, dB is better
// computed as one gemm over the flattened batch: Aᵀ[K, batch·M] · dC[batch·M, N].
Tensor flatten_batch(const Tensor& t) {
  return t.dim() == 2 ? t : t.reshape({-1, t.size(-1)});
}

}  // namespace

Variable matmul(const Variable& a, const Variable& b) {
  return record("matmul", attnlab::matmul(a.value(), b.value()), {a, b}, [a, b](const Tensor& g) {
    if (a.requires_grad()) accumulate_matmul_grad(a, g, b.value().transpose(-1, -2));
    if (b.requires_grad()) {
      if (b.dim() == 2)  // shared weight: one gemm over all rows
        accumulate_matmul_grad(b, flatten_batch(a.value()).transpose(0, 1), flatten_batch(g));
      else
        accumulate_matmul_grad(b, a.value().transpose(-1, -2), g);
    }
  });
}

// y = x · wᵀ, x [..., in], w [out, in]:
//   dx = g · w           [..., out]·[out, in]
//   dw = gᵀ · x          [out, rows]·[rows, in], rows = all leading axes of x
Variable linear(const Variable& x, const Variable& w) {
  ATTN_CHECK(w.dim() == 2, "linear: weight must be [out, in], got shape {}", shape_str(w.shape()));
  return record("linear", attnlab::matmul(x.value(), w.value().transpose(0, 1)), {x, w},
                [x, w](const Tensor& g) {
                  if (x.requires_grad()) accumulate_matmul_grad(x, g, w.value());
                  if (w.requires_grad())
                    accumulate_matmul_grad(w, flatten_batch(g).transpose(0, 1),
                                           flatten_batch(x.value()));
                });
}

}  // namespace attnlab
