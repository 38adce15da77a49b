#include "attnlab/train/trainer.hpp"

#include <cmath>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/train/grad_clip.hpp"

namespace attnlab {
namespace {

LrSchedule make_schedule(const TrainSettings& s) {
  return {.lr = s.lr,
          .min_lr = s.min_lr,
          .warmup_steps = s.warmup,
          .decay_steps = s.resolved_decay_steps()};
}

}  // namespace

Trainer::Trainer(LanguageModel& model, const TrainingData& data, const TrainSettings& settings,
                 Communicator* ranks)
    : model_(model),
      alone_(ranks ? nullptr : std::make_unique<SingleProcess>()),
      parallel_(ranks ? *ranks : *alone_, model.named_parameters(), settings.accum),
      data_(data),
      settings_(settings),
      seq_len_(model.config().resolve_seq_len(settings.seq_len)),
      schedule_(make_schedule(settings)),
      optimizer_(parallel_.owned_parameters(), {.beta1 = settings.beta1,
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
  Communicator& ranks = parallel_.ranks();
  ranks.take_seconds_communicating();  // an evaluation's is not the step's
  StepResult r;
  r.step = steps_done() + 1;
  r.lr = schedule_.at(steps_done());
  const int64_t accum = settings_.accum;
  const double inv_accum = 1.0 / static_cast<double>(accum);
  const MicroBatchSpan mine = parallel_.micro_batches();
  // Dropout: micro-batch i draws its masks from a stream of its own, seeded
  // from the run's dropout generator and i, so that its masks do not depend
  // on which rank computes it (nor on the micro-batches before it there).
  const bool dropout = settings_.dropout > 0;
  const uint64_t dropout_base = dropout ? model_.dropout_rng().next_u64() : 0;
  const Rng::State dropout_after = model_.dropout_rng().state();
  std::vector<double> values;  // loss, ce, aux of each of this rank's micro-batches
  bool finite = true;
  for (int64_t micro = 0; micro < accum; ++micro) {
    sampler_.next(batch_);  // every rank draws every batch: the sampler stays in step
    if (micro < mine.lo || micro >= mine.hi) continue;
    if (!finite) {  // the step is lost: only the losses are still exchanged
      values.insert(values.end(), {NAN, NAN, NAN});
      continue;
    }
    if (dropout) model_.dropout_rng().reseed(dropout_base + static_cast<uint64_t>(micro));
    LanguageModelLoss l =
        model_.loss(batch_.inputs, batch_.targets, batch_.batch_size, batch_.seq_len);
    values.insert(values.end(), {l.loss.item(), l.ce.item(), l.aux.item()});
    if (!std::isfinite(values[values.size() - 3])) {
      finite = false;
      continue;
    }
    // d(loss/accum): the micro-batch gradients add up to the gradient of the mean.
    l.loss.backward(Tensor::full({}, inv_accum, model_.dtype()));
    parallel_.add_micro_batch(micro);
  }
  if (dropout) model_.dropout_rng().set_state(dropout_after);
  // The losses of every micro-batch, added in micro-batch order on every rank.
  const std::vector<double> all = all_gather_values(ranks, values, 3 * accum);
  for (int64_t micro = 0; micro < accum; ++micro) {
    const double loss = all[static_cast<size_t>(3 * micro)];
    if (!std::isfinite(loss)) {
      parallel_.discard_step();
      model_.zero_grad();
      fail_on_every_rank(
          ranks, fmt::format("the loss became {} at step {}: training stopped (lower --lr, or "
                             "raise --clip / --warmup)",
                             loss, r.step));
    }
    r.loss += loss * inv_accum;
    r.ce += all[static_cast<size_t>(3 * micro + 1)] * inv_accum;
    r.aux += all[static_cast<size_t>(3 * micro + 2)] * inv_accum;
  }
  r.tokens = accum * batch_.batch_size * batch_.seq_len;
  parallel_.reduce_gradients();
  r.grad_norm = parallel_.global_grad_norm();
  if (!std::isfinite(r.grad_norm)) {
    model_.zero_grad();
    fail_on_every_rank(
        ranks, fmt::format("the gradient norm became {} at step {}: training stopped (lower --lr)",
                           r.grad_norm, r.step));
  }
  DataParallel::NamedParameters owned = parallel_.owned_parameters();
  clip_to_norm(owned, r.grad_norm, settings_.clip);
  {
    NoGradGuard no_grad;
    optimizer_.step(r.lr);
  }
  parallel_.gather_weights();
  model_.zero_grad();
  r.seconds_communicating = ranks.take_seconds_communicating();
  return r;
}

double Trainer::evaluate(Split split,
                         const std::function<void(int64_t done, int64_t total)>& on_batch) {
  std::vector<Batch>& batches = eval_sets_[split == Split::kTrain ? 0 : 1];
  if (batches.empty())
    batches = data_.eval_batches(split, settings_.eval_batches, settings_.batch_size, seq_len_);
  Communicator& ranks = parallel_.ranks();
  const auto n = static_cast<int64_t>(batches.size());
  const ItemRange mine = share_of(n, ranks.size(), ranks.rank());
  model_.eval();
  std::vector<double> losses;
  {
    NoGradGuard no_grad;
    for (int64_t i = mine.begin; i < mine.end; ++i) {
      const Batch& b = batches[static_cast<size_t>(i)];
      losses.push_back(model_.loss(b.inputs, b.targets, b.batch_size, b.seq_len).ce.item());
      if (on_batch) on_batch(i - mine.begin + 1, mine.end - mine.begin);
    }
  }
  model_.train();
  double total = 0;
  for (double loss : all_gather_values(ranks, losses, n)) total += loss;
  return total / static_cast<double>(n);
}

TrainerState Trainer::state() {
  return {steps_done(), sampler_.state(), model_.dropout_rng().state(),
          parallel_.gather_to_root(optimizer_.first_moments()),
          parallel_.gather_to_root(optimizer_.second_moments())};
}

void Trainer::load_state(const TrainerState& s) {
  ATTN_CHECK(s.adam_m.size() == params_.size() && s.adam_v.size() == params_.size(),
             "the optimizer state has {} and {} moments for {} parameters", s.adam_m.size(),
             s.adam_v.size(), params_.size());
  const auto [first, last] = parallel_.shard(parallel_.ranks().rank());
  const auto begin = static_cast<std::ptrdiff_t>(first), end = static_cast<std::ptrdiff_t>(last);
  optimizer_.load_state({s.adam_m.begin() + begin, s.adam_m.begin() + end},
                        {s.adam_v.begin() + begin, s.adam_v.begin() + end}, s.step);
  sampler_.set_state(s.sampler);
  model_.dropout_rng().set_state(s.dropout);
}

}  // namespace attnlab
