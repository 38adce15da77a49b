// The kinds of layer a transformer block is built from, named once for the
// whole library: the model config (models/config.hpp) reads them from JSON
// and the block (nn/transformer_block.hpp) builds them.
#pragma once

namespace attnlab {

// MHA, GQA and MQA are one layer, GroupedQueryAttention, with H, a divisor
// of H, or 1 KV heads; MLA is MultiLatentAttention.
enum class AttentionKind { MHA, GQA, MQA, MLA };

// The position-wise FFN (and every expert of a MoE): nn/feed_forward.hpp.
enum class FeedForwardKind { SwiGLU, ReLU };

}  // namespace attnlab
