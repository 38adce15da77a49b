// attnlab convert --weights bf16|int8 and eval of decoder checkpoints: on
// tiny models trained for a few seconds, of every variant, the decoder's val
// loss is the training form's (f32), and moves by less than 0.002 nats in
// bf16 and 0.01 in int8; sample reads the packed files; bad values and
// truncated files end in one line.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/cli/cli_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::run_attnlab;
using testing::TempDir;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The number after "val loss " in eval's line.
double val_loss(const CommandResult& r) {
  const size_t at = r.out.find("val loss ");
  REQUIRE_MESSAGE(at != std::string::npos, r.describe());
  return std::stod(r.out.substr(at + 9));
}

std::string tiny_config(const std::string& attention, bool moe) {
  std::string json = R"({"vocab_size": 65, "d_model": 48, "n_layers": 2, "n_heads": 4, )"
                     R"("max_seq_len": 32, "attention": ")" +
                     attention + "\"";
  if (attention == "gqa") json += R"(, "n_kv_heads": 2)";
  if (attention == "mla") json += R"(, "q_lora_rank": 24, "kv_lora_rank": 16, "rope_head_dim": 6)";
  if (moe) json += R"(, "n_experts": 4, "top_k": 2)";
  return json + "}";
}

TEST_CASE("convert --weights bf16|int8: trained tiny models of every variant keep their val loss") {
  TempDir tmp("attnlab-quantized");
  const std::string corpus = ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt";
  const std::vector<std::string> eval_flags{
      "--data", corpus, "--batches", "8", "--batch-size", "4", "--seq-len", "32", "--threads", "1"};
  auto eval = [&](const std::string& checkpoint) {
    std::vector<std::string> args{"eval", "--checkpoint", checkpoint};
    args.insert(args.end(), eval_flags.begin(), eval_flags.end());
    const CommandResult r = run_attnlab(args);
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
    return r;
  };
  for (const auto& [attention, moe] : std::vector<std::pair<std::string, bool>>{
           {"mha", false}, {"gqa", false}, {"mqa", false}, {"mla", false}, {"gqa", true}}) {
    INFO(attention << (moe ? "+moe" : ""));
    const std::string name = attention + (moe ? "_moe" : "");
    const std::string config = tmp.file(name + ".json"), run = tmp.file(name);
    std::ofstream(config) << tiny_config(attention, moe);
    const CommandResult train = run_attnlab(
        {"train", "--config",  config, "--data",   corpus, "--steps",      "120", "--batch-size",
         "8",     "--lr",      "3e-3", "--warmup", "10",   "--eval-every", "0",   "--eval-batches",
         "2",     "--threads", "1",    "--out",    run,    "--quiet"});
    REQUIRE_MESSAGE(train.exit_code == 0, train.describe());
    const std::string ck = run + "/last.safetensors";
    const double trained = val_loss(eval(ck));
    CHECK(trained < 3.0);  // it learned something (ln 65 = 4.17)

    double f32 = 0;
    for (const char* weights : {"f32", "bf16", "int8"}) {
      INFO(weights);
      const std::string dec = tmp.file(name + "_" + weights + ".safetensors");
      const CommandResult conv =
          run_attnlab({"convert", "--checkpoint", ck, "--out", dec, "--weights", weights});
      REQUIRE_MESSAGE(conv.exit_code == 0, conv.describe());
      const CommandResult r = eval(dec);
      CHECK(contains(r.out, std::string("; decoder, ") + weights + " weights, "));
      const double loss = val_loss(r);
      if (std::string(weights) == "f32") {
        f32 = loss;
        CHECK(std::abs(loss - trained) <= 2e-4);  // the same model, another path
        CHECK(contains(r.out, " f32 KV cache)"));
        // A bf16 KV cache: every cached key and value rounded, the loss all but the same.
        std::vector<std::string> args{"eval", "--checkpoint", dec, "--kv-cache", "bf16"};
        args.insert(args.end(), eval_flags.begin(), eval_flags.end());
        const CommandResult r16 = run_attnlab(args);
        REQUIRE_MESSAGE(r16.exit_code == 0, r16.describe());
        CHECK(contains(r16.out, "; decoder, f32 weights, bf16 KV cache)"));
        CHECK(std::abs(val_loss(r16) - loss) <= 0.002);
        CHECK(!contains(conv.out, "matrices in"));
        CHECK(!contains(conv.out, "stored values"));
      } else {
        CHECK(contains(conv.out, std::string("; matrices in ") + weights + " ("));
        CHECK(contains(conv.out, std::string("checked: the ") + weights +
                                     " decoder computes with its stored values"));
        CHECK(std::abs(loss - f32) <= (std::string(weights) == "bf16" ? 0.002 : 0.01));
      }
    }
    // The packed files are smaller, and sample reads them.
    CHECK(fs::file_size(tmp.file(name + "_int8.safetensors")) <
          fs::file_size(tmp.file(name + "_bf16.safetensors")));
    CHECK(fs::file_size(tmp.file(name + "_bf16.safetensors")) <
          fs::file_size(tmp.file(name + "_f32.safetensors")));
    const CommandResult s =
        run_attnlab({"sample", "--checkpoint", tmp.file(name + "_int8.safetensors"), "--tokens",
                     "12", "--seed", "3", "--threads", "1"});
    REQUIRE_MESSAGE(s.exit_code == 0, s.describe());
    CHECK(contains(s.err, " with int8 weights\n"));
    // sample --kv-cache bf16: the cache takes half the bytes per token.
    const CommandResult s16 =
        run_attnlab({"sample", "--checkpoint", tmp.file(name + "_int8.safetensors"), "--tokens",
                     "12", "--seed", "3", "--threads", "1", "--kv-cache", "bf16"});
    REQUIRE_MESSAGE(s16.exit_code == 0, s16.describe());
    auto per_token = [](const std::string& err) {
      const size_t at = err.find(" bytes per token over ");
      REQUIRE(at != std::string::npos);
      const size_t from = err.rfind('(', at) + 1;
      return std::stoll(err.substr(from, at - from));
    };
    CHECK(contains(s16.err, "layers, bf16); "));
    CHECK(contains(s.err, "layers, f32); "));
    CHECK(per_token(s16.err) * 2 == per_token(s.err));
    CHECK(!s16.out.empty());
  }
}

TEST_CASE("convert --weights and packed decoder files: bad input ends in one line") {
  TempDir tmp("attnlab-quantized-bad");
  const std::string corpus = ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt";
  const std::string config = tmp.file("c.json"), run = tmp.file("run");
  std::ofstream(config) << tiny_config("mha", false);
  const CommandResult train =
      run_attnlab({"train", "--config", config, "--data", corpus, "--steps", "2", "--eval-batches",
                   "1", "--threads", "1", "--out", run, "--quiet"});
  REQUIRE_MESSAGE(train.exit_code == 0, train.describe());
  const std::string ck = run + "/last.safetensors";

  // An unknown format is a usage error, and nothing is written.
  const std::string out = tmp.file("o.safetensors");
  const CommandResult bad =
      run_attnlab({"convert", "--checkpoint", ck, "--out", out, "--weights", "int4"});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "--weights"));
  CHECK(!fs::exists(out));

  // A truncated int8 file: every reader refuses it in one line.
  const std::string dec = tmp.file("int8.safetensors");
  REQUIRE(run_attnlab({"convert", "--checkpoint", ck, "--out", dec, "--weights", "int8", "--quiet"})
              .exit_code == 0);
  const std::string cut = tmp.file("cut.safetensors");
  fs::copy_file(dec, cut);
  fs::resize_file(cut, fs::file_size(dec) - 64);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"sample", "--checkpoint", cut, "--tokens", "3"},
        std::vector<std::string>{"eval", "--checkpoint", cut, "--data", corpus}}) {
    const CommandResult r = run_attnlab(args);
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("attnlab: error: " + cut, 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}

}  // namespace
}  // namespace attnlab
