#include "attnlab/autograd/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_set>

#include "attnlab/tensor/ops.hpp"

namespace attnlab {
namespace {

std::set<std::string>& covered() {
  static std::set<std::string> ops;
  return ops;
}

// The op names of the graph behind v.
std::vector<std::string> ops_of(const Variable& v) {
  std::set<std::string> names;
  std::unordered_set<const Node*> seen;
  std::vector<const Node*> stack;
  if (v.grad_fn()) stack.push_back(v.grad_fn().get());
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    names.insert(n->op);
    for (const Variable& in : n->inputs)
      if (in.grad_fn()) stack.push_back(in.grad_fn().get());
  }
  return {names.begin(), names.end()};
}

// s = Σ f(x) ⊙ R, in plain tensors (no graph).
double project(const Tensor& y, const Tensor& r) {
  const std::vector<double> yv = y.to_vector(), rv = r.to_vector();
  double s = 0;
  for (size_t i = 0; i < yv.size(); ++i) s += yv[i] * rv[i];
  return s;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opts) {
  GradcheckResult result;
  for (const Tensor& t : inputs)
    ATTN_CHECK(t.dtype() == DType::F64, "gradcheck needs f64 inputs, got {}",
               dtype_name(t.dtype()));

  // Analytic: one backward pass with seed R.
  std::vector<Variable> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.clone(), true);
  const Variable y = f(vars);
  ATTN_CHECK(y.dtype() == DType::F64, "gradcheck: f returned {}, not f64", dtype_name(y.dtype()));
  ATTN_CHECK(y.requires_grad(), "gradcheck: the output does not depend on any input");
  result.ops = ops_of(y);
  Rng rng(opts.seed);
  const Tensor r = Tensor::normal(y.shape(), rng, 0, 1, DType::F64);
  y.backward(r);

  // Numeric: central differences, one element at a time.
  NoGradGuard no_grad;
  std::vector<Variable> probe;
  for (const Tensor& t : inputs) probe.emplace_back(t.clone(), false);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor analytic = vars[i].grad().defined() ? vars[i].grad().contiguous()
                                                     : Tensor::zeros(inputs[i].shape(), DType::F64);
    const double* a = analytic.data<double>();
    double* x = probe[i].mutable_value().data<double>();
    for (int64_t e = 0; e < inputs[i].numel(); ++e) {
      const double saved = x[e];
      x[e] = saved + opts.eps;
      const double plus = project(f(probe).value(), r);
      x[e] = saved - opts.eps;
      const double minus = project(f(probe).value(), r);
      x[e] = saved;
      const double numeric = (plus - minus) / (2 * opts.eps);
      const double err = std::abs(a[e] - numeric) / (opts.atol + opts.rtol * std::abs(numeric));
      if (!(err <= result.worst_error)) {  // also catches NaN
        result.worst_error = std::isnan(err) ? INFINITY : err;
        result.input = static_cast<int>(i);
        result.element = e;
        result.analytic = a[e];
        result.numeric = numeric;
      }
    }
  }
  result.ok = result.worst_error <= 1.0;
  result.message =
      result.input < 0
          ? "gradcheck: no input elements"
          : fmt::format(
                "gradcheck {}: worst at input {} element {}: analytic {:.10g}, numeric "
                "{:.10g} ({:.3g} of the tolerance)",
                result.ok ? "passed" : "FAILED", result.input, result.element, result.analytic,
                result.numeric, result.worst_error);
  if (result.ok)
    for (const std::string& op : result.ops) covered().insert(op);
  return result;
}

const std::vector<std::string>& gradchecked_ops() {
  static std::vector<std::string> list;
  list.assign(covered().begin(), covered().end());
  return list;
}

}  // namespace attnlab
