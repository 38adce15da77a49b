// attnlab sample: continue a prompt with a KV-cached decoder, printing the
// text as it is generated. Reads a training or a decoder checkpoint, or a run
// directory (its best.safetensors); the tokenizer comes from the checkpoint's
// metadata. Text goes to stdout; the seed, a note when the window slides, the
// speed and the cache size go to stderr (--quiet: nothing but the text).
//
// The defaults work on any model: the window slides when the text outgrows
// the context (as llama.cpp shifts its context; --no-slide refuses instead),
// and the seed is drawn at random and printed, so every call gives new text
// that --seed can repeat.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/memory_estimate.hpp"
#include "attnlab/models/sampling.hpp"
#include "attnlab/tensor/threads.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "cli/commands.hpp"
#include "cli/validators.hpp"

namespace attnlab::cli {
namespace {

struct SampleOptions {
  std::string checkpoint;
  std::string prompt = "\n";  // nanoGPT starts from a newline too
  std::string prompt_file;
  int64_t tokens = 200;
  int64_t num_samples = 1;
  SamplingOptions sampling;
  std::optional<uint64_t> seed;
  bool slide = false;  // accepted for scripts written when refusing was the default
  bool no_slide = false;
  bool quiet = false;
  int threads = 0;
  std::string kv_cache = "f32";
};

void write_out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// A checkpoint file, or the best.safetensors of a run directory.
std::string checkpoint_file(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path)) return path;
  const fs::path best = fs::path(path) / "best.safetensors";
  ATTN_CHECK(fs::is_regular_file(best),
             "--checkpoint {} is a directory without a best.safetensors: give a run directory "
             "written by attnlab train, or a checkpoint file",
             path);
  return best.string();
}

std::string read_prompt_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ATTN_CHECK(in.good(), "--prompt-file {}: cannot be read", path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ATTN_CHECK(!in.bad(), "--prompt-file {}: read error", path);
  return text;
}

void run_sample(const SampleOptions& o) {
  ThreadCountTuner threads(o.threads);  // 0: every core or one, whichever is faster now
  const std::string checkpoint = checkpoint_file(o.checkpoint);
  const DecoderWeights weights = read_decoder_weights(checkpoint);
  const ModelConfig& config = weights.config;
  const std::string tokenizer_json = weights.meta("tokenizer");
  ATTN_CHECK(!tokenizer_json.empty(),
             "{}: has no tokenizer (metadata key 'tokenizer'), so text cannot be turned into "
             "token ids; checkpoints written by attnlab train carry one",
             checkpoint);
  const auto tokenizer_ptr = tokenizer_from_json(tokenizer_json);
  const Tokenizer& tokenizer = *tokenizer_ptr;
  ATTN_CHECK(tokenizer.vocab_size() <= config.vocab_size,
             "{}: its tokenizer has {} tokens, more than the model's vocab_size {}", checkpoint,
             tokenizer.vocab_size(), config.vocab_size);
  const std::string prompt_text =
      o.prompt_file.empty() ? o.prompt : read_prompt_file(o.prompt_file);
  const char* prompt_flag = o.prompt_file.empty() ? "--prompt" : "--prompt-file";
  std::vector<int32_t> prompt;
  try {
    prompt = tokenizer.encode(prompt_text);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", prompt_flag, e.what()));
  }
  ATTN_CHECK(!prompt.empty(), "{}: the prompt is empty: generation needs at least one token",
             prompt_flag);

  // The KV cache is allocated for the whole context, max_seq_len from the file,
  // for every sample of the batch: refuse, with the estimate, a model that
  // does not fit, before allocating.
  const KvCacheFormat kv_cache = parse_kv_cache_format(o.kv_cache);
  check_memory_fits(
      estimate_sampling_memory(config, o.num_samples, config.max_seq_len, /*weights_loaded=*/true,
                               kv_cache),
      "sampling",
      fmt::format("the KV cache is allocated for the model's max_seq_len of {}{}",
                  config.max_seq_len,
                  o.num_samples > 1 ? fmt::format(" × {} samples", o.num_samples) : ""));
  // The samples decode as one batch: each step feeds a token of every one.
  Decoder decoder(weights, DType::F32, {.batch = o.num_samples, .kv_cache = kv_cache});
  const bool random = !(o.sampling.greedy || o.sampling.temperature == 0 || o.sampling.top_k == 1);
  const uint64_t seed =
      o.seed ? *o.seed : (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  const int64_t positions = std::ssize(prompt) + o.tokens - 1;
  if (!o.quiet) {
    if (!o.no_slide && o.tokens > 0 && positions > decoder.max_len())
      fmt::print(stderr,
                 "the text outgrows the model's context of {} tokens: the window slides, keeping "
                 "the last {} (--no-slide refuses instead)\n",
                 decoder.max_len(), std::max<int64_t>(1, decoder.max_len() / 2));
  }
  const GenerateOptions g{.max_new_tokens = o.tokens,
                          .sampling = o.sampling,
                          .seed = seed,  // sample n: seed + n (wraps: any seed works)
                          .slide = !o.no_slide,
                          .vocab_limit = tokenizer.vocab_size(),
                          .threads = &threads};
  // One sample streams as it is generated; several are printed when the
  // batch is done, one after another. The prompt is echoed with the first new
  // token, so that a refusal (a context too short, say) prints nothing but
  // the error.
  std::vector<StreamDecoder> texts(o.num_samples, StreamDecoder(tokenizer));
  std::vector<std::string> outputs(o.num_samples);
  std::vector<bool> echoed(o.num_samples, false);
  const std::vector<GenerateResult> results =
      generate_batch(decoder, prompt, g, [&](int64_t n, int32_t id) {
        std::string piece = (echoed[n] ? "" : prompt_text) + texts[n].push(id);
        echoed[n] = true;
        if (o.num_samples == 1)
          write_out(piece);
        else
          outputs[n] += piece;
      });
  for (int64_t n = 0; n < o.num_samples; ++n) {
    if (n > 0) write_out("---\n");
    write_out(outputs[n] + (echoed[n] ? "" : prompt_text) + texts[n].finish() + "\n");
  }
  if (o.quiet) return;
  if (random && !o.seed)  // after the text: a refusal prints nothing but the error
    fmt::print(stderr, "seed {} (--seed {} repeats {})\n", seed, seed,
               o.num_samples > 1 ? "these samples; sample n uses seed + n" : "this sample");
  const GenerateResult& r = results.front();
  const int n_threads = threads.threads();
  fmt::print(stderr,
             "{} tokens{}: prompt of {} prefilled in {:.1f} ms, then {:.0f} tokens/s ({} "
             "attention, batch {}, {} thread{}{}{}){}\n",
             r.tokens.size(), o.num_samples > 1 ? " per sample" : "", r.prompt_tokens,
             r.prefill_seconds * 1e3, r.tokens_per_second() * static_cast<double>(o.num_samples),
             attention_name(config.attention), o.num_samples, n_threads, n_threads == 1 ? "" : "s",
             o.threads == 0 ? " at the end, chosen by measuring" : "",
             r.slides ? fmt::format(", window slid {} times", r.slides) : "",
             weights.weights == WeightFormat::F32
                 ? ""
                 : fmt::format(" with {} weights", weight_format_name(weights.weights)));
  const int64_t cached = r.cache_bytes / std::max<int64_t>(1, decoder.cache_bytes_per_token());
  fmt::print(stderr,
             "KV cache: {} bytes holding {} tokens{} ({} bytes per token over {} layers, {}); {} "
             "bytes allocated for max_seq_len {}\n",
             r.cache_bytes * o.num_samples, cached,
             o.num_samples > 1 ? fmt::format(" of each of {} samples", o.num_samples) : "",
             decoder.cache_bytes_per_token(), config.n_layers,
             kv_cache_format_name(decoder.kv_cache_format()), decoder.cache_capacity_bytes(),
             decoder.max_len());
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  CLI::App* cmd = app.add_subcommand(
      "sample",
      "Generate text from a run directory or a checkpoint (training or decoder form) with a KV "
      "cache");
  cmd->add_option("-m,--checkpoint", o->checkpoint,
                  "Run directory (its best.safetensors) or checkpoint (.safetensors), either form")
      ->required()
      ->check(CLI::ExistingPath);
  CLI::Option* prompt =
      cmd->add_option("-p,--prompt", o->prompt, "Text to continue (default: a newline)");
  cmd->add_option("-f,--prompt-file", o->prompt_file, "Continue the text of this file")
      ->check(CLI::ExistingFile)
      ->excludes(prompt);
  cmd->add_option("-n,--tokens", o->tokens, "Tokens to generate per sample (default 200)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("--num-samples", o->num_samples,
                  "Samples to generate, decoded together as one batch and printed one after "
                  "another, separated by a line '---'; sample i uses seed + i and gets the text "
                  "it would get alone (default 1)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 12));
  CLI::Option* greedy =
      cmd->add_flag("--greedy", o->sampling.greedy, "Always take the most likely token");
  cmd->add_option("--temperature", o->sampling.temperature,
                  "Softmax temperature (default 1; 0 is greedy)")
      ->check(kNonNegativeNumber)
      ->excludes(greedy);
  cmd->add_option("--top-k", o->sampling.top_k,
                  "Sample among the k most likely tokens only (default 0: all)")
      ->check(kNonNegativeNumber)
      ->excludes(greedy);
  cmd->add_option("--top-p", o->sampling.top_p,
                  "Sample among the most likely tokens that make up this probability, in (0, 1] "
                  "(default 1: all)")
      ->check(kShareAboveZero)
      ->excludes(greedy);
  cmd->add_option("-s,--seed", o->seed,
                  "Random seed: same seed, same text (default: a random one, printed)")
      ->check(kSeed)
      ->excludes(greedy);
  CLI::Option* no_slide = cmd->add_flag(
      "--no-slide", o->no_slide,
      "Refuse output that outgrows the model's context (default: the window slides, keeping the "
      "last max_seq_len/2 tokens, and generation goes on)");
  cmd->add_flag("--slide", o->slide, "Slide the window (the default; kept for old scripts)")
      ->excludes(no_slide);
  cmd->add_option(
         "-t,--threads", o->threads,
         "Threads (default 0: all cores or one, whichever decodes faster, measured as it goes)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--kv-cache", o->kv_cache,
                  "What the KV cache stores: f32, or bf16 (half the bytes: each cached key, after "
                  "RoPE, and value rounded to bf16; the attention widens them to f32) (default "
                  "f32)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_flag("--quiet", o->quiet, "Print only the text: no seed, speed or cache report");
  cmd->callback([o] { run_sample(*o); });
}

}  // namespace attnlab::cli
