#include "attnlab/train/loss_by_position.hpp"

#include "attnlab/autograd/ops.hpp"

namespace attnlab {

std::vector<double> loss_by_position(LanguageModel& model, const std::vector<Batch>& batches,
                                     const std::function<void(int64_t, int64_t)>& on_batch) {
  ATTN_CHECK(!batches.empty(), "loss by position needs at least one batch");
  const int64_t T = batches.front().seq_len;
  std::vector<double> total(static_cast<size_t>(T), 0.0);
  int64_t rows = 0, done = 0;
  model.eval();
  {
    NoGradGuard no_grad;
    for (const Batch& b : batches) {
      ATTN_CHECK(b.seq_len == T, "loss by position needs one T, got {} and {}", T, b.seq_len);
      const Variable logits = model.forward(b.inputs, b.batch_size, T).logits;  // (B, T, V)
      // −log softmax at the target: (B, T, 1), summed over the batch's rows.
      const Variable picked = gather(log_softmax(logits), b.targets, 1);
      const std::vector<double> per_t = sum(picked, {0}).value().to_vector();  // (T, 1)
      for (int64_t t = 0; t < T; ++t)
        total[static_cast<size_t>(t)] -= per_t[static_cast<size_t>(t)];
      rows += b.batch_size;
      if (on_batch) on_batch(++done, static_cast<int64_t>(batches.size()));
    }
  }
  model.train();
  for (double& v : total) v /= static_cast<double>(rows);
  return total;
}

ModelConfig with_context_of_at_least(ModelConfig config, int64_t seq_len) {
  config.max_seq_len = std::max(config.max_seq_len, seq_len);
  return config;
}

}  // namespace attnlab
