#include "attnlab/train/adamw.hpp"

#include "attnlab/tensor/ops.hpp"

namespace attnlab {

AdamW::AdamW(NamedParameters params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  for (const auto& [name, p] : params_) {
    ATTN_CHECK(p.value().is_contiguous(), "AdamW: parameter {} is not contiguous", name);
    m_.push_back(Tensor::zeros(p.shape(), p.dtype()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype()));
  }
}

void AdamW::step(double lr) {
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Variable& p = params_[i].second;
    if (!p.grad().defined()) continue;
    AdamWStep s;
    s.lr = lr;
    s.beta1 = options_.beta1;
    s.beta2 = options_.beta2;
    s.eps = options_.eps;
    s.weight_decay = decays(p.value()) ? options_.weight_decay : 0.0;
    s.step = step_;
    adamw_update_(p.mutable_value(), p.grad(), m_[i], v_[i], s);
  }
}

void AdamW::load_state(std::vector<Tensor> m, std::vector<Tensor> v, int64_t step) {
  ATTN_CHECK(m.size() == params_.size() && v.size() == params_.size(),
             "AdamW state has {} and {} moments for {} parameters", m.size(), v.size(),
             params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    check_same_shape(m[i], params_[i].second.value(), "AdamW first moment");
    check_same_shape(v[i], params_[i].second.value(), "AdamW second moment");
    m[i] = m[i].to(params_[i].second.dtype()).contiguous();
    v[i] = v[i].to(params_[i].second.dtype()).contiguous();
  }
  m_ = std::move(m);
  v_ = std::move(v);
  step_ = step;
}

}  // namespace attnlab
