// `attnlab sample`: streams text from either checkpoint form; greedy and its
// equivalents are deterministic; seeds reproduce; the report; the refusals
// (a prompt outside the vocabulary, a context too short, no tokenizer) and
// the fallbacks (byte tokens, the sliding window); the defaults (a run
// directory, a random seed that is printed).
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/train/char_tokenizer.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

using test::contains;
using testing::CommandResult;
using testing::run_attnlab;
using testing::TempDir;

constexpr const char* kCorpus = "First Citizen:\nBefore we proceed any further, hear me speak.\n";

// A random model whose vocabulary is the tokenizer's, saved with it (training
// form) and converted (decoder form).
struct Checkpoints {
  TempDir dir{"attnlab-sample"};
  std::string train = dir.file("train.safetensors"), dec = dir.file("dec.safetensors");

  explicit Checkpoints(const std::string& attention, bool byte_fallback = false,
                       int64_t max_seq_len = 32, bool with_tokenizer = true) {
    const CharTokenizer tok = CharTokenizer::from_corpus(kCorpus, byte_fallback);
    const std::string json =
        R"({"vocab_size": )" + std::to_string(tok.vocab_size()) +
        R"(, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": )" +
        std::to_string(max_seq_len) + R"(, "attention": ")" + attention + "\"" +
        (attention == "gqa" ? R"(, "n_kv_heads": 2)" : "") +
        (attention == "mla" ? R"(, "q_lora_rank": 16, "kv_lora_rank": 8, "rope_head_dim": 4)"
                            : "") +
        "}";
    const auto model = test::random_model(config_from_json(json), DType::F32, 2);
    std::map<std::string, std::string> meta;
    if (with_tokenizer) meta["tokenizer"] = tok.to_json();
    write_checkpoint(train, *model, meta);
    const CommandResult r =
        run_attnlab({"convert", "--checkpoint", train, "--out", dec, "--quiet"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  }
};

CommandResult sample(const std::string& checkpoint, std::vector<std::string> args) {
  args.insert(args.begin(), {"sample", "--checkpoint", checkpoint});
  return run_attnlab(args);
}

TEST_CASE("attnlab sample streams the same text from both checkpoint forms") {
  for (const char* attention : {"mha", "gqa", "mqa", "mla"}) {
    INFO(attention);
    Checkpoints ck(attention);
    const std::vector<std::string> args{"--prompt", "First",    "--tokens",
                                        "20",       "--greedy", "--quiet"};
    const CommandResult a = sample(ck.train, args), b = sample(ck.dec, args);
    REQUIRE_MESSAGE(a.exit_code == 0, a.describe());
    CHECK(a.err.empty());
    CHECK(a.out.rfind("First", 0) == 0);  // the prompt, then the continuation
    CHECK(a.out.back() == '\n');
    CHECK(a.out == b.out);
    CHECK(a.out.size() >= 5 + 20 + 1);  // every token is one character here (ASCII corpus)

    // Greedy is deterministic, and temperature 0 or top-k 1 is greedy.
    CHECK(sample(ck.dec, args).out == a.out);
    CHECK(sample(ck.dec, {"--prompt", "First", "--tokens", "20", "--temperature", "0", "--quiet"})
              .out == a.out);
    CHECK(sample(ck.dec,
                 {"--prompt", "First", "--tokens", "20", "--top-k", "1", "--seed", "5", "--quiet"})
              .out == a.out);
  }
}

TEST_CASE("attnlab sample: seeds reproduce, the report tells speed and cache size") {
  Checkpoints ck("mla");
  const std::vector<std::string> args{"--tokens", "25",  "--temperature", "1.3",
                                      "--top-p",  "0.9", "--top-k",       "20"};
  auto with_seed = [&](const char* seed) {
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--seed", seed});
    return sample(ck.dec, a);
  };
  const CommandResult a = with_seed("1"), b = with_seed("1"), c = with_seed("2");
  REQUIRE_MESSAGE(a.exit_code == 0, a.describe());
  CHECK(a.out == b.out);
  CHECK(a.out != c.out);
  CHECK(a.out[0] == '\n');  // the default prompt is a newline
  // 1 prompt token + 24 steps fed: 25 tokens of 2·(8 + 4)·4 bytes.
  CHECK(contains(a.err, "25 tokens: prompt of 1 prefilled in "));
  // --threads 0 (the default) reports what it ended on, 1 or every core.
  CHECK((contains(a.err,
                  " tokens/s (mla attention, batch 1, 1 thread at the end, chosen by "
                  "measuring)") ||
         contains(a.err, " threads at the end, chosen by measuring)")));
  const CommandResult one = sample(ck.dec, {"--tokens", "5", "--threads", "1"});
  CHECK(contains(one.err, " tokens/s (mla attention, batch 1, 1 thread)"));
  CHECK(contains(a.err,
                 "KV cache: 2400 bytes holding 25 tokens (96 bytes per token over 2 "
                 "layers, f32); 3072 bytes allocated for max_seq_len 32\n"));
}

TEST_CASE("attnlab sample refuses what it cannot do, with one clear message and no text") {
  Checkpoints ck("gqa", false, 16);
  // A character outside the vocabulary (no byte fallback).
  const CommandResult oov = sample(ck.dec, {"--prompt", "Firsté", "--tokens", "3"});
  CHECK(oov.exit_code == 1);
  CHECK(oov.out.empty());
  CHECK(oov.err ==
        "attnlab: error: --prompt: cannot encode character 'é' (U+00E9) at character 5 (byte "
        "offset 5): it is not in the tokenizer's vocabulary of 27 characters (a tokenizer with "
        "byte fallback encodes any text)\n");
  // A context too short for prompt + tokens, unless the window slides.
  const CommandResult full = sample(ck.dec, {"--prompt", "First", "--tokens", "13", "--no-slide"});
  CHECK(full.exit_code == 1);
  CHECK(full.out.empty());
  CHECK(full.err ==
        "attnlab: error: a prompt of 5 tokens and 13 new ones need 17 positions, but the model's "
        "context has 16 (max_seq_len): ask for at most 12 tokens, or let the window slide (drop "
        "--no-slide)\n");
  CHECK(
      sample(ck.dec, {"--prompt", "First", "--tokens", "12", "--no-slide", "--quiet"}).exit_code ==
      0);
  // Empty prompt; bad options.
  CHECK(contains(sample(ck.dec, {"--prompt", ""}).err, "the prompt is empty"));
  CHECK(sample(ck.dec, {"--top-p", "1.5"}).exit_code == 2);
  CHECK(sample(ck.dec, {"--temperature", "-1"}).exit_code == 2);
  const CommandResult no_token = sample(ck.dec, {"--top-p", "0"});
  CHECK(no_token.exit_code == 2);
  CHECK(contains(no_token.err, "--top-p: must be in (0, 1], got 0"));

  // A checkpoint without a tokenizer cannot turn text into ids.
  Checkpoints bare("mha", false, 16, false);
  const CommandResult none = sample(bare.dec, {"--tokens", "3"});
  CHECK(none.exit_code == 1);
  CHECK(contains(none.err, ": has no tokenizer (metadata key 'tokenizer')"));
}

TEST_CASE("attnlab sample slides the window by default, saying so once; --slide is still taken") {
  Checkpoints ck("gqa", false, 16);
  for (const char* slide : {"", "--slide"}) {
    std::vector<std::string> args{"--prompt", "First", "--tokens", "40", "--greedy"};
    if (*slide) args.push_back(slide);
    const CommandResult r = sample(ck.dec, args);
    CHECK_MESSAGE(r.exit_code == 0, r.describe());
    CHECK(r.out.size() == 5 + 40 + 1);
    CHECK(contains(r.err,
                   "the text outgrows the model's context of 16 tokens: the window slides, keeping "
                   "the last 8 (--no-slide refuses instead)\n"));
    CHECK(r.err.find("outgrows") == r.err.rfind("outgrows"));  // once
    CHECK(contains(r.err, "window slid"));
  }
  // Within the context nothing is said.
  CHECK(!contains(sample(ck.dec, {"--prompt", "First", "--tokens", "12"}).err, "outgrows"));
}

// The seed printed by a call without --seed repeats its text.
uint64_t printed_seed(const std::string& err) {
  const std::string key = "\nseed ";
  const size_t at = ("\n" + err).find(key);
  REQUIRE_MESSAGE(at != std::string::npos, err);
  return std::stoull(err.substr(at + key.size() - 1));
}

TEST_CASE("attnlab sample: a random seed by default, printed so that --seed repeats the sample") {
  Checkpoints ck("mha");
  const CommandResult a = sample(ck.dec, {"--tokens", "30"}),
                      b = sample(ck.dec, {"--tokens", "30"});
  REQUIRE_MESSAGE(a.exit_code == 0, a.describe());
  REQUIRE_MESSAGE(b.exit_code == 0, b.describe());
  const uint64_t seed = printed_seed(a.err);
  CHECK(seed != printed_seed(b.err));
  CHECK(a.out != b.out);  // 30 draws over 27 tokens: equal texts would take a miracle
  CHECK(contains(a.err, fmt::format("seed {} (--seed {} repeats this sample)\n", seed, seed)));
  const CommandResult again =
      sample(ck.dec, {"--tokens", "30", "--seed", std::to_string(seed), "--quiet"});
  CHECK(again.out == a.out);
  CHECK(again.err.empty());
  // Greedy draws nothing: no seed to print.
  CHECK(!contains(sample(ck.dec, {"--tokens", "5", "--greedy"}).err, "seed"));
}

TEST_CASE("attnlab sample: --num-samples, --prompt-file and the short flags -m -p -n -s -t") {
  Checkpoints ck("mqa");
  TempDir dir("attnlab-sample-prompt");
  const std::string prompt_file = dir.file("prompt.txt");
  { std::ofstream(prompt_file) << "Before we"; }
  const CommandResult three = sample(ck.dec, {"--prompt-file", prompt_file, "--tokens", "10",
                                              "--num-samples", "3", "--seed", "7"});
  REQUIRE_MESSAGE(three.exit_code == 0, three.describe());
  std::vector<std::string> samples;
  for (size_t at = 0;;) {
    const size_t sep = three.out.find("---\n", at);
    samples.push_back(three.out.substr(at, sep == std::string::npos ? sep : sep - at));
    if (sep == std::string::npos) break;
    at = sep + 4;
  }
  REQUIRE(samples.size() == 3);
  for (const std::string& s : samples) CHECK(s.rfind("Before we", 0) == 0);
  CHECK(samples[0] != samples[1]);
  // The three decode as one batch.
  CHECK(contains(three.err, "10 tokens per sample: prompt of "));
  CHECK(contains(three.err, "attention, batch 3, "));
  // Sample i is the sample of seed + i, the same text as alone (batched
  // decoding gives every sequence the bits it gets at batch 1); the short
  // flags are the long ones.
  const CommandResult second = run_attnlab(
      {"sample", "-m", ck.dec, "-p", "Before we", "-n", "10", "-s", "8", "-t", "1", "--quiet"});
  CHECK(second.out == samples[1]);
}

TEST_CASE(
    "attnlab sample --checkpoint RUN_DIR: with default flags, text from a baby model of "
    "every variant") {
  TempDir dir("attnlab-sample-run");
  for (const char* attention : {"mha", "gqa", "mqa", "mla"}) {
    INFO(attention);
    const std::string run = dir.file(attention);
    const CommandResult train =
        run_attnlab({"train", "--preset", "baby", "--attention", attention, "--steps", "2",
                     "--eval-batches", "1", "--threads", "1", "--out", run, "--quiet"});
    REQUIRE_MESSAGE(train.exit_code == 0, train.describe());
    const CommandResult r = run_attnlab({"sample", "--checkpoint", run});
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
    CHECK(r.out.size() >= 200);  // the default: 200 tokens of one character or more each
    CHECK(contains(r.err, "200 tokens: prompt of 1"));
    CHECK(contains(r.err, "the window slides"));  // baby's context is 64
  }
}

TEST_CASE("attnlab sample: a tokenizer with byte fallback encodes any prompt") {
  Checkpoints ck("mqa", true);
  const CommandResult r = sample(ck.train, {"--prompt", "Firsté ✓", "--tokens", "5", "--quiet"});
  CHECK_MESSAGE(r.exit_code == 0, r.describe());
  CHECK(r.out.rfind("Firsté ✓", 0) == 0);
}

}  // namespace
}  // namespace attnlab
