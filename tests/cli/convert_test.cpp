// `attnlab convert`: writes the decoder form after checking it, and the
// refusals around the two checkpoint forms.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using test::contains;
using testing::CommandResult;
using testing::run_attnlab;
using testing::TempDir;

TEST_CASE("attnlab convert checks agreement, then writes the decoder form") {
  TempDir tmp("attnlab-convert");
  for (const char* attention : {"mha", "gqa", "mqa", "mla"}) {
    INFO(attention);
    const ModelConfig config = test::small_config({.attention = attention, .moe = true});
    const auto model = test::random_model(config, DType::F32, 4);
    const std::string train = tmp.file(std::string(attention) + ".safetensors");
    const std::string dec = tmp.file(std::string(attention) + ".decoder.safetensors");
    write_checkpoint(train, *model,
                     {{"tokenizer", R"({"type":"char","chars":[97],"byte_fallback":false})"}});
    const CommandResult r = run_attnlab({"convert", "--checkpoint", train, "--out", dec});
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
    CHECK(r.err.empty());
    CHECK(contains(r.out,
                   "checked: decoder and training forward agree at every position of a random "
                   "prompt (B=2 × T=12, 6 tokens prefilled, then one step per token): largest "
                   "difference "));
    CHECK(contains(r.out, "wrote " + dec + ": " + attention + " decoder, 2 layers, KV cache " +
                              std::to_string(config.kv_cache_floats_per_token()) + " numbers"));
    const SafetensorsFile file = read_safetensors(dec);
    CHECK(file.metadata.at("format") == "attnlab.decoder");
    CHECK(file.metadata.count("tokenizer") == 1);
    CHECK(file.metadata.at("decoder.source") == train);
    CHECK(read_decoder_weights(dec).config == config);

    // A decoder file is not converted again, nor read by training-only commands.
    const CommandResult again =
        run_attnlab({"convert", "--checkpoint", dec, "--out", tmp.file("x.safetensors")});
    CHECK(again.exit_code == 1);
    CHECK(again.err == "attnlab: error: " + dec +
                           ": is already a decoder checkpoint; convert needs a training "
                           "checkpoint\n");
    CHECK(!fs::exists(tmp.file("x.safetensors")));
  }
}

TEST_CASE("attnlab convert --weights bf16|int8 of a MoE: both checks enforced") {
  TempDir tmp("attnlab-convert-moe");
  const ModelConfig config = test::small_config({.attention = "gqa", .moe = true});
  const std::string train = tmp.file("train.safetensors");
  write_checkpoint(train, *test::random_model(config, DType::F32, 1));
  for (const std::string weights : {"bf16", "int8"}) {
    INFO(weights);
    const std::string dec = tmp.file(weights + ".safetensors");
    const CommandResult r =
        run_attnlab({"convert", "--checkpoint", train, "--out", dec, "--weights", weights});
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
    const std::string tolerance = weights == "bf16" ? "0.0001" : "0.075";
    CHECK(contains(r.out, "checked: the " + weights +
                              " decoder computes with its stored values (largest difference "));
    CHECK(contains(r.out, ", tolerance " + tolerance + "; same experts at "));
    CHECK(contains(r.out, " of 24 positions, logits compared at the "));
    CHECK(contains(r.out, "; against the f32 decoder of the training weights, same experts at "));
    CHECK(!contains(r.out, "not bounded"));
    CHECK(read_decoder_weights(dec).weights == parse_weight_format(weights));
  }
}

TEST_CASE("attnlab convert refuses bad arguments, writing nothing") {
  TempDir tmp("attnlab-convert-bad");
  const ModelConfig config = test::small_config({.attention = "gqa"});
  const std::string train = tmp.file("train.safetensors");
  write_checkpoint(train, *test::random_model(config, DType::F32, 1));

  const CommandResult same = run_attnlab({"convert", "--checkpoint", train, "--out", train});
  CHECK(same.exit_code == 1);
  CHECK(contains(same.err, "is the training checkpoint itself"));

  const CommandResult missing = run_attnlab({"convert", "--checkpoint", train});
  CHECK(missing.exit_code == 2);
  CHECK(contains(missing.err, "--out is required"));

  const CommandResult nofile =
      run_attnlab({"convert", "--checkpoint", tmp.file("nope"), "--out", tmp.file("o")});
  CHECK(nofile.exit_code == 2);

  // Not a checkpoint at all: an error naming the file, and no output.
  const std::string junk = tmp.file("junk.safetensors");
  std::ofstream(junk) << "not a safetensors file";
  const CommandResult bad = run_attnlab({"convert", "--checkpoint", junk, "--out", tmp.file("o")});
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, "attnlab: error: " + junk));
  CHECK(!fs::exists(tmp.file("o")));
}

}  // namespace
}  // namespace attnlab
