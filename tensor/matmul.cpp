// Matmul of tensor views through BLAS (tensor/blas.hpp). Our job here is to
// describe each operand without copying: a row-major matrix view is either
// "plain" (unit stride along its rows) or "transposed" (unit stride down its
// columns), and BLAS takes either with a leading dimension.
#include "attnlab/tensor/blas.hpp"

#include "attnlab/tensor/ops.hpp"

namespace attnlab {
namespace {

// How one [rows, cols] matrix of a (batched) view is handed to BLAS.
struct MatrixArg {
  bool trans;
  int64_t ld;  // leading dimension, in elements
};

// Returns the BLAS description of the last two axes of t, or nothing when the
// view is neither plain nor transposed (then the caller copies it).
bool describe(const Tensor& t, MatrixArg* arg) {
  const int64_t nd = t.dim();
  const int64_t rows = t.shape()[nd - 2], cols = t.shape()[nd - 1];
  const int64_t rs = t.strides()[nd - 2], cs = t.strides()[nd - 1];
  if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(cols, 1)) {
    *arg = {false, rs};
    return true;
  }
  if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(rows, 1)) {
    *arg = {true, cs};
    return true;
  }
  return false;
}

// Element offset of batch item `b` of t, whose batch axes are all but the last two.
int64_t batch_offset(const Tensor& t, int64_t b) {
  int64_t off = 0;
  for (int64_t ax = t.dim() - 3; ax >= 0; --ax) {
    const int64_t n = t.shape()[ax];
    off += (b % n) * t.strides()[ax];
    b /= n;
  }
  return off;
}

// True when the batch axes of a plain (NoTrans) view step by exactly one
// matrix, so the whole batch is one tall [batch*M, K] matrix.
bool batch_is_flat(const Tensor& t, const MatrixArg& arg) {
  if (arg.trans) return false;
  int64_t expected = t.shape()[t.dim() - 2] * arg.ld;
  for (int64_t ax = t.dim() - 3; ax >= 0; --ax) {
    if (t.shape()[ax] != 1 && t.strides()[ax] != expected) return false;
    expected *= t.shape()[ax];
  }
  return true;
}

Shape batch_shape(const Tensor& t) {
  return Shape(t.shape().begin(), t.shape().end() - 2);
}

Shape result_shape(const Tensor& a, const Tensor& b) {
  ATTN_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul needs matrices, got shapes {} and {}",
             shape_str(a.shape()), shape_str(b.shape()));
  const int64_t m = a.size(-2), k = a.size(-1), k2 = b.size(-2), n = b.size(-1);
  ATTN_CHECK(k == k2, "matmul: inner sizes differ, shapes {} and {}", shape_str(a.shape()),
             shape_str(b.shape()));
  const Shape ba = batch_shape(a), bb = batch_shape(b);
  ATTN_CHECK(ba.empty() || bb.empty() || ba == bb, "matmul: batch axes of shapes {} and {} differ",
             shape_str(a.shape()), shape_str(b.shape()));
  Shape out = ba.empty() ? bb : ba;
  out.push_back(m);
  out.push_back(n);
  return out;
}

}  // namespace

void matmul_into(Tensor& out, const Tensor& a_in, const Tensor& b_in, double alpha, double beta) {
  check_same_dtype(a_in, b_in, "matmul");
  check_same_dtype(a_in, out, "matmul output");
  const Shape want = result_shape(a_in, b_in);
  ATTN_CHECK(out.shape() == want && out.is_contiguous(),
             "matmul_into: output has shape {}, needs contiguous {}", shape_str(out.shape()),
             shape_str(want));
  MatrixArg da, db;
  const Tensor a = describe(a_in, &da) ? a_in : a_in.contiguous();
  const Tensor b = describe(b_in, &db) ? b_in : b_in.contiguous();
  describe(a, &da);
  describe(b, &db);
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  const int64_t batch = shape_numel(batch_shape(out.dim() > 2 ? out : a));
  if (out.numel() == 0) return;
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = out.data<T>();
    if (k == 0) {  // an empty sum: out = beta · out
      for (int64_t i = 0; i < out.numel(); ++i) pc[i] = beta == 0 ? T(0) : T(beta) * pc[i];
      return;
    }
    const bool b_shared = b.dim() == 2;
    if (b_shared && (a.dim() == 2 || batch_is_flat(a, da))) {
      // One tall gemm: [batch*M, K] · [K, N].
      blas::gemm<T>(da.trans, db.trans, batch * m, n, k, T(alpha), pa, da.ld, pb, db.ld, T(beta),
                    pc, n);
      return;
    }
    for (int64_t i = 0; i < batch; ++i) {
      const T* ai = pa + (a.dim() > 2 ? batch_offset(a, i) : 0);
      const T* bi = pb + (b.dim() > 2 ? batch_offset(b, i) : 0);
      blas::gemm<T>(da.trans, db.trans, m, n, k, T(alpha), ai, da.ld, bi, db.ld, T(beta),
                    pc + i * m * n, n);
    }
  });
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(result_shape(a, b), a.dtype());
  matmul_into(out, a, b, 1.0, 0.0);
  return out;
}

}  // namespace attnlab
