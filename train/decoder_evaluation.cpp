#include "attnlab/train/decoder_evaluation.hpp"

#include "attnlab/models/decoder.hpp"
#include "attnlab/tensor/cross_entropy.hpp"

namespace attnlab {

double decoder_validation_loss(const DecoderWeights& weights, const std::vector<Batch>& batches,
                               KvCacheFormat kv_cache) {
  ATTN_CHECK(!batches.empty(), "decoder_validation_loss: no batches");
  const Batch& first = batches.front();
  Decoder decoder(weights, DType::F32,
                  {.batch = first.batch_size, .max_len = first.seq_len, .kv_cache = kv_cache});
  double total = 0;
  for (const Batch& b : batches) {
    ATTN_CHECK(b.batch_size == first.batch_size && b.seq_len == first.seq_len,
               "decoder_validation_loss: batches of other shapes ([{}, {}] and [{}, {}])",
               first.batch_size, first.seq_len, b.batch_size, b.seq_len);
    decoder.reset();
    const Tensor logits = decoder.prefill(b.inputs, b.seq_len, /*all_positions=*/true);
    total += cross_entropy_forward(logits, b.targets).loss.item();
  }
  return total / static_cast<double>(batches.size());
}

}  // namespace attnlab
