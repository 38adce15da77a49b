// Attention maps: the attention probabilities of every layer and head for
// one sequence of tokens (and, for a MoE, the experts each token went to),
// for looking at what a trained model attends to (`attnlab attention`).
//
//   decoder_attention_maps   through the KV-cached decoder, one token per
//                            step, from either checkpoint form; for mla these
//                            are the absorbed decoder's probabilities
//   training_attention_maps  through the training form: each layer's q and k
//                            from its project() (and MLA's keys_values()),
//                            softmax(q·kᵀ·scale) by tensor/reference/
//
// Both give the same numbers (to rounding): the test holds them to each other.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/language_model.hpp"

namespace attnlab {

struct AttentionMaps {
  int64_t tokens = 0, heads = 0, top_k = 0;  // T, H; k (0 for a dense model)
  // probabilities[l][h] is [T, T] row-major: row t holds the probabilities
  // of query t over keys 0 … t (0 for the keys after t).
  std::vector<std::vector<std::vector<double>>> probabilities;
  // experts[l] is [T, k]: token t's experts in layer l, best first (MoE only).
  std::vector<std::vector<int32_t>> experts;
};

// ids: 1 ≤ T ≤ max_seq_len token ids of one sequence.
AttentionMaps decoder_attention_maps(const DecoderWeights& weights, std::span<const int32_t> ids,
                                     DType dtype = DType::F32);
AttentionMaps training_attention_maps(const LanguageModel& model, std::span<const int32_t> ids);

}  // namespace attnlab
