// Module: a layer with named parameters and named sub-layers, a small cousin
// of PyTorch's nn.Module.
//
// A module registers its parameters (leaf Variables that require a gradient)
// and its sub-modules under short names; named_parameters() then lists every
// parameter of the tree under its full dotted path, e.g.
// `attn.wq.weight` for the weight of the `wq` Linear of the `attn` child.
// These are the names of docs/MODEL-SPEC.md, so checkpoints, optimizers and
// gradient checks all find a parameter by the same string.
//
// Order is deterministic: a module's own parameters first, then each child's,
// each in registration order.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "attnlab/autograd/variable.hpp"

namespace attnlab {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // A parent keeps pointers to its children (its own members): neither may move.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its descendants, by full dotted name.
  std::vector<std::pair<std::string, Variable>> named_parameters() const;
  std::vector<Variable> parameters() const;
  int64_t num_parameters() const;  // number of scalars

  // The parameter of that dotted name; throws an Error naming it if there is none.
  Variable parameter(std::string_view name) const;
  // Makes the parameter `name` refer to another Variable of the same shape and
  // dtype; every forward pass from then on reads the new one. This ties
  // weights (an output head sharing the embedding) and lets a gradient check
  // make a layer's parameters the inputs it probes.
  void set_parameter(std::string_view name, Variable value);

  // Training or evaluation mode, for this module and all its descendants.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Forgets the gradient of every parameter.
  void zero_grad();

 protected:
  // Adds a parameter (a leaf that requires a gradient) holding `value`. The
  // returned reference stays valid as long as the module lives (parameters sit
  // in a deque, which never moves its elements), and set_parameter writes
  // through it: layers keep it and read their weights from it.
  const Variable& register_parameter(std::string name, Tensor value);
  // Adds a child, usually a member of this module; its parameters appear as
  // `name.<its names>`. A name may itself contain dots (`experts.3`).
  void register_module(std::string name, Module& child);

 private:
  Variable* find_parameter(std::string_view name);
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Variable>>& out) const;

  std::deque<std::pair<std::string, Variable>> parameters_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

}  // namespace attnlab
