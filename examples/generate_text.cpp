// From a training checkpoint to generated text, through the library API:
//
//   1. a checkpoint: with no arguments, a tiny MLA model is trained for a few
//      seconds on a short passage and saved (as `attnlab train` would save it,
//      tokenizer included); or give one: generate_text CHECKPOINT [PROMPT] [N]
//   2. convert it to the decoder form: MLA's w_uk and w_uv are absorbed into
//      the query and output projections, and the decoder is checked against
//      the training forward before the file is written;
//   3. load the decoder file and generate, streaming text as it comes, with a
//      KV cache that holds only the latent c_kv and the RoPE key per token.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/sampling.hpp"
#include "attnlab/tensor/threads.hpp"
#include "attnlab/train/adamw.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/lr_schedule.hpp"
#include "attnlab/train/tokenizer_loader.hpp"

using namespace attnlab;
namespace fs = std::filesystem;

constexpr const char* kPassage =
    "ROMEO:\nBut, soft! what light through yonder window breaks?\n"
    "It is the east, and Juliet is the sun.\n"
    "Arise, fair sun, and kill the envious moon,\n"
    "Who is already sick and pale with grief,\n"
    "That thou her maid art far more fair than she:\n"
    "Be not her maid, since she is envious;\n"
    "Her vestal livery is but sick and green\n"
    "And none but fools do wear it; cast it off.\n"
    "It is my lady, O, it is my love!\n"
    "O, that she knew she were!\n";

// Trains a tiny MLA model on kPassage for a few hundred steps and writes a
// training checkpoint carrying its tokenizer, as `attnlab train` does.
void train_tiny_checkpoint(const std::string& path) {
  const int64_t T = 32, B = 8;
  const TextDataset data = TextDataset::from_text(kPassage, T);
  BatchSampler batches(data, Split::kTrain, B, T, /*seed=*/1);
  ModelConfig config = preset_config("baby", data.tokenizer().vocab_size(), {.attention = "mla"});
  config.d_model = 64;
  config.n_layers = 2;
  config.head_dim = 16;
  config.q_lora_rank = 32;   // d_cq
  config.kv_lora_rank = 16;  // d_c: the cache keeps 16 + 8 numbers per token and layer
  config.rope_head_dim = 8;  // dr
  config.ffn_hidden = 176;
  config.max_seq_len = 64;
  validate_config(config);
  LanguageModel model(config, DType::F32, /*seed=*/1);
  auto params = model.named_parameters();
  AdamW optimizer(params, {.weight_decay = 0.0});
  const int64_t steps = 250;
  const LrSchedule schedule{.lr = 1e-2, .min_lr = 1e-3, .warmup_steps = 10, .decay_steps = steps};
  double loss = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const Batch batch = batches.next();
    const LanguageModelLoss l = model.loss(batch.inputs, batch.targets, B, T);
    l.loss.backward();
    {
      NoGradGuard no_grad;
      optimizer.step(schedule.at(step));
    }
    model.zero_grad();
    loss = l.loss.item();
  }
  fmt::print("trained a {}-parameter MLA model on {} characters: loss {:.3f}\n",
             model.num_parameters(), data.num_tokens(), loss);
  write_checkpoint(path, model, {{"tokenizer", data.tokenizer().to_json()}});
}

int main(int argc, char** argv) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("attnlab-generate-{}", getpid());
  fs::create_directories(dir);
  std::string checkpoint = argc > 1 ? argv[1] : (dir / "train.safetensors").string();
  const std::string prompt = argc > 2 ? argv[2] : "ROMEO:\n";
  const int64_t tokens = argc > 3 ? std::stoll(argv[3]) : 48;
  int status = 0;
  try {
    // 1. A training checkpoint.
    if (argc <= 1) train_tiny_checkpoint(checkpoint);

    // 2. Convert: absorb, check against the training forward, write.
    const std::string decoder_path = (dir / "decoder.safetensors").string();
    const DecoderAgreement check = convert_checkpoint(checkpoint, decoder_path);
    fmt::print("converted: decoder and training forward agree to {:.1e} of the logits' size\n",
               check.max_relative_error);

    // 3. Load the decoder form and generate. read_decoder_weights reads either
    // form, so the conversion is optional: it only saves the work at load time.
    const DecoderWeights weights = read_decoder_weights(decoder_path);
    const auto tokenizer_ptr = tokenizer_from_json(weights.meta("tokenizer"));
    const Tokenizer& tokenizer = *tokenizer_ptr;
    Decoder decoder(weights, DType::F32, {.batch = 1});
    StreamDecoder text(tokenizer);
    ThreadCountTuner threads(0);  // every core or one, whichever decodes faster: threads.hpp
    fmt::print("---\n{}", prompt);
    const GenerateResult r = generate(decoder, tokenizer.encode(prompt),
                                      {.max_new_tokens = tokens,
                                       .sampling = {.temperature = 0.8, .top_k = 10},
                                       .seed = 7,
                                       .slide = true,
                                       .vocab_limit = tokenizer.vocab_size(),
                                       .threads = &threads},
                                      [&](int32_t id) {
                                        fmt::print("{}", text.push(id));
                                        std::fflush(stdout);
                                      });
    fmt::print("{}\n---\n", text.finish());
    fmt::print("{} tokens at {:.0f} tokens/s; KV cache {} bytes per token ({} attention)\n",
               r.tokens.size(), r.tokens_per_second(), decoder.cache_bytes_per_token(),
               attention_name(weights.config.attention));
    status = static_cast<int64_t>(r.tokens.size()) == tokens ? 0 : 1;
  } catch (const Error& e) {
    fmt::print(stderr, "generate_text: {}\n", e.what());
    status = 1;
  }
  fs::remove_all(dir);
  return status;
}
