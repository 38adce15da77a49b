#include "attnlab/train/trainer.hpp"

#include <cmath>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/train/grad_clip.hpp"

namespace attnlab {
namespace {

int64_t resolve_seq_len(const TrainSettings& s, const ModelConfig& c) {
  const int64_t t = s.seq_len == 0 ? c.max_seq_len : s.seq_len;
  ATTN_CHECK(t <= c.max_seq_len, "--seq-len {} exceeds the model's max_seq_len {}", t,
             c.max_seq_len);
  return t;
}

LrSchedule make_schedule(const TrainSettings& s) {
  return {.lr = s.lr,
          .min_lr = s.min_lr,
          .warmup_steps = s.warmup,
          .decay_steps = s.decay_steps > 0 ? s.decay_steps : s.steps};
}

}  // namespace

Trainer::Trainer(LanguageModel& model, const TrainingData& data, const TrainSettings& settings)
    : model_(model),
      data_(data),
      settings_(settings),
      seq_len_(resolve_seq_len(settings, model.config())),
      schedule_(make_schedule(settings)),
      optimizer_(model.named_parameters(), {.beta1 = settings.beta1,
                                            .beta2 = settings.beta2,
                                            .eps = settings.eps,
                                            .weight_decay = settings.weight_decay}),
      params_(model.named_parameters()),
      sampler_(data, Split::kTrain, settings.batch_size, seq_len_, settings.seed) {
  ATTN_CHECK(data.tokenizer().vocab_size() <= model.config().vocab_size,
             "the corpus has {} distinct tokens but the model's vocab_size is {}",
             data.tokenizer().vocab_size(), model.config().vocab_size);
}

StepResult Trainer::step() {
  model_.train();
  StepResult r;
  r.step = steps_done() + 1;
  r.lr = schedule_.at(steps_done());
  const double inv_accum = 1.0 / static_cast<double>(settings_.accum);
  for (int64_t micro = 0; micro < settings_.accum; ++micro) {
    sampler_.next(batch_);
    LanguageModelLoss l =
        model_.loss(batch_.inputs, batch_.targets, batch_.batch_size, batch_.seq_len);
    const double loss = l.loss.item();
    if (!std::isfinite(loss)) {
      model_.zero_grad();
      throw Error(
          fmt::format("the loss became {} at step {}: training stopped (lower --lr, or "
                      "raise --clip / --warmup)",
                      loss, r.step));
    }
    // d(loss/accum): the micro-batch gradients add up to the gradient of the mean.
    l.loss.backward(Tensor::full({}, inv_accum, model_.dtype()));
    r.loss += loss * inv_accum;
    r.ce += l.ce.item() * inv_accum;
    r.aux += l.aux.item() * inv_accum;
    r.tokens += batch_.batch_size * batch_.seq_len;
  }
  r.grad_norm = clip_grad_norm(params_, settings_.clip);
  ATTN_CHECK(std::isfinite(r.grad_norm),
             "the gradient norm became {} at step {}: training stopped (lower --lr)", r.grad_norm,
             r.step);
  {
    NoGradGuard no_grad;
    optimizer_.step(r.lr);
  }
  model_.zero_grad();
  return r;
}

double Trainer::evaluate(Split split) {
  std::vector<Batch>& batches = eval_sets_[split == Split::kTrain ? 0 : 1];
  if (batches.empty())
    batches = data_.eval_batches(split, settings_.eval_batches, settings_.batch_size, seq_len_);
  model_.eval();
  NoGradGuard no_grad;
  double total = 0;
  for (const Batch& b : batches)
    total += model_.loss(b.inputs, b.targets, b.batch_size, b.seq_len).ce.item();
  model_.train();
  return total / static_cast<double>(batches.size());
}

TrainerState Trainer::state() const {
  return {steps_done(), sampler_.state(), model_.dropout_rng().state(), optimizer_.first_moments(),
          optimizer_.second_moments()};
}

void Trainer::load_state(const TrainerState& s) {
  optimizer_.load_state(s.adam_m, s.adam_v, s.step);
  sampler_.set_state(s.sampler);
  model_.dropout_rng().set_state(s.dropout);
}

}  // namespace attnlab
