#include "attnlab/autograd/variable.hpp"

#include <unordered_set>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/tensor/ops.hpp"

namespace attnlab {
namespace {
thread_local bool g_grad_mode = true;
}  // namespace

Variable::Variable(Tensor value, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  ATTN_CHECK(value.defined(), "a Variable needs a defined tensor");
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

Node::~Node() {
  // The lambda first: it may hold copies of the inputs, which must not be the
  // last references when the inputs below are let go.
  backward = nullptr;
  std::vector<Variable> pending = std::move(inputs);
  while (!pending.empty()) {
    Variable v = std::move(pending.back());
    pending.pop_back();
    // When v is the last owner of a value whose node it alone owns, that node
    // dies with v: take its inputs first, so that its destructor has nothing
    // left to free recursively.
    if (v.use_count() == 1 && v.grad_fn() && v.grad_fn().use_count() == 1) {
      Node& dying = *v.grad_fn();
      dying.backward = nullptr;
      for (Variable& in : dying.inputs) pending.push_back(std::move(in));
      dying.inputs.clear();
    }
  }  // v goes here, with a node that owns nothing
}

bool grad_mode_enabled() {
  return g_grad_mode;
}
NoGradGuard::NoGradGuard() : previous_(g_grad_mode) {
  g_grad_mode = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_mode = previous_;
}

Variable record(const char* op, Tensor value, std::vector<Variable> inputs,
                std::function<void(const Tensor&)> backward) {
  Variable out(std::move(value), false);
  if (!g_grad_mode) return out;
  std::erase_if(inputs, [](const Variable& v) { return !v.requires_grad(); });
  if (inputs.empty()) return out;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->output = out.impl();
  node->backward = std::move(backward);
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
  return out;
}

void accumulate_grad(const Variable& v, Tensor g) {
  if (!v.requires_grad()) return;
  VariableImpl* impl = v.impl();
  if (g.shape() != impl->value.shape()) g = sum_to(g, impl->value.shape());
  check_same_dtype(impl->value, g, "gradient");
  if (!impl->grad.defined()) {
    // Leaves keep a contiguous gradient of their own (the optimizer reads it);
    // intermediates may keep a view, they are dropped once used.
    impl->grad = v.is_leaf() ? g.contiguous() : g;
    return;
  }
  // Add in place only when nobody else can see the buffer.
  if (impl->grad.is_contiguous() && impl->grad.storage().use_count() == 1)
    add_(impl->grad, g);
  else
    impl->grad = add(impl->grad, g);
}

void accumulate_matmul_grad(const Variable& v, const Tensor& a, const Tensor& b) {
  if (!v.requires_grad()) return;
  Tensor& grad = v.impl()->grad;
  if (grad.defined() && grad.is_contiguous() && grad.storage().use_count() == 1 &&
      grad.dtype() == a.dtype() && a.dim() >= 2 && b.dim() >= 2 && a.size(-1) == b.size(-2)) {
    // The product's shape: the batch axes of whichever operand has them, then [M, N].
    const Tensor& batched = a.dim() > 2 ? a : b;
    Shape product(batched.shape().begin(), batched.shape().end() - 2);
    product.push_back(a.size(-2));
    product.push_back(b.size(-1));
    if (product == grad.shape()) {
      matmul_into(grad, a, b, 1.0, /*beta=*/1.0);
      return;
    }
  }
  accumulate_grad(v, matmul(a, b));
}

void Variable::backward() const {
  ATTN_CHECK(numel() == 1, "backward() without a seed needs a scalar, got shape {}",
             shape_str(shape()));
  backward(Tensor::ones(shape(), dtype()));
}

void Variable::backward(const Tensor& seed) const {
  ATTN_CHECK(requires_grad(), "backward() of a value that requires no gradient");
  check_same_shape(seed, value(), "backward seed");
  // Topological order by an explicit depth-first search (no recursion, so a
  // deep graph cannot overflow the stack): a node comes after all nodes that
  // consume its output.
  std::vector<Node*> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, size_t>> stack;
  if (grad_fn()) stack.push_back({grad_fn().get(), 0});
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next == 0 && !visited.insert(node).second) {
      stack.pop_back();
      continue;
    }
    if (next < node->inputs.size()) {
      const Variable& in = node->inputs[next++];
      if (in.grad_fn() && !visited.count(in.grad_fn().get()))
        stack.push_back({in.grad_fn().get(), 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  accumulate_grad(*this, seed);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    ATTN_CHECK(!node->consumed,
               "backward() through the graph of op '{}' a second time: a graph is used once; "
               "run the forward again",
               node->op);
    Tensor g = std::move(node->output->grad);  // intermediates give their gradient away
    node->output->grad = Tensor();
    if (g.defined()) node->backward(g);
    node->backward = nullptr;  // frees what the op saved for backward
    node->consumed = true;
  }
}

}  // namespace attnlab
