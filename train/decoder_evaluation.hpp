// The validation loss of a decoder (models/decoder.hpp), teacher-forced: what
// `attnlab eval` reports for a decoder checkpoint, so that a bf16 or int8
// decoder's loss can be set beside the f32 one's on the same windows.
//
// Each batch of windows [B, T] is fed through a fresh Decoder of batch B in
// one prefill that keeps every position's logits; the loss is the mean
// cross-entropy against the next tokens (the training loss's ce, no MoE aux),
// averaged over batches as Trainer::evaluate does. The prefill multiplies by
// the very values the decoder's steps multiply by (a bf16 or int8 matrix
// unpacked), so the loss is the stored format's. With a bf16 KV cache
// (kv_cache), every key and value is rounded as it is cached and the
// attention reads the rounded numbers, as in decoding.
#pragma once

#include <vector>

#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/kv_cache.hpp"
#include "attnlab/train/dataset.hpp"

namespace attnlab {

double decoder_validation_loss(const DecoderWeights& weights, const std::vector<Batch>& batches,
                               KvCacheFormat kv_cache = KvCacheFormat::F32);

}  // namespace attnlab
