// Train a small character-level language model through the library, no CLI:
// a tokenizer and batches from the bundled corpus, a transformer of
// docs/MODEL-SPEC.md, AdamW with warmup and cosine decay, gradient clipping — the
// whole loop in plain sight.
//
// Run it from anywhere: train_tiny_model [CORPUS]. With no argument it reads
// the bundled tiny-shakespeare, found next to the program (its build tree's
// share/attnlab/data, or an installed attnlab's: train/bundled_data.hpp), and
// trains for a few hundred steps (a few seconds on a laptop). It builds as a
// project of its own against an installed attnlab (README: "Use attnlab from
// your own project"). Idle OpenMP threads wait as the environment says; run
// it with GOMP_SPINCOUNT=2000 to wait as the attnlab program does
// (tensor/threads.hpp).
#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/train/adamw.hpp"
#include "attnlab/train/bundled_data.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/grad_clip.hpp"
#include "attnlab/train/lr_schedule.hpp"

using namespace attnlab;

int main(int argc, char** argv) {
  const auto bundled = find_bundled_data(kDefaultCorpus);
  if (argc < 2 && !bundled) {
    std::fprintf(stderr,
                 "train_tiny_model: the bundled corpus is not installed; give one: %s CORPUS\n",
                 argv[0]);
    return 2;
  }
  const std::string corpus = argc > 1 ? argv[1] : bundled->string();
  // 1. Data: characters → ids, 90% train / 10% validation, windows of T+1.
  const int64_t T = 32, B = 8;
  const TextDataset data = TextDataset::from_file(corpus, T);
  BatchSampler batches(data, Split::kTrain, B, T, /*seed=*/1);
  fmt::print("corpus: {} tokens, vocabulary of {}\n", data.num_tokens(),
             data.tokenizer().vocab_size());

  // 2. A model: grouped-query attention with 4 query heads sharing 2 KV heads.
  ModelConfig config = preset_config("baby", data.tokenizer().vocab_size(), {.attention = "gqa"});
  config.d_model = 64;  // smaller than baby, so the example runs in seconds
  config.n_layers = 2;
  config.head_dim = 16;
  config.ffn_hidden = 176;
  config.max_seq_len = T;
  validate_config(config);
  LanguageModel model(config, DType::F32, /*seed=*/1);
  fmt::print("model: {} parameters\n", model.num_parameters());

  // 3. The optimizer and the schedule: warm up for 20 steps, then decay.
  auto params = model.named_parameters();
  AdamW optimizer(params, {.beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1});
  const int64_t steps = 300;
  const LrSchedule schedule{.lr = 3e-3, .min_lr = 3e-4, .warmup_steps = 20, .decay_steps = steps};

  // 4. The loop: forward, backward, clip, step.
  double first = 0, last = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const Batch batch = batches.next();
    const LanguageModelLoss loss = model.loss(batch.inputs, batch.targets, B, T);
    loss.loss.backward();  // gradients of every parameter
    const double norm = clip_grad_norm(params, 1.0);
    {
      NoGradGuard no_grad;
      optimizer.step(schedule.at(step));
    }
    model.zero_grad();
    if (step == 0) first = loss.loss.item();
    last = loss.loss.item();
    if (step % 50 == 0 || step == steps - 1)
      fmt::print("step {:3}: loss {:.4f}  grad norm {:.3f}  lr {:.2e}\n", step, last, norm,
                 schedule.at(step));
  }

  // 5. Validation loss on held-out text, without recording a graph.
  model.eval();
  NoGradGuard no_grad;
  double val = 0;
  const auto eval = data.eval_batches(Split::kVal, 10, B, T);
  for (const Batch& b : eval) val += model.loss(b.inputs, b.targets, B, T).ce.item();
  val /= static_cast<double>(eval.size());
  fmt::print("validation loss {:.4f} ({:.3f} bits/char); the loss went from {:.3f} to {:.3f}\n",
             val, val / std::log(2.0), first, last);
  return last < first - 1.0 ? 0 : 1;  // it must have learned something
}
