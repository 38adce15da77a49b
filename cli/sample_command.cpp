// attnlab sample: continue a prompt with a KV-cached decoder, printing the
// text as it is generated. Reads a training or a decoder checkpoint; the
// tokenizer comes from the checkpoint's metadata. Text goes to stdout; the
// speed and the cache size go to stderr at the end (--quiet: not at all).
#include <fmt/format.h>

#include <cstdio>

#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/memory_estimate.hpp"
#include "attnlab/models/sampling.hpp"
#include "attnlab/tensor/threads.hpp"
#include "attnlab/train/tokenizer.hpp"
#include "cli/commands.hpp"
#include "cli/validators.hpp"

namespace attnlab::cli {
namespace {

struct SampleOptions {
  std::string checkpoint;
  std::string prompt = "\n";  // nanoGPT starts from a newline too
  int64_t tokens = 200;
  SamplingOptions sampling;
  uint64_t seed = 0;
  bool slide = false;
  bool quiet = false;
  int threads = 0;
};

void write_out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void run_sample(const SampleOptions& o) {
  ThreadCountTuner threads(o.threads);  // 0: every core or one, whichever is faster now
  const DecoderWeights weights = read_decoder_weights(o.checkpoint);
  const ModelConfig& config = weights.config;
  const std::string tokenizer_json = weights.meta("tokenizer");
  ATTN_CHECK(!tokenizer_json.empty(),
             "{}: has no tokenizer (metadata key 'tokenizer'), so text cannot be turned into "
             "token ids; checkpoints written by attnlab train carry one",
             o.checkpoint);
  const Tokenizer tokenizer = Tokenizer::from_json(tokenizer_json);
  ATTN_CHECK(tokenizer.vocab_size() <= config.vocab_size,
             "{}: its tokenizer has {} tokens, more than the model's vocab_size {}", o.checkpoint,
             tokenizer.vocab_size(), config.vocab_size);
  std::vector<int32_t> prompt;
  try {
    prompt = tokenizer.encode(o.prompt);
  } catch (const Error& e) {
    throw Error(fmt::format("--prompt: {}", e.what()));
  }

  // The KV cache is allocated for the whole context, max_seq_len from the file:
  // refuse, with the estimate, a model that does not fit, before allocating.
  check_memory_fits(
      estimate_sampling_memory(config, 1, config.max_seq_len, /*weights_loaded=*/true), "sampling",
      fmt::format("the KV cache is allocated for the model's max_seq_len of {}",
                  config.max_seq_len));
  Decoder decoder(weights, DType::F32, {.batch = 1});
  GenerateOptions g{.max_new_tokens = o.tokens,
                    .sampling = o.sampling,
                    .seed = o.seed,
                    .slide = o.slide,
                    .vocab_limit = tokenizer.vocab_size(),
                    .threads = &threads};
  // The prompt is echoed with the first new token, so that a refusal (a
  // context too short, say) prints nothing but the error.
  StreamDecoder text(tokenizer);
  bool echoed = false;
  const GenerateResult r = generate(decoder, prompt, g, [&](int32_t id) {
    write_out(echoed ? text.push(id) : o.prompt + text.push(id));
    echoed = true;
  });
  write_out((echoed ? "" : o.prompt) + text.finish() + "\n");
  if (o.quiet) return;
  const int n_threads = threads.threads();
  const int64_t cached = r.cache_bytes / std::max<int64_t>(1, decoder.cache_bytes_per_token());
  fmt::print(stderr,
             "{} tokens: prompt of {} prefilled in {:.1f} ms, then {:.0f} tokens/s ({} "
             "attention, batch 1, {} thread{}{}{})\n",
             r.tokens.size(), r.prompt_tokens, r.prefill_seconds * 1e3, r.tokens_per_second(),
             attention_name(config.attention), n_threads, n_threads == 1 ? "" : "s",
             o.threads == 0 ? " at the end, chosen by measuring" : "",
             r.slides ? fmt::format(", window slid {} times", r.slides) : "");
  fmt::print(stderr,
             "KV cache: {} bytes holding {} tokens ({} bytes per token over {} layers, f32); {} "
             "bytes allocated for max_seq_len {}\n",
             r.cache_bytes, cached, decoder.cache_bytes_per_token(), config.n_layers,
             decoder.cache_capacity_bytes(), decoder.max_len());
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sample", "Generate text from a checkpoint (training or decoder form) with a KV cache");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint (.safetensors), either form")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--prompt", o->prompt, "Text to continue (default: a newline)");
  cmd->add_option("--tokens", o->tokens, "Tokens to generate (default 200)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("--temperature", o->sampling.temperature,
                  "Softmax temperature (default 1; 0 is greedy)")
      ->check(kNonNegativeNumber);
  cmd->add_option("--top-k", o->sampling.top_k,
                  "Sample among the k most likely tokens only (default 0: all)")
      ->check(kNonNegativeNumber);
  cmd->add_option("--top-p", o->sampling.top_p,
                  "Sample among the most likely tokens that make up this probability (default 1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", o->seed, "Random seed (default 0): same seed, same text")->check(kSeed);
  cmd->add_flag("--greedy", o->sampling.greedy, "Always take the most likely token");
  cmd->add_flag("--slide", o->slide,
                "Past max_seq_len, keep the last max_seq_len/2 tokens and go on (default: refuse)");
  cmd->add_option(
         "--threads", o->threads,
         "Threads (default 0: all cores or one, whichever decodes faster, measured as it goes)")
      ->check(CLI::Range(0, 1024));
  cmd->add_flag("--quiet", o->quiet, "Print only the text: no speed or cache report");
  cmd->callback([o] { run_sample(*o); });
}

}  // namespace attnlab::cli
