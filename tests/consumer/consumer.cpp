// A program of its own that uses an installed attnlab: built out of tree by
// the consumer tests (tests/consumer/README.md), once through the CMake
// package (CMakeLists.txt here) and once through pkg-config. It includes the
// umbrella header, builds a small model and trains it a few steps; it fails
// unless the loss goes down and the linked library is the one whose headers
// it was compiled with.
#include <attnlab/attnlab.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

int main() {
  using namespace attnlab;
  if (std::strcmp(version(), ATTNLAB_VERSION_STRING) != 0) {
    std::fprintf(stderr, "consumer: headers %s, library %s\n", ATTNLAB_VERSION_STRING, version());
    return 1;
  }
  std::string text;
  for (int i = 0; i < 40; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  const int64_t T = 16, B = 4;
  const TextDataset data = TextDataset::from_text(text, T);
  BatchSampler batches(data, Split::kTrain, B, T, /*seed=*/1);

  ModelConfig config = preset_config("baby", data.tokenizer().vocab_size(), {.attention = "mla"});
  config.d_model = 32;
  config.n_layers = 1;
  config.head_dim = 8;
  config.ffn_hidden = 64;
  config.max_seq_len = T;
  validate_config(config);
  LanguageModel model(config, DType::F32, /*seed=*/1);
  auto params = model.named_parameters();
  AdamW optimizer(params, {.beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.0});

  double first = 0, last = 0;
  const int steps = 20;
  for (int step = 0; step < steps; ++step) {
    const Batch batch = batches.next();
    const LanguageModelLoss loss = model.loss(batch.inputs, batch.targets, B, T);
    loss.loss.backward();
    clip_grad_norm(params, 1.0);
    {
      NoGradGuard no_grad;
      optimizer.step(1e-2);
    }
    model.zero_grad();
    (step == 0 ? first : last) = loss.loss.item();
  }
  std::printf("attnlab %s (commit %s): %lld parameters, loss %.3f -> %.3f in %d steps\n", version(),
              git_commit(), static_cast<long long>(model.num_parameters()), first, last, steps);
  return std::isfinite(last) && last < first ? 0 : 1;
}
