// The decoder form of a model, and converting a training checkpoint to it.
//
// A decoder checkpoint is a safetensors file like a training one
// (models/checkpoint.hpp), with __metadata__ "format" = "attnlab.decoder", the
// same "config", the "tokenizer" when the training checkpoint had one, and no
// optimizer or training state. Its tensors are the spec's, except that an mla
// layer stores its attention with w_uk and w_uv absorbed (DeepSeek-V2; the
// algebra is in models/README.md):
//
//   layers.i.attn.w_dq.weight     [d_cq, D]      as trained
//   layers.i.attn.w_uq_uk.weight  [H·d_c, d_cq]  head h: W_uk,hᵀ · W_uq,h  (new)
//   layers.i.attn.w_qr.weight     [H·dr, d_cq]   as trained
//   layers.i.attn.w_dkv.weight    [d_c, D]       as trained
//   layers.i.attn.w_kr.weight     [dr, D]        as trained
//   layers.i.attn.wo_uv.weight    [D, H·d_c]     head h: wo_h · W_uv,h     (new)
//
// (W_x,h are the dh rows of head h of a weight, wo_h the dh columns of head
// h of wo) and no w_uq, w_uk, w_uv, wo. mha/gqa/mqa layers, FFNs, experts,
// norms, embeddings and the head are stored as trained. The absorbed products
// are computed in f64 and stored in F32, like every tensor.
//
// Weight formats (attnlab convert --weights; metadata "weights"): f32 (the
// default) stores every tensor as F32. bf16 and int8 store every matrix the
// decoder multiplies by, and the embedding table, in that format
// (tensor/packed_matrix.hpp), and the rest (norms, biases, MoE routers) in F32:
//
//   bf16   the tensor as BF16 (safetensors' own dtype).
//   int8   the tensor as I8 [n, k] plus "<name>_scale" F32 [n, ceil(k/32)],
//          one scale per group of 32 columns of a row: w = q · scale.
//
// The router stays f32: it is tiny ([E, D]) and its top-k choice is a step
// function, where a rounding flips a token to another expert. Decoding reads
// the stored format directly (step() widens it in registers), so an int8
// decoder reads a little over a quarter of an f32 one's bytes per token.
//
// Every decoding command (sample, inspect --decode) reads either form through
// read_decoder_weights; commands that need the training form refuse a decoder
// file with a message saying so (read_checkpoint).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/config.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/tensor/packed_matrix.hpp"

namespace attnlab {

struct DecoderWeights {
  ModelConfig config;
  // decoder_parameter_shapes order; a packed matrix's tensor holds the values
  // it computes with (unpacked), so every reader of tensors sees them.
  std::vector<std::pair<std::string, Tensor>> tensors;
  WeightFormat weights = WeightFormat::F32;
  std::map<std::string, PackedMatrix> packed;   // bf16/int8: the matrices as stored
  std::map<std::string, std::string> metadata;  // carried over (tokenizer, ...): no config/format
  std::string source;                           // where they came from, for messages
  bool converted = false;  // true when built from training weights in this process

  const Tensor& at(const std::string& name) const;  // throws naming the tensor
  std::string meta(const std::string& key) const;   // "" when absent
};

// The tensors of the decoder form of this config, by name and shape, in
// order: ModelConfig::parameter_shapes() with each mla layer's w_uq, w_uk,
// w_uv, wo replaced as listed above.
std::vector<std::pair<std::string, Shape>> decoder_parameter_shapes(const ModelConfig& config);

// Training parameters (the spec's names, any order) → the decoder form in
// `dtype`, absorbing mla's matrices in f64. Refuses a missing or misshapen
// tensor, naming it and `what`.
DecoderWeights absorb_weights(const ModelConfig& config,
                              const std::vector<std::pair<std::string, Tensor>>& parameters,
                              DType dtype, const std::string& what);
DecoderWeights absorb_weights(const LanguageModel& model, DType dtype);

// True for the tensors that bf16 and int8 decoders store in that format:
// 2-D, and not a MoE router.
bool is_packed_in_decoder(const std::string& name, const Shape& shape);

// Stores the weights' matrices in `format` (nothing for f32): fills `packed`
// and replaces each matrix's tensor by the values it now computes with.
void pack_decoder_weights(DecoderWeights& weights, WeightFormat format);

// Reads a checkpoint of either form for decoding: a decoder file is checked
// against decoder_parameter_shapes (a missing, unknown or misshapen tensor is
// refused); a training (or plain spec) checkpoint is read and absorbed on
// the fly. Tensors come as `dtype`.
DecoderWeights read_decoder_weights(const std::string& path, DType dtype = DType::F32);
DecoderWeights decoder_weights_from_file(const SafetensorsFile& file, DType dtype);

// Writes the weights (F32, or the packed matrices as BF16 or I8 + scales)
// with format "attnlab.decoder", "weights", the config, the carried-over
// metadata and `extra` metadata, atomically.
void write_decoder_checkpoint(const std::string& path, const DecoderWeights& weights,
                              const std::map<std::string, std::string>& extra = {});

// The agreement check of convert: a Decoder built from `weights` (in the
// model's dtype) is fed a random prompt, its first half in one prefill and
// the rest one token per step, and its logits at every position are compared
// with the model's training forward on the same ids.
struct DecoderAgreement {
  int64_t batch = 0, seq_len = 0, prefill_tokens = 0;
  double max_relative_error = 0;  // logits_relative_error(decoder, training)
  double tolerance = 0;
};
// Throws an Error with the numbers when the error exceeds `tolerance`.
DecoderAgreement check_decoder_agreement(const LanguageModel& model, const DecoderWeights& weights,
                                         uint64_t seed, double tolerance);

// The tolerance of convert's check of a bf16 or int8 decoder against the
// training forward (the largest difference of logits, relative to their
// size): 2e-2 for bf16 (2⁻⁸ per weight), 1e-1 for int8 (half a step of 1/127
// of a group's largest weight, and the same for the activations, which the
// int8 product quantizes too); 1e-4 for f32 (rounding only). On tiny trained
// models of every variant the largest errors measured were 0.006 (bf16) and
// 0.012 (int8, weights only); on random ones 0.05 (int8, with activations).
// A MoE's is 1.5 times that (3e-2, 1.5e-1): the experts' outputs sum
// rounding errors that the gates weigh, on positions routed alike. Measured
// at 100 seeds each: up to 0.027 (bf16) and 0.098 (int8) on tiny trained and
// random gqa, mha and mla MoE models.
double decoder_check_tolerance(WeightFormat format, bool moe = false);

// The tolerance of check 1 below: 1e-4 (f32, bf16: the decoder multiplies by
// exactly its stored values, so only f32 rounding differs), 5e-2 for int8
// (the product rounds the activations to int8 per group of 32 as well, x ≈
// q · s with |error| ≤ s / 2: measured 0.01–0.02 on random models; a weight
// matrix read wrongly moves the logits by far more); 7.5e-2 for an int8 MoE
// (measured up to 0.062 on random ones, 0.055 on tiny trained ones).
double decoder_values_tolerance(WeightFormat format, bool moe = false);

// How far a MoE decoder routes tokens as a reference does, on the check's
// positions. A position agrees when every layer chose the same experts in
// both. The logits are compared on each sequence's positions before its first
// disagreement (`compared` of them): a token routed elsewhere changes the
// logits of every later position too, through the KV cache.
struct RoutingAgreement {
  int64_t positions = 0, agreeing = 0, compared = 0;
  int64_t sequence = -1, position = -1, layer = -1;  // the first disagreement, if any
  // The check needs three quarters of the positions to agree: a decoder
  // computing with the right values changes experts for a few tokens whose
  // k-th and (k+1)-th router logits nearly tie (int8 at 20 of 24 positions
  // at worst, 1–2% on average, over 2200 checks of tiny random and trained
  // MoE models; bf16 at 22 of 24 against the f32 decoder), while a router
  // or a layer read wrongly moves most of them; and it leaves enough
  // positions for the tolerance to mean something.
  int64_t needed() const { return (3 * positions + 3) / 4; }
};

// The checks of a bf16 or int8 decoder (on the random prompt of
// check_decoder_agreement; a MoE's sequences decoded one at a time, its
// routing recorded):
//   1. it computes with its stored values: its logits equal those of an f64
//      decoder of the same (unpacked) values, to decoder_values_tolerance;
//   2. rounding the weights moved the logits from the training forward's by
//      at most decoder_check_tolerance(format). A MoE's reference is the f32
//      decoder of the training weights (which convert checked against the
//      training forward first): it records its routing.
// For a MoE both compare the positions where the routing agrees
// (RoutingAgreement), and both need it to agree on most of them.
struct PackedAgreement {
  WeightFormat format = WeightFormat::F32;
  double max_relative_error = 0, tolerance = 0;       // 1.
  double rounding_error = 0, rounding_tolerance = 0;  // 2.
  RoutingAgreement routing, rounding_routing;         // 1. and 2. (a MoE)
};
// Throws an Error with the numbers when a check fails.
PackedAgreement check_packed_decoder(const LanguageModel& model, const DecoderWeights& packed,
                                     uint64_t seed);

// attnlab convert: reads a training checkpoint (refusing a decoder one),
// absorbs, checks agreement with the training forward in f32 (tolerance
// 1e-4 when 0), stores the matrices in `format` and checks that decoder too
// (check_packed_decoder, its results into *packed_check when given), and only
// then writes `out`. on_phase(what) is called as each check and the writing
// start, if given (a caller's progress display; reading, where bad input is
// refused, says nothing).
DecoderAgreement convert_checkpoint(
    const std::string& in, const std::string& out, uint64_t seed = 0, double tolerance = 0,
    WeightFormat format = WeightFormat::F32, PackedAgreement* packed_check = nullptr,
    const std::function<void(const std::string& phase)>& on_phase = {});

}  // namespace attnlab
