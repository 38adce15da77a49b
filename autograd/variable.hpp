// The reverse-mode tape.
//
// A Variable is a Tensor plus what reverse mode needs: its gradient and the
// Node that produced it. Every differentiable op (autograd/ops.hpp) computes
// its result with the tensor/ kernels and, right there, records a Node whose
// `backward` lambda turns the gradient of the result into gradients of the
// inputs (micrograd's `_backward`, flashlight's `gradFunc`). backward() walks
// the Nodes from the loss in reverse topological order.
//
// The rules, as in PyTorch:
//  * Gradients accumulate (`+=`): a value used twice gets both contributions,
//    and calling backward() on two losses sums their gradients into the leaves
//    (that is how gradient accumulation over micro-batches works). zero_grad()
//    clears a leaf's gradient.
//  * backward() consumes the graph: each Node frees what it saved once it has
//    run, and the gradients of intermediate (non-leaf) Variables are dropped
//    as soon as they have been passed on. A second backward() through the same
//    graph throws an Error instead of silently double-counting.
//  * Under a NoGradGuard nothing is recorded (evaluation, optimizer updates).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

struct Node;

struct VariableImpl {
  Tensor value;
  Tensor grad;  // undefined until a gradient arrives
  std::shared_ptr<Node> grad_fn;
  bool requires_grad = false;
};

class Variable {
 public:
  Variable() = default;
  // A leaf. Parameters are leaves with requires_grad = true.
  explicit Variable(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  Tensor& mutable_value() { return impl_->value; }  // for in-place updates of leaves
  const Tensor& grad() const { return impl_->grad; }
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  VariableImpl* impl() const { return impl_.get(); }
  // How many Variables share this one's value, grad and node (0 when undefined).
  long use_count() const { return impl_.use_count(); }

  const Shape& shape() const { return impl_->value.shape(); }
  DType dtype() const { return impl_->value.dtype(); }
  int64_t dim() const { return impl_->value.dim(); }
  int64_t size(int64_t axis) const { return impl_->value.size(axis); }
  int64_t numel() const { return impl_->value.numel(); }
  double item() const { return impl_->value.item(); }

  // Gradient of this scalar with respect to every leaf that requires it.
  void backward() const;
  // The same with an explicit seed dL/d(this), shaped like this.
  void backward(const Tensor& seed) const;

  void zero_grad() { impl_->grad = Tensor(); }
  void set_grad(Tensor g) { impl_->grad = std::move(g); }
  // The same value, cut from the graph: a leaf that requires no gradient.
  Variable detach() const { return Variable(impl_->value, false); }

 private:
  std::shared_ptr<VariableImpl> impl_;
};

// One recorded op application.
struct Node {
  const char* op = "";             // name, as listed in differentiable_ops()
  std::vector<Variable> inputs;    // the inputs that need a gradient
  VariableImpl* output = nullptr;  // the Variable this Node produced (it owns the Node)
  // Given dL/d(output), adds dL/d(input) into each input via accumulate_grad.
  std::function<void(const Tensor& grad_output)> backward;
  bool consumed = false;  // set once backward has run (the graph is single-use)

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Frees a chain of nodes iteratively: a Variable owns its Node, which owns
  // its inputs, which own theirs, so the default destructor would recurse once
  // per op and overflow the stack on a deep graph (100,000 ops under ASan).
  ~Node();
};

// --- for op implementations ---

// True when gradients are being recorded (no NoGradGuard is active on this thread).
bool grad_mode_enabled();

// Disables recording for its lifetime (nests).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Wraps an op's result. When grad mode is on and some input requires a
// gradient, records a Node named `op` whose backward is `backward`; otherwise
// returns a plain leaf and drops the lambda (and all it captured).
Variable record(const char* op, Tensor value, std::vector<Variable> inputs,
                std::function<void(const Tensor& grad_output)> backward);

// dL/dv += g, for an input of an op. Brings g back to v's shape first when the
// op broadcast v (sum_to), so no op has to undo broadcasting by hand. A no-op
// for a v that requires no gradient.
void accumulate_grad(const Variable& v, Tensor g);

// dL/dv += a·b (a matmul, tensor/ops.hpp), with no temporary when it can:
// when v already has a contiguous gradient of v's shape that nobody else
// sees (the rule of accumulate_grad), BLAS adds the product straight into it
// (beta = 1); otherwise the product is computed into a fresh buffer that
// accumulate_grad adopts as the gradient (or adds, or sums down to v's shape).
// For the weight gradients of linear and matmul.
void accumulate_matmul_grad(const Variable& v, const Tensor& a, const Tensor& b);

}  // namespace attnlab
