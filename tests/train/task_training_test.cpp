// Training on a synthetic task: bit-reproducible from the seed, the loss
// counts the answers only (score_on_task's loss is task_loss on the same
// sequences), and a few steps already lower it.
#include <doctest/doctest.h>

#include <cmath>

#include "attnlab/models/config.hpp"
#include "attnlab/train/task_training.hpp"

using namespace attnlab;

namespace {

ModelConfig small_model(const std::string& attention, int64_t vocab, int64_t context) {
  ModelConfig c = preset_config("tiny", vocab, {.attention = attention});
  c.max_seq_len = context;
  validate_config(c);
  return c;
}

}  // namespace

TEST_CASE("train_on_task is reproducible and lowers the answer loss") {
  const SyntheticTask task{TaskKind::kInduction, 16, 24, 8};
  TaskTrainOptions o;
  o.steps = 40;
  o.batch_size = 8;
  o.warmup = 2;
  o.held_out_sequences = 16;
  const ModelConfig config = small_model("gqa", 16, 24);
  const TaskRunResult a = train_on_task(config, task, o);
  const TaskRunResult b = train_on_task(config, task, o);
  REQUIRE(a.loss_curve.size() == 40u);
  for (size_t i = 0; i < a.loss_curve.size(); ++i)
    CHECK(a.loss_curve[i].second == b.loss_curve[i].second);  // the same bits
  CHECK(a.score.accuracy == b.score.accuracy);
  CHECK(a.score.answer_loss == b.score.answer_loss);
  // The first loss is about ln 16 (a fresh model guesses), and training lowers it.
  CHECK(a.loss_curve.front().second == doctest::Approx(std::log(16.0)).epsilon(0.1));
  double last = 0;  // the mean of the last 5 steps
  for (size_t i = 35; i < 40; ++i) last += a.loss_curve[i].second / 5;
  CHECK(last < a.loss_curve.front().second - 0.1);
  CHECK(a.score.accuracy >= 0);
  CHECK(a.score.accuracy <= 1);
  CHECK(a.score.accuracy_by_answer.size() == 8u);
  o.seed = 99;
  CHECK(train_on_task(config, task, o).loss_curve.back().second != a.loss_curve.back().second);
}

TEST_CASE("score_on_task: the answer loss is task_loss on the held-out sequences") {
  for (const char* attention : {"mha", "mla"}) {
    CAPTURE(attention);
    const SyntheticTask task{TaskKind::kRecall, 32, 32, 4};
    LanguageModel model(small_model(attention, 32, 32), DType::F32, 5);
    const TaskScore s = score_on_task(model, task, 11, 6, 4);  // two batches: 4 + 2
    double loss = 0;
    {
      NoGradGuard no_grad;
      loss = (task_loss(model, task_batch(task, 11, TaskStream::kHeldOut, 0, 4)).item() * 16 +
              task_loss(model, task_batch(task, 11, TaskStream::kHeldOut, 4, 2)).item() * 8) /
             24;
    }
    CHECK(s.answer_loss == doctest::Approx(loss).epsilon(1e-5));
    double mean_by_answer = 0;
    for (double a : s.accuracy_by_answer) mean_by_answer += a / 4;
    CHECK(mean_by_answer == doctest::Approx(s.accuracy));
    CHECK(s.sequence_accuracy <= s.accuracy + 1e-12);
  }
}
