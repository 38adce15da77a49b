// `attnlab info --checkpoint`: what the checkpoint says of its training
// (step, val loss, settings, tokenizer, date), as text and as one JSON object
// that python3 -m json.tool parses; a checkpoint with nothing but a config
// (another implementation's) still works; the run directory's settings.json.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

using test::contains;
using testing::CommandResult;
using testing::read_text_file;
using testing::run_attnlab;
using testing::run_command;
using testing::shell_quote;
using testing::TempDir;

struct TrainedRun {
  TempDir dir{"attnlab-info"};
  std::string run = dir.file("run"), config = dir.file("tiny.json");
  TrainedRun() {
    std::ofstream(config) << R"({"vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": 2,
                                 "max_seq_len": 16})";
    const CommandResult r =
        run_attnlab({"train", "--config", config, "--out", run, "--steps", "3", "--eval-batches",
                     "1", "--batch-size", "2", "--threads", "1", "--quiet"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  }
};

TEST_CASE("attnlab info --checkpoint prints the training it went through") {
  TrainedRun t;
  const CommandResult r = run_attnlab({"info", "--checkpoint", t.run + "/last.safetensors"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  const Checkpoint ck = read_checkpoint(t.run + "/last.safetensors");
  CHECK(contains(r.out, "  step           3\n"));
  CHECK(contains(r.out, fmt::format("  val loss       {:.4f} (best {:.4f})\n",
                                    std::stod(ck.meta("train.val_loss")),
                                    std::stod(ck.meta("train.best_val_loss")))));
  CHECK(contains(r.out, "  saved          " + ck.meta("train.date") + "\n"));
  CHECK(ck.meta("train.date").size() == 20);  // 2026-01-02T03:04:05Z
  CHECK(contains(
      r.out, "  tokenizer      " + tokenizer_from_json(ck.meta("tokenizer"))->describe() + "\n"));
  CHECK(contains(r.out, R"("batch_size":2)"));
}

TEST_CASE("attnlab info --json: one object for scripts, which python3 -m json.tool parses") {
  TrainedRun t;
  const std::string ckpt = t.run + "/best.safetensors";
  const CommandResult r = run_attnlab({"info", "--checkpoint", ckpt, "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("step") == 3);
  CHECK(j.at("config").at("d_model") == 16);
  CHECK(j.at("parameters") == read_checkpoint(ckpt).config.parameter_count());
  CHECK(j.at("kv_cache_bytes_per_token") == 2 * 16 * 4);  // K and V, one layer, f32
  CHECK(j.at("val_loss").is_number());
  CHECK(j.at("settings").at("steps") == 3);
  CHECK(j.at("tokenizer").at("type") == "char");
  CHECK(j.at("tokenizer").at("vocab_size") == 65);
  CHECK(j.at("date").is_string());
  const CommandResult tool = run_command(shell_quote(ATTNLAB_EXE) + " info --checkpoint " +
                                         shell_quote(ckpt) + " --json | python3 -m json.tool");
  CHECK_MESSAGE(tool.exit_code == 0, tool.describe());

  // A preset has no training: those keys are null.
  const auto preset = nlohmann::json::parse(
      run_attnlab({"info", "--preset", "baby", "--attention", "mla", "--json"}).out);
  CHECK(preset.at("step").is_null());
  CHECK(preset.at("kv_cache_bytes_per_token") == 768);
  CHECK(preset.at("kv_cache_bytes_per_token_bf16") == 384);  // sample --kv-cache bf16
  CHECK(preset.at("config").at("attention") == "mla");

  // A checkpoint with only its config, as another implementation writes it.
  const SafetensorsFile file = read_safetensors(ckpt);
  std::vector<std::pair<std::string, Tensor>> weights;
  for (const SafetensorsEntry& e : file.entries)
    weights.emplace_back(e.name, to_tensor(e, DType::F32));
  const std::string plain = t.dir.file("plain.safetensors");
  write_safetensors(plain, weights, {{"config", file.metadata.at("config")}});
  const CommandResult bare = run_attnlab({"info", "--checkpoint", plain, "--json"});
  REQUIRE_MESSAGE(bare.exit_code == 0, bare.describe());
  const auto b = nlohmann::json::parse(bare.out);
  CHECK(b.at("step").is_null());
  CHECK(b.at("tokenizer").is_null());
  CHECK(b.at("parameters") == j.at("parameters"));
  const CommandResult text = run_attnlab({"info", "--checkpoint", plain});
  CHECK(contains(text.out, "  step           unknown\n"));
}

TEST_CASE("a run directory holds a readable settings.json") {
  TrainedRun t;
  const auto j = nlohmann::json::parse(read_text_file(t.run + "/settings.json"));
  CHECK(j.at("settings").at("steps") == 3);
  CHECK(j.at("settings").at("batch_size") == 2);
  CHECK(j.at("config").at("n_heads") == 2);
  CHECK(contains(read_text_file(t.run + "/settings.json"), "\n  \"settings\": {\n"));  // indented
  // A resume that changes the schedule rewrites it.
  const CommandResult r =
      run_attnlab({"train", "--resume", t.run, "--steps", "5", "--decay-steps", "5", "--quiet"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  const auto k = nlohmann::json::parse(read_text_file(t.run + "/settings.json"));
  CHECK(k.at("settings").at("steps") == 5);
  CHECK(k.at("settings").at("decay_steps") == 5);
}

}  // namespace
}  // namespace attnlab
