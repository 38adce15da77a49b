#include "attnlab/train/task_training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/train/adamw.hpp"
#include "attnlab/train/grad_clip.hpp"
#include "attnlab/train/lr_schedule.hpp"
#include "attnlab/train/survey_report.hpp"

namespace attnlab {

Variable task_loss(LanguageModel& model, const TaskBatch& b) {
  const ModelConfig& c = model.config();
  const LanguageModelOutput out = model.forward(b.inputs, b.batch_size, b.seq_len);
  // The answer rows of the (B·T, V) logits, and their answers.
  const Variable rows =
      index_select(reshape(out.logits, {b.batch_size * b.seq_len, c.vocab_size}), b.answer_rows);
  std::vector<int32_t> answers(b.answer_rows.size());
  for (size_t n = 0; n < answers.size(); ++n)
    answers[n] = b.targets[static_cast<size_t>(b.answer_rows[n])];
  const Variable ce = cross_entropy(rows, answers);
  return c.is_moe() ? add(ce, mul_scalar(out.aux, c.aux_loss_coef)) : ce;
}

TaskScore score_on_task(LanguageModel& model, const SyntheticTask& task, uint64_t seed,
                        int64_t sequences, int64_t batch_size) {
  ATTN_CHECK(sequences >= 1, "scoring needs at least one held-out sequence, got {}", sequences);
  const int64_t A = task.answers_per_sequence(), V = model.config().vocab_size;
  std::vector<int64_t> right_by_answer(static_cast<size_t>(A), 0);
  int64_t right = 0, total = 0, whole = 0;
  double loss_sum = 0;
  model.eval();
  {
    NoGradGuard no_grad;
    for (int64_t first = 0; first < sequences; first += batch_size) {
      const int64_t n = std::min(batch_size, sequences - first);
      const TaskBatch b = task_batch(task, seed, TaskStream::kHeldOut, first, n);
      const LanguageModelOutput out = model.forward(b.inputs, n, b.seq_len);
      const Variable rows =
          index_select(reshape(out.logits, {n * b.seq_len, V}), b.answer_rows);  // (N, V)
      const Variable logp = log_softmax(rows);
      const std::vector<double> lp = logp.value().to_vector();
      std::vector<bool> sequence_right(static_cast<size_t>(n), true);
      for (size_t k = 0; k < b.answer_rows.size(); ++k) {
        const double* row = lp.data() + k * static_cast<size_t>(V);
        const int32_t answer = b.targets[static_cast<size_t>(b.answer_rows[k])];
        // argmax, the first maximum on a tie (so a constant output scores 1/V at best)
        const auto best = static_cast<int32_t>(std::max_element(row, row + V) - row);
        const bool ok = best == answer;
        right += ok;
        right_by_answer[static_cast<size_t>(b.answer_index[k])] += ok;
        if (!ok) sequence_right[static_cast<size_t>(b.answer_rows[k] / b.seq_len)] = false;
        loss_sum -= row[answer];
        ++total;
      }
      whole += std::count(sequence_right.begin(), sequence_right.end(), true);
    }
  }
  model.train();
  TaskScore s;
  s.accuracy = static_cast<double>(right) / static_cast<double>(total);
  s.sequence_accuracy = static_cast<double>(whole) / static_cast<double>(sequences);
  s.answer_loss = loss_sum / static_cast<double>(total);
  for (int64_t r : right_by_answer)
    s.accuracy_by_answer.push_back(static_cast<double>(r) / static_cast<double>(sequences));
  return s;
}

TaskRunResult train_on_task(const ModelConfig& config, const SyntheticTask& task,
                            const TaskTrainOptions& o,
                            const std::function<void(int64_t, double)>& on_step) {
  task.validate();
  ATTN_CHECK(task.vocab_size <= config.vocab_size && task.seq_len <= config.max_seq_len,
             "the model (vocab {}, context {}) is too small for the {} task (vocab {}, context {})",
             config.vocab_size, config.max_seq_len, task.name(), task.vocab_size, task.seq_len);
  ATTN_CHECK(o.steps >= 1 && o.batch_size >= 1, "task training needs steps and batch size ≥ 1");
  LanguageModel model(config, DType::F32, o.seed);
  auto params = model.named_parameters();
  AdamW optimizer(params, {.weight_decay = o.weight_decay});
  const LrSchedule schedule{
      .lr = o.lr, .min_lr = o.min_lr, .warmup_steps = o.warmup, .decay_steps = o.steps};
  TaskRunResult result;
  std::vector<double> rates;
  for (int64_t step = 0; step < o.steps; ++step) {
    const auto start = std::chrono::steady_clock::now();
    const TaskBatch b =
        task_batch(task, o.seed, TaskStream::kTrain, step * o.batch_size, o.batch_size);
    const Variable loss = task_loss(model, b);
    const double value = loss.item();
    ATTN_CHECK(std::isfinite(value), "the {} task's loss became {} at step {} (lower the lr)",
               task.name(), value, step + 1);
    loss.backward();
    clip_grad_norm(params, o.clip);
    {
      NoGradGuard no_grad;
      optimizer.step(schedule.at(step));
    }
    model.zero_grad();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (step > 0) rates.push_back(static_cast<double>(o.batch_size * task.seq_len) / seconds);
    result.loss_curve.emplace_back(step + 1, value);
    if (on_step) on_step(step + 1, value);
  }
  result.train_tokens_per_s = median(rates);
  result.train_tokens_per_s_spread = half_iqr(rates);
  result.score = score_on_task(model, task, o.seed, o.held_out_sequences);
  return result;
}

}  // namespace attnlab
