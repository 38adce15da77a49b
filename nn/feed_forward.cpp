#include "attnlab/nn/feed_forward.hpp"

#include "attnlab/autograd/ops.hpp"

namespace attnlab {
namespace {

const TransformerBlockConfig& validated(const TransformerBlockConfig& c) {
  ATTN_CHECK(c.d_model > 0 && c.ffn_hidden > 0,
             "a feed-forward layer needs positive d_model and hidden width, got {} and {}",
             c.d_model, c.ffn_hidden);
  return c;
}

}  // namespace

// Members are built in declaration order, so w_gate draws its weights before
// w_up, as docs/MODEL-SPEC.md lists them.
FeedForward::FeedForward(const TransformerBlockConfig& config, Rng& rng)
    : config_(validated(config)),
      w_gate_(config.ffn == FeedForwardKind::SwiGLU
                  ? std::make_unique<Linear>(config.d_model, config.ffn_hidden, false, config.dtype,
                                             rng, config.init_std)
                  : nullptr),
      w_up_(config.d_model, config.ffn_hidden, config.ffn == FeedForwardKind::ReLU, config.dtype,
            rng, config.init_std),
      w_down_(config.ffn_hidden, config.d_model, config.ffn == FeedForwardKind::ReLU, config.dtype,
              rng, config.out_std) {
  if (w_gate_) register_module("w_gate", *w_gate_);
  register_module("w_up", w_up_);
  register_module("w_down", w_down_);
}

Variable FeedForward::forward(const Variable& x) const {
  switch (config_.ffn) {
    case FeedForwardKind::SwiGLU:
      // silu(x·w_gateᵀ) ⊙ (x·w_upᵀ), fused: (..., F) ⊙ (..., F) → (..., D)
      return w_down_.forward(swiglu(w_gate_->forward(x), w_up_.forward(x)));
    case FeedForwardKind::ReLU:
      return w_down_.forward(relu(w_up_.forward(x)));  // both Linears add their bias
  }
  throw Error("unknown feed-forward kind");
}

}  // namespace attnlab
