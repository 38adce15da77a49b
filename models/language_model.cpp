#include "attnlab/models/language_model.hpp"

#include <cmath>
#include <map>

#include "attnlab/autograd/ops.hpp"

namespace attnlab {
namespace {

// A module that only holds one weight, so that the output head's parameter is
// named `lm_head.weight` like the spec's. The head is not called as a layer:
// forward reads the weight through output_weight(), which is tok_emb's weight
// when the embeddings are tied.
class OutputHead : public Module {
 public:
  OutputHead(int64_t vocab, int64_t dim, DType dtype, Rng& rng, double std)
      : weight_(register_parameter("weight", Tensor::normal({vocab, dim}, rng, 0.0, std, dtype))) {}
  const Variable& weight() const { return weight_; }

 private:
  const Variable& weight_;
};

}  // namespace

LanguageModel::LanguageModel(const ModelConfig& config, DType dtype, uint64_t seed, double dropout)
    : config_((validate_config(config), config)),
      dtype_(dtype),
      init_rng_(seed),
      dropout_rng_(seed ^ 0x64726f706f7574ull),  // "dropout": a stream apart from the init
      tok_emb_(config.vocab_size, config.d_model, dtype, init_rng_, 0.02),
      norm_(config.d_model, config.norm_eps, dtype) {
  // One generator for the whole model, drawn in parameter order.
  Rng& rng = init_rng_;
  register_module("tok_emb", tok_emb_);
  // Every block reads the model config's own fields; only how the weights
  // are made and the dropout are added here.
  TransformerBlockConfig bc{config};
  bc.dtype = dtype;
  bc.out_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layers));
  bc.dropout = dropout;
  bc.dropout_rng = &dropout_rng_;
  for (int64_t i = 0; i < config.n_layers; ++i) {
    blocks_.push_back(std::make_unique<TransformerBlock>(bc, rng));
    register_module("layers." + std::to_string(i), *blocks_.back());
  }
  register_module("norm", norm_);
  if (config.tie_embeddings) {
    lm_head_weight_ = &tok_emb_.weight();
  } else {
    auto head = std::make_unique<OutputHead>(config.vocab_size, config.d_model, dtype, rng, 0.02);
    lm_head_weight_ = &head->weight();
    lm_head_ = std::move(head);
    register_module("lm_head", *lm_head_);
  }
  // The names and shapes must be exactly those of the spec, in its order.
  const auto want = config.parameter_shapes();
  const auto have = named_parameters();
  ATTN_CHECK(want.size() == have.size(), "model has {} parameters, the spec lists {}", have.size(),
             want.size());
  for (size_t i = 0; i < want.size(); ++i)
    ATTN_CHECK(want[i].first == have[i].first && want[i].second == have[i].second.shape(),
               "parameter {} is {} {}, the spec says {} {}", i, have[i].first,
               shape_str(have[i].second.shape()), want[i].first, shape_str(want[i].second));
}

const Variable& LanguageModel::output_weight() const {
  return *lm_head_weight_;
}

LanguageModelOutput LanguageModel::forward(std::span<const int32_t> ids, int64_t batch,
                                           int64_t seq_len) const {
  ATTN_CHECK(batch > 0 && seq_len > 0, "a batch needs B > 0 and T > 0, got B={} T={}", batch,
             seq_len);
  ATTN_CHECK(static_cast<int64_t>(ids.size()) == batch * seq_len,
             "{} token ids for a batch of B={} × T={}", ids.size(), batch, seq_len);
  ATTN_CHECK(seq_len <= config_.max_seq_len,
             "sequence length {} exceeds the model's max_seq_len {}", seq_len, config_.max_seq_len);
  for (size_t i = 0; i < ids.size(); ++i)
    ATTN_CHECK(ids[i] >= 0 && ids[i] < config_.vocab_size,
               "token id {} at position {} is outside the vocabulary [0, {})", ids[i], i,
               config_.vocab_size);
  Variable x = tok_emb_.forward(ids, {batch, seq_len});  // (B, T, D)
  Variable aux;
  for (const auto& block : blocks_) {
    TransformerBlockOutput out = block->forward(x);
    x = out.x;
    if (config_.is_moe()) aux = aux.defined() ? add(aux, out.aux) : out.aux;
  }
  if (!aux.defined()) aux = Variable(Tensor::zeros({}, dtype_));
  Variable h = norm_.forward(x);
  return {linear(h, *lm_head_weight_), aux};  // (B, T, V)
}

LanguageModelLoss LanguageModel::loss(std::span<const int32_t> ids,
                                      std::span<const int32_t> targets, int64_t batch,
                                      int64_t seq_len) const {
  ATTN_CHECK(targets.size() == ids.size(), "{} targets for {} inputs", targets.size(), ids.size());
  LanguageModelOutput out = forward(ids, batch, seq_len);
  Variable ce = cross_entropy(reshape(out.logits, {batch * seq_len, config_.vocab_size}), targets);
  Variable loss = config_.is_moe() ? add(ce, mul_scalar(out.aux, config_.aux_loss_coef)) : ce;
  return {loss, ce, out.aux, out.logits};
}

void LanguageModel::load_parameters(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                    const std::string& what) {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : tensors) by_name[name] = &t;
  NoGradGuard no_grad;
  for (auto& [name, p] : named_parameters()) {
    auto it = by_name.find(name);
    ATTN_CHECK(it != by_name.end(), "{}: missing tensor {}", what, name);
    ATTN_CHECK(it->second->shape() == p.shape(), "{}: tensor {} has shape {}, the config needs {}",
               what, name, shape_str(it->second->shape()), shape_str(p.shape()));
    Variable v = p;
    v.mutable_value().copy_(*it->second);
  }
}

std::vector<std::pair<std::string, int64_t>> parameter_count_by_module(const ModelConfig& config) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& [name, shape] : config.parameter_shapes()) {
    // The module is the name without its last two parts, or up to the layer's
    // sub-layer: "layers.3.attn.wq.weight" → "layers.3.attn".
    std::string module = name.substr(0, name.find('.'));
    if (module == "layers") {
      const size_t a = name.find('.', 7), b = name.find('.', a + 1);
      module = name.substr(0, b);
    }
    if (out.empty() || out.back().first != module) out.emplace_back(module, 0);
    out.back().second += shape_numel(shape);
  }
  return out;
}

}  // namespace attnlab
