#include "attnlab/nn/module.hpp"

namespace attnlab {

const Variable& Module::register_parameter(std::string name, Tensor value) {
  ATTN_CHECK(!name.empty() && name.find('.') == std::string::npos,
             "parameter name '{}' must be non-empty and have no dot", name);
  for (const auto& [n, p] : parameters_)
    ATTN_CHECK(n != name, "parameter '{}' is registered twice", name);
  parameters_.emplace_back(std::move(name), Variable(std::move(value), /*requires_grad=*/true));
  return parameters_.back().second;
}

void Module::register_module(std::string name, Module& child) {
  ATTN_CHECK(!name.empty(), "a submodule needs a name");
  for (const auto& [n, c] : children_)
    ATTN_CHECK(n != name, "submodule '{}' is registered twice", name);
  children_.emplace_back(std::move(name), &child);
}

void Module::collect(const std::string& prefix,
                     std::vector<std::pair<std::string, Variable>>& out) const {
  for (const auto& [name, p] : parameters_) out.emplace_back(prefix + name, p);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Variable>> out;
  collect("", out);
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [name, p] : named_parameters()) out.push_back(std::move(p));
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

// Child names may contain dots, so a name is matched against each child's
// prefix rather than split at its first dot.
Variable* Module::find_parameter(std::string_view name) {
  for (auto& [n, p] : parameters_)
    if (n == name) return &p;
  for (auto& [n, child] : children_)
    if (name.size() > n.size() && name.starts_with(n) && name[n.size()] == '.')
      if (Variable* p = child->find_parameter(name.substr(n.size() + 1))) return p;
  return nullptr;
}

Variable Module::parameter(std::string_view name) const {
  Variable* p = const_cast<Module*>(this)->find_parameter(name);
  ATTN_CHECK(p != nullptr, "no parameter named '{}'", name);
  return *p;
}

void Module::set_parameter(std::string_view name, Variable value) {
  Variable* p = find_parameter(name);
  ATTN_CHECK(p != nullptr, "no parameter named '{}'", name);
  ATTN_CHECK(value.defined() && value.shape() == p->shape() && value.dtype() == p->dtype(),
             "parameter '{}' is {} {}; cannot replace it by {} {}", name, dtype_name(p->dtype()),
             shape_str(p->shape()), value.defined() ? dtype_name(value.dtype()) : "undefined",
             value.defined() ? shape_str(value.shape()) : "");
  *p = std::move(value);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& [name, p] : parameters_) p.zero_grad();
  for (auto& [name, child] : children_) child->zero_grad();
}

}  // namespace attnlab
