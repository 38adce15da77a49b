// Elementwise binary ops with numpy broadcasting, ops with a scalar, and the
// in-place updates add_ / axpy_ / scale_ (see tensor/ops.hpp).
//
// Fast paths (SIMD, one dispatched call per array or per block of rows):
//   same shape, both contiguous        out[i] = a[i] op b[i]
//   contiguous with a one-element side out[i] = a[i] op s   (or s op b[i])
//   contiguous [..., N] with a row [N] out[r, i] = a[r, i] op b[i]  (bias add)
// Everything else (any broadcast, any strides) expands both inputs to the
// output shape, merges axes where it can, and walks the rows of the merged
// shape; a row whose inner strides are 1 or 0 still runs the SIMD kernel.

// Highway compiles this file once per SIMD target (foreach_target.h
// re-includes it); code outside HWY_NAMESPACE sits under `#if HWY_ONCE`.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tensor/kernels/elementwise.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "attnlab/tensor/kernels/dispatch.hpp"
#include "attnlab/tensor/kernels/kernels.hpp"
#include "attnlab/tensor/kernels/simd-inl.hpp"
#include "attnlab/tensor/ops.hpp"

HWY_BEFORE_NAMESPACE();
namespace attnlab {
namespace HWY_NAMESPACE {

template <BinaryOp kOp, class V>
HWY_INLINE V ApplyBinary(V a, V b) {
  if constexpr (kOp == BinaryOp::Add) return hn::Add(a, b);
  if constexpr (kOp == BinaryOp::Sub) return hn::Sub(a, b);
  if constexpr (kOp == BinaryOp::Mul) return hn::Mul(a, b);
  if constexpr (kOp == BinaryOp::Div) return hn::Div(a, b);
  if constexpr (kOp == BinaryOp::Max) return hn::Max(a, b);
  if constexpr (kOp == BinaryOp::Min) return hn::Min(a, b);
}

// For r < rows: out[r·n + i] = a[r·a_step + i·a_vec] op b[r·b_step + i·b_vec],
// i < n. A side with *_vec false is one value broadcast along the row.
// out may alias a or b (in-place updates).
template <BinaryOp kOp, typename T>
void BinaryRowsOp(bool a_vec, const T* a, size_t a_step, bool b_vec, const T* b, size_t b_step,
                  T* out, size_t rows, size_t n) {
  const hn::ScalableTag<T> d;
  for (size_t r = 0; r < rows; ++r, a += a_step, b += b_step, out += n) {
    if (a_vec && b_vec) {
      Map2(d, a, b, out, n, [](auto va, auto vb) { return ApplyBinary<kOp>(va, vb); });
    } else if (a_vec) {
      const auto vb = hn::Set(d, *b);
      Map1(d, a, out, n, [vb](auto va) { return ApplyBinary<kOp>(va, vb); });
    } else if (b_vec) {
      const auto va = hn::Set(d, *a);
      Map1(d, b, out, n, [va](auto vb) { return ApplyBinary<kOp>(va, vb); });
    } else {
      const T v = hn::GetLane(ApplyBinary<kOp>(hn::Set(d, *a), hn::Set(d, *b)));
      for (size_t i = 0; i < n; ++i) out[i] = v;
    }
  }
}

template <typename T>
void BinaryRows(BinaryOp op, bool a_vec, const T* a, size_t a_step, bool b_vec, const T* b,
                size_t b_step, T* out, size_t rows, size_t n) {
  switch (op) {
    case BinaryOp::Add:
      return BinaryRowsOp<BinaryOp::Add>(a_vec, a, a_step, b_vec, b, b_step, out, rows, n);
    case BinaryOp::Sub:
      return BinaryRowsOp<BinaryOp::Sub>(a_vec, a, a_step, b_vec, b, b_step, out, rows, n);
    case BinaryOp::Mul:
      return BinaryRowsOp<BinaryOp::Mul>(a_vec, a, a_step, b_vec, b, b_step, out, rows, n);
    case BinaryOp::Div:
      return BinaryRowsOp<BinaryOp::Div>(a_vec, a, a_step, b_vec, b, b_step, out, rows, n);
    case BinaryOp::Max:
      return BinaryRowsOp<BinaryOp::Max>(a_vec, a, a_step, b_vec, b, b_step, out, rows, n);
    case BinaryOp::Min:
      return BinaryRowsOp<BinaryOp::Min>(a_vec, a, a_step, b_vec, b, b_step, out, rows, n);
  }
}

// For r < rows: dst[r·n + i] += alpha · src[r·src_step + i·src_vec].
template <typename T>
void AxpyRows(T alpha, bool src_vec, const T* src, size_t src_step, T* dst, size_t rows, size_t n) {
  const hn::ScalableTag<T> d;
  const auto va = hn::Set(d, alpha);
  for (size_t r = 0; r < rows; ++r, src += src_step, dst += n) {
    if (src_vec) {
      Map2(d, src, dst, dst, n, [va](auto s, auto x) { return hn::MulAdd(va, s, x); });
    } else {
      const auto vs = hn::Set(d, *src);
      Map1(d, dst, dst, n, [va, vs](auto x) { return hn::MulAdd(va, vs, x); });
    }
  }
}

ATTNLAB_KERNEL_F32_F64(BinaryRows);
ATTNLAB_KERNEL_F32_F64(AxpyRows);

int64_t LanesF32() {
  return static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
}
int64_t LanesF64() {
  return static_cast<int64_t>(hn::Lanes(hn::ScalableTag<double>()));
}
int64_t CurrentTarget() {
  return HWY_TARGET;
}

}  // namespace HWY_NAMESPACE
}  // namespace attnlab
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attnlab {

ATTNLAB_EXPORT_F32_F64(BinaryRows);
ATTNLAB_EXPORT_F32_F64(AxpyRows);
HWY_EXPORT(LanesF32);
HWY_EXPORT(LanesF64);
HWY_EXPORT(CurrentTarget);

namespace kernels {
int64_t simd_lanes(DType dtype) {
  return dtype == DType::F32 ? HWY_DYNAMIC_DISPATCH(LanesF32)() : HWY_DYNAMIC_DISPATCH(LanesF64)();
}
const char* simd_target_name() {
  return hwy::TargetName(HWY_DYNAMIC_DISPATCH(CurrentTarget)());
}
}  // namespace kernels

namespace {

using kernels::kBlockElements;
using kernels::parallel_blocks;
using kernels::rows_per_block;

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "add";
    case BinaryOp::Sub:
      return "sub";
    case BinaryOp::Mul:
      return "mul";
    case BinaryOp::Div:
      return "div";
    case BinaryOp::Max:
      return "maximum";
    case BinaryOp::Min:
      return "minimum";
  }
  return "binary";
}

// One SIMD call: see BinaryRows above.
template <typename T>
void binary_rows(BinaryOp op, bool a_vec, const T* a, int64_t a_step, bool b_vec, const T* b,
                 int64_t b_step, T* out, int64_t rows, int64_t n) {
  ATTNLAB_DISPATCH(T, BinaryRows)(op, a_vec, a, a_step, b_vec, b, b_step, out, rows, n);
}

template <typename T>
void axpy_rows(T alpha, bool src_vec, const T* src, int64_t src_step, T* dst, int64_t rows,
               int64_t n) {
  ATTNLAB_DISPATCH(T, AxpyRows)(alpha, src_vec, src, src_step, dst, rows, n);
}

// Scalar form of the op, for rows with strides other than 0 and 1.
template <typename T>
T apply_scalar(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    case BinaryOp::Div:
      return a / b;
    case BinaryOp::Max:
      return a < b ? b : a;
    case BinaryOp::Min:
      return b < a ? b : a;
  }
  return a;
}

// How a broadcast operand relates to a contiguous output of `out_shape`.
enum class Layout {
  kSame,     // contiguous, same elements in the same order as the output
  kScalar,   // a single value
  kRow,      // a contiguous row [N] (leading axes of size 1) along the output's last axis
  kGeneral,  // anything else
};

Layout layout_of(const Tensor& t, const Shape& out_shape) {
  const int64_t n = shape_numel(out_shape);
  if (t.numel() == 1) return Layout::kScalar;
  if (t.numel() == n && t.is_contiguous()) return Layout::kSame;
  if (!out_shape.empty() && t.dim() >= 1 && t.numel() == out_shape.back() &&
      t.size(-1) == out_shape.back() && t.strides().back() == 1)
    return Layout::kRow;
  return Layout::kGeneral;
}

// out = a op b, out contiguous of the broadcast shape; a and b are any views.
template <typename T>
void binary_into(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Layout la = layout_of(a, out.shape()), lb = layout_of(b, out.shape());
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  // Contiguous fast paths: split into blocks of elements (or of rows).
  if ((la == Layout::kSame || la == Layout::kScalar) &&
      (lb == Layout::kSame || lb == Layout::kScalar)) {
    const bool av = la == Layout::kSame, bv = lb == Layout::kSame;
    parallel_blocks(n, kBlockElements, 1, [&](int64_t i0, int64_t i1) {
      binary_rows<T>(op, av, av ? pa + i0 : pa, 0, bv, bv ? pb + i0 : pb, 0, po + i0, 1, i1 - i0);
    });
    return;
  }
  if ((la == Layout::kSame && lb == Layout::kRow) || (la == Layout::kRow && lb == Layout::kSame)) {
    const int64_t cols = out.shape().back(), rows = n / cols;
    const int64_t a_step = la == Layout::kSame ? cols : 0, b_step = lb == Layout::kSame ? cols : 0;
    parallel_blocks(rows, rows_per_block(cols), cols, [&](int64_t r0, int64_t r1) {
      binary_rows<T>(op, true, pa + r0 * a_step, a_step, true, pb + r0 * b_step, b_step,
                     po + r0 * cols, r1 - r0, cols);
    });
    return;
  }
  // General broadcast / strided path.
  const Tensor ea = a.expand(out.shape()), eb = b.expand(out.shape());
  const auto s = kernels::merge_axes<3>(out.shape(), {out.strides(), ea.strides(), eb.strides()});
  const int64_t inner = s.inner(), sa = s.strides[1].back(), sb = s.strides[2].back();
  const bool simd = (sa == 0 || sa == 1) && (sb == 0 || sb == 1);
  parallel_blocks(s.rows(), rows_per_block(inner), inner, [&](int64_t r0, int64_t r1) {
    kernels::for_each_row(s, r0, r1, [&](const std::array<int64_t, 3>& off) {
      T* o = po + off[0];
      const T* x = pa + off[1];
      const T* y = pb + off[2];
      if (simd) {
        binary_rows<T>(op, sa == 1, x, 0, sb == 1, y, 0, o, 1, inner);
      } else {
        for (int64_t i = 0; i < inner; ++i) o[i] = apply_scalar(op, x[i * sa], y[i * sb]);
      }
    });
  });
}

// Checks that src broadcasts to dst's shape, for the in-place updates.
void check_in_place(const char* what, const Tensor& dst, const Tensor& src) {
  ATTN_CHECK(dst.defined() && src.defined(), "{}: undefined tensor", what);
  check_same_dtype(dst, src, what);
  ATTN_CHECK(dst.is_contiguous(), "{}: dst of shape {} must be contiguous", what,
             shape_str(dst.shape()));
  bool ok = src.dim() <= dst.dim();
  for (int64_t i = 0; ok && i < src.dim(); ++i) {
    const int64_t s = src.shape()[src.dim() - 1 - i], t = dst.shape()[dst.dim() - 1 - i];
    ok = s == t || s == 1;
  }
  ATTN_CHECK(ok, "{}: src of shape {} does not broadcast to dst's shape {}", what,
             shape_str(src.shape()), shape_str(dst.shape()));
}

// dst += alpha · src, src broadcast to dst's shape.
template <typename T>
void axpy_into(Tensor& dst, T alpha, const Tensor& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  T* pd = dst.data<T>();
  const T* ps = src.data<T>();
  const Layout ls = layout_of(src, dst.shape());
  if (ls == Layout::kSame || ls == Layout::kScalar) {
    const bool sv = ls == Layout::kSame;
    parallel_blocks(n, kBlockElements, 1, [&](int64_t i0, int64_t i1) {
      axpy_rows<T>(alpha, sv, sv ? ps + i0 : ps, 0, pd + i0, 1, i1 - i0);
    });
    return;
  }
  if (ls == Layout::kRow) {
    const int64_t cols = dst.shape().back(), rows = n / cols;
    parallel_blocks(rows, rows_per_block(cols), cols, [&](int64_t r0, int64_t r1) {
      axpy_rows<T>(alpha, true, ps, 0, pd + r0 * cols, r1 - r0, cols);
    });
    return;
  }
  const Tensor es = src.expand(dst.shape());
  const auto s = kernels::merge_axes<2>(dst.shape(), {dst.strides(), es.strides()});
  const int64_t inner = s.inner(), ss = s.strides[1].back();
  // With a broadcast src, several dst rows read the same src row but each dst
  // element is written by exactly one row, so rows may run in parallel.
  parallel_blocks(s.rows(), rows_per_block(inner), inner, [&](int64_t r0, int64_t r1) {
    kernels::for_each_row(s, r0, r1, [&](const std::array<int64_t, 2>& off) {
      T* o = pd + off[0];
      const T* x = ps + off[1];
      if (ss == 0 || ss == 1) {
        axpy_rows<T>(alpha, ss == 1, x, 0, o, 1, inner);
      } else {
        for (int64_t i = 0; i < inner; ++i) o[i] += alpha * x[i * ss];
      }
    });
  });
}

// out = a op s, as a fresh contiguous tensor.
Tensor scalar_op(BinaryOp op, const Tensor& a, double s, const char* what) {
  ATTN_CHECK(a.defined(), "{}: undefined tensor", what);
  // A strided input is copied once, then updated in place.
  Tensor out = a.is_contiguous() ? Tensor::empty(a.shape(), a.dtype()) : a.contiguous();
  const Tensor& src = a.is_contiguous() ? a : out;
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    const T sv = static_cast<T>(s);
    const T* pa = src.data<T>();
    T* po = out.data<T>();
    parallel_blocks(out.numel(), kBlockElements, 1, [&](int64_t i0, int64_t i1) {
      binary_rows<T>(op, true, pa + i0, 0, false, &sv, 0, po + i0, 1, i1 - i0);
    });
  });
  return out;
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* what = binary_name(op);
  ATTN_CHECK(a.defined() && b.defined(), "{}: undefined tensor", what);
  check_same_dtype(a, b, what);
  Shape shape;
  try {
    shape = broadcast_shapes(a.shape(), b.shape());
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", what, e.what()));
  }
  Tensor out = Tensor::empty(shape, a.dtype());
  dispatch_dtype(a.dtype(), [&]<typename T>() { binary_into<T>(op, a, b, out); });
  return out;
}

Tensor add_scalar(const Tensor& a, double s) {
  return scalar_op(BinaryOp::Add, a, s, "add_scalar");
}
Tensor mul_scalar(const Tensor& a, double s) {
  return scalar_op(BinaryOp::Mul, a, s, "mul_scalar");
}

void add_(Tensor& dst, const Tensor& src) {
  check_in_place("add_", dst, src);
  dispatch_dtype(dst.dtype(), [&]<typename T>() { axpy_into<T>(dst, T(1), src); });
}

void axpy_(Tensor& dst, double alpha, const Tensor& src) {
  check_in_place("axpy_", dst, src);
  dispatch_dtype(dst.dtype(), [&]<typename T>() { axpy_into<T>(dst, static_cast<T>(alpha), src); });
}

void scale_(Tensor& dst, double alpha) {
  ATTN_CHECK(dst.defined(), "scale_: undefined tensor");
  ATTN_CHECK(dst.is_contiguous(), "scale_: dst of shape {} must be contiguous",
             shape_str(dst.shape()));
  dispatch_dtype(dst.dtype(), [&]<typename T>() {
    const T av = static_cast<T>(alpha);
    T* p = dst.data<T>();
    parallel_blocks(dst.numel(), kBlockElements, 1, [&](int64_t i0, int64_t i1) {
      binary_rows<T>(BinaryOp::Mul, true, p + i0, 0, false, &av, 0, p + i0, 1, i1 - i0);
    });
  });
}

}  // namespace attnlab
#endif  // HWY_ONCE
