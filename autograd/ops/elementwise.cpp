// Elementwise ops. Binary ops broadcast; accumulate_grad sums each gradient
// back to its input's shape, so the lambdas below never undo broadcasting.
#include "attnlab/autograd/ops.hpp"

namespace attnlab {

// d(a + b) = g, g
Variable add(const Variable& a, const Variable& b) {
  return record("add", attnlab::add(a.value(), b.value()), {a, b}, [a, b](const Tensor& g) {
    accumulate_grad(a, g);
    accumulate_grad(b, g);
  });
}

// d(a − b) = g, −g
Variable sub(const Variable& a, const Variable& b) {
  return record("sub", attnlab::sub(a.value(), b.value()), {a, b}, [a, b](const Tensor& g) {
    accumulate_grad(a, g);
    if (b.requires_grad()) accumulate_grad(b, mul_scalar(g, -1.0));
  });
}

// d(a · b) = g·b, g·a
Variable mul(const Variable& a, const Variable& b) {
  return record("mul", attnlab::mul(a.value(), b.value()), {a, b}, [a, b](const Tensor& g) {
    if (a.requires_grad()) accumulate_grad(a, attnlab::mul(g, b.value()));
    if (b.requires_grad()) accumulate_grad(b, attnlab::mul(g, a.value()));
  });
}

// d(a / b) = g/b, −g·a/b² = −g·y/b
Variable div(const Variable& a, const Variable& b) {
  Tensor y = attnlab::div(a.value(), b.value());
  return record("div", y, {a, b}, [a, b, y](const Tensor& g) {
    Tensor g_over_b = attnlab::div(g, b.value());
    if (b.requires_grad()) accumulate_grad(b, mul_scalar(attnlab::mul(g_over_b, y), -1.0));
    accumulate_grad(a, std::move(g_over_b));
  });
}

// d(a + s) = g
Variable add_scalar(const Variable& a, double s) {
  return record("add_scalar", attnlab::add_scalar(a.value(), s), {a},
                [a](const Tensor& g) { accumulate_grad(a, g); });
}

// d(a · s) = g·s
Variable mul_scalar(const Variable& a, double s) {
  return record("mul_scalar", attnlab::mul_scalar(a.value(), s), {a},
                [a, s](const Tensor& g) { accumulate_grad(a, mul_scalar(g, s)); });
}

namespace {
// y = f(x) for a unary f; backward is g·f'(x), computed by the kernel from x and y.
Variable unary_op(const char* name, UnaryOp op, const Variable& x) {
  Tensor y = unary(op, x.value());
  return record(name, y, {x}, [x, y, op](const Tensor& g) {
    accumulate_grad(x, unary_backward(op, x.value(), y, g));
  });
}
}  // namespace

Variable neg(const Variable& x) {
  return unary_op("neg", UnaryOp::Neg, x);
}
Variable exp(const Variable& x) {
  return unary_op("exp", UnaryOp::Exp, x);
}
Variable log(const Variable& x) {
  return unary_op("log", UnaryOp::Log, x);
}
Variable sqrt(const Variable& x) {
  return unary_op("sqrt", UnaryOp::Sqrt, x);
}
Variable rsqrt(const Variable& x) {
  return unary_op("rsqrt", UnaryOp::Rsqrt, x);
}
Variable tanh(const Variable& x) {
  return unary_op("tanh", UnaryOp::Tanh, x);
}
Variable relu(const Variable& x) {
  return unary_op("relu", UnaryOp::Relu, x);
}
Variable silu(const Variable& x) {
  return unary_op("silu", UnaryOp::Silu, x);
}
Variable sigmoid(const Variable& x) {
  return unary_op("sigmoid", UnaryOp::Sigmoid, x);
}
Variable gelu(const Variable& x) {
  return unary_op("gelu", UnaryOp::Gelu, x);
}

}  // namespace attnlab
