// The transformer language model of docs/MODEL-SPEC.md:
//
//   x = tok_emb.weight[ids]                                   (B, T, D)
//   for each layer: x = x + Attn(RMSNorm(x)); x = x + FFN(RMSNorm(x))
//   logits = RMSNorm(x; norm.weight) · lm_head.weightᵀ          (B, T, V)
//   loss = mean cross-entropy + aux_loss_coef · Σ_layers aux
//
// Its parameters carry the spec's names, in the order of
// ModelConfig::parameter_shapes() (the constructor checks that they match), so
// a checkpoint of another implementation of the spec loads here and means the
// same thing. A tied model (tie_embeddings) has no lm_head.weight: the output
// head reads tok_emb.weight.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "attnlab/models/config.hpp"
#include "attnlab/nn/embedding.hpp"
#include "attnlab/nn/module.hpp"
#include "attnlab/nn/rms_norm.hpp"
#include "attnlab/nn/transformer_block.hpp"

namespace attnlab {

struct LanguageModelOutput {
  Variable logits;  // (B, T, V)
  Variable aux;     // Σ over layers of the load-balancing loss, unweighted (0 when dense)
};

struct LanguageModelLoss {
  Variable loss;    // ce + aux_loss_coef · aux
  Variable ce;      // mean cross-entropy over all B·T positions
  Variable aux;     // as above
  Variable logits;  // (B, T, V)
};

class LanguageModel : public Module {
 public:
  // Builds the model with the default init of docs/MODEL-SPEC.md, drawn from `seed`:
  // normal(0, 0.02) for embeddings and linear weights, 0.02/sqrt(2L) for the
  // output projections (wo, w_down), 1 for RMSNorm gains, 0 for biases.
  // dropout: on residual branches and attention probabilities, in training
  // only (eval() turns it off); its masks come from a generator of its own,
  // seeded from `seed` too (dropout_rng(), saved with a training run).
  LanguageModel(const ModelConfig& config, DType dtype = DType::F32, uint64_t seed = 0,
                double dropout = 0.0);

  // ids holds B·T token ids, row-major (B, T). T must not exceed max_seq_len.
  LanguageModelOutput forward(std::span<const int32_t> ids, int64_t batch, int64_t seq_len) const;
  // targets as ids: one per position, used as given (no shifting).
  LanguageModelLoss loss(std::span<const int32_t> ids, std::span<const int32_t> targets,
                         int64_t batch, int64_t seq_len) const;

  const ModelConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }
  const Embedding& token_embedding() const { return tok_emb_; }
  const std::vector<std::unique_ptr<TransformerBlock>>& blocks() const { return blocks_; }
  const RMSNorm& final_norm() const { return norm_; }
  // The output head's weight [V, D]: lm_head.weight, or tok_emb.weight when tied.
  const Variable& output_weight() const;
  Rng& dropout_rng() { return dropout_rng_; }

  // Sets every parameter from named tensors (converted to this model's dtype).
  // Each name of the model must be present with its shape; `what` names the
  // source in messages.
  void load_parameters(const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::string& what);

 private:
  ModelConfig config_;
  DType dtype_;
  Rng init_rng_;  // declared before the layers: they draw their init from it, in order
  Rng dropout_rng_;
  Embedding tok_emb_;
  std::vector<std::unique_ptr<TransformerBlock>> blocks_;
  RMSNorm norm_;
  std::unique_ptr<Module> lm_head_;  // holds `weight`; absent when tied
  const Variable* lm_head_weight_ = nullptr;
};

// Parameter count of the model by top-level module ("tok_emb", "layers.0.attn",
// "layers.0.moe", ..., "norm", "lm_head"), in parameter order.
std::vector<std::pair<std::string, int64_t>> parameter_count_by_module(const ModelConfig& config);

}  // namespace attnlab
