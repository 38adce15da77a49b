// The conventions every attnlab command keeps (cli/README.md): a mistyped
// command or flag gets "did you mean …", hidden commands are never named,
// train's MoE flag has one meaning (--experts-per-token; the old --top-k is a
// deprecated alias that says so), and an --out file gets its directories
// created but never replaces a file another command wrote without --force;
// --threads past the machine's cores gets a note, never a refusal.
// The exit codes of the refusals are checked row by row in cli_errors_test.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using test::contains;
using testing::CommandResult;
using testing::read_text_file;
using testing::run_attnlab;
using testing::TempDir;

TEST_CASE("a mistyped command or flag gets the closest one; hidden commands stay hidden") {
  const CommandResult flag = run_attnlab({"train", "--stpes", "10"});
  CHECK(flag.exit_code == 2);
  CHECK(flag.err ==
        "attnlab: error: unknown flag --stpes of train (did you mean --steps?)\n"
        "Run with --help for usage.\n");

  const CommandResult command = run_attnlab({"smaple"});
  CHECK(command.exit_code == 2);
  CHECK(contains(command.err, "unknown command 'smaple' (did you mean 'sample'?)"));

  // Nothing close: the list, without the hidden worker survey-decode.
  const CommandResult far = run_attnlab({"frobnicate"});
  CHECK(far.exit_code == 2);
  CHECK(contains(far.err, "the commands are tokenize, train, eval, survey, info"));
  CHECK(!contains(far.err, "survey-decode"));
  const CommandResult help = run_attnlab({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(contains(help.out, "survey"));
  CHECK(!contains(help.out, "survey-decode"));

  // The deprecated spelling is never offered.
  const CommandResult near_old = run_attnlab({"train", "--top-kk", "2"});
  CHECK(near_old.exit_code == 2);
  CHECK(contains(near_old.err, "unknown flag --top-kk of train (attnlab train --help lists"));
}

TEST_CASE("a short flag means the same on every command; an unknown one is named") {
  // -m is --checkpoint, -t --threads, -p --prompt wherever the long flag exists.
  for (const char* command : {"tokenize", "train", "eval", "survey", "info", "inspect", "convert",
                              "sample", "attention"}) {
    const CommandResult help = run_attnlab({command, "--help"});
    REQUIRE_MESSAGE(help.exit_code == 0, help.describe());
    for (const auto& [short_flag, long_flag] :
         {std::pair{"-m,", "--checkpoint"}, std::pair{"-t,", "--threads"},
          std::pair{"-p,", "--prompt "}}) {
      if (!contains(help.out, long_flag)) continue;
      CAPTURE(command);
      CAPTURE(long_flag);
      CHECK(contains(help.out, std::string(short_flag) + long_flag));
    }
  }
  const CommandResult unknown = run_attnlab({"info", "-x", "1"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err ==
        "attnlab: error: unknown flag -x of info (attnlab info --help lists its flags)\n"
        "Run with --help for usage.\n");
  // A negative number is a value, not a flag: its own message.
  const CommandResult negative = run_attnlab({"train", "--lr", "-1"});
  CHECK(negative.exit_code == 2);
  CHECK(contains(negative.err, "--lr"));
}

TEST_CASE("--experts-per-token; --top-k still works on train and info, with a warning") {
  const CommandResult help = run_attnlab({"train", "--help"});
  CHECK(contains(help.out, "--experts-per-token"));
  CHECK(!contains(help.out, "--top-k"));

  const std::vector<std::string> model = {"info", "--preset", "baby", "--experts", "4"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = model;
    args.insert(args.end(), extra.begin(), extra.end());
    return run_attnlab(args);
  };
  const CommandResult one = with({"--experts-per-token", "1"});
  const CommandResult two = with({"--experts-per-token", "2"});
  const CommandResult old = with({"--top-k", "1"});
  REQUIRE_MESSAGE(one.exit_code == 0, one.describe());
  REQUIRE_MESSAGE(old.exit_code == 0, old.describe());
  CHECK(one.err.empty());
  // info ends with the machine's memory available now, which moves between
  // two calls: compare what it says of the model.
  auto model_part = [](const std::string& out) {
    std::string kept, line;
    std::istringstream in(out);
    while (std::getline(in, line))
      if (line.rfind("available now:", 0) != 0) kept += line + "\n";
    return kept;
  };
  REQUIRE(contains(one.out, "available now:"));
  CHECK(model_part(one.out) != model_part(two.out));  // the flag reaches the config
  CHECK(model_part(old.out) == model_part(one.out));
  CHECK(old.err ==
        "attnlab: warning: --top-k (experts per token) is now --experts-per-token; the old "
        "spelling goes away in the next release\n");
  const CommandResult both = with({"--experts-per-token", "1", "--top-k", "1"});
  CHECK(both.exit_code == 2);
  CHECK(both.err ==
        "attnlab: error: give --experts-per-token or its old spelling --top-k, not both\n"
        "Run with --help for usage.\n");

  // train takes it as well: the run's config has top_k 1.
  TempDir tmp("attnlab-conventions");
  std::ofstream(tmp.file("corpus.txt")) << std::string(4000, 'a') + "bcdefgh\n";
  const CommandResult trained = run_attnlab({"train",
                                             "--preset",
                                             "baby",
                                             "--experts",
                                             "2",
                                             "--top-k",
                                             "1",
                                             "--steps",
                                             "1",
                                             "--batch-size",
                                             "1",
                                             "--seq-len",
                                             "8",
                                             "--eval-batches",
                                             "1",
                                             "--threads",
                                             "1",
                                             "--data",
                                             tmp.file("corpus.txt"),
                                             "--out",
                                             tmp.file("run"),
                                             "--quiet"});
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.describe());
  CHECK(contains(trained.err, "--top-k (experts per token) is now --experts-per-token"));
  const auto settings = nlohmann::json::parse(read_text_file(tmp.file("run/settings.json")));
  CHECK(settings.at("config").at("top_k") == 1);
}

TEST_CASE("--out: directories are created; another command's file needs --force") {
  TempDir tmp("attnlab-out-paths");
  const ModelConfig config = test::small_config({.attention = "gqa"});
  const auto model = test::random_model(config, DType::F32, 4);
  const std::string train = tmp.file("train.safetensors");
  write_checkpoint(train, *model,
                   {{"tokenizer", R"({"type":"char","chars":[97],"byte_fallback":false})"}});

  // convert --out newdir/sub/x: both directories made.
  const std::string dec = tmp.file("newdir/sub/gqa.decoder.safetensors");
  const CommandResult made = run_attnlab({"convert", "--checkpoint", train, "--out", dec});
  REQUIRE_MESSAGE(made.exit_code == 0, made.describe());
  CHECK(read_safetensors(dec).metadata.at("format") == "attnlab.decoder");
  // Its own output is replaced without a word.
  const CommandResult again =
      run_attnlab({"convert", "--checkpoint", train, "--out", dec, "--quiet"});
  CHECK_MESSAGE(again.exit_code == 0, again.describe());

  // A file convert did not write (here: a training checkpoint) is kept…
  const std::string other = tmp.file("other.safetensors");
  fs::copy_file(train, other);
  const CommandResult refused = run_attnlab({"convert", "--checkpoint", train, "--out", other});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err == "attnlab: error: --out " + other +
                           " exists and was not written by attnlab convert: give --force to "
                           "replace it\n");
  CHECK(read_text_file(other) == read_text_file(train));
  // …unless --force says so.
  const CommandResult forced =
      run_attnlab({"convert", "--checkpoint", train, "--out", other, "--force", "--quiet"});
  REQUIRE_MESSAGE(forced.exit_code == 0, forced.describe());
  CHECK(read_safetensors(other).metadata.at("format") == "attnlab.decoder");
}

TEST_CASE("eval counts its batches on stderr; the result alone is on stdout") {
  TempDir tmp("attnlab-eval-progress");
  std::ofstream(tmp.file("tiny.json")) << R"({"vocab_size": 65, "d_model": 16, "n_layers": 1,
                                              "n_heads": 2, "max_seq_len": 16})";
  const CommandResult trained =
      run_attnlab({"train", "--config", tmp.file("tiny.json"), "--out", tmp.file("run"), "--steps",
                   "2", "--eval-batches", "1", "--batch-size", "2", "--threads", "1", "--quiet"});
  REQUIRE_MESSAGE(trained.exit_code == 0, trained.describe());
  const CommandResult r = run_attnlab({"eval", "--checkpoint", tmp.file("run/best.safetensors"),
                                       "--batches", "8", "--batch-size", "2", "--threads", "1"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  CHECK(r.err == "evaluating: 2/8\nevaluating: 4/8\nevaluating: 6/8\nevaluating: 8/8\n");
  CHECK(r.out.rfind("val loss ", 0) == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
}

TEST_CASE("--threads past the cores: a note on stderr, the same result") {
  TempDir tmp("attnlab-threads-note");
  {
    std::ofstream corpus(tmp.file("corpus.txt"));
    for (int line = 0; line < 20; ++line) corpus << "to be or not to be, that is the question\n";
  }
  const unsigned cores = std::thread::hardware_concurrency();
  REQUIRE(cores > 0);
  const std::string past = std::to_string(cores + 1), all = std::to_string(cores);
  const CommandResult over = run_attnlab(
      {"tokenize", "--data", tmp.file("corpus.txt"), "--out", tmp.file("over"), "--threads", past});
  REQUIRE_MESSAGE(over.exit_code == 0, over.describe());
  CHECK(contains(over.err, "attnlab: note: --threads " + past + " is more than this machine's " +
                               all + " cores"));
  const CommandResult fits = run_attnlab(
      {"tokenize", "--data", tmp.file("corpus.txt"), "--out", tmp.file("fits"), "--threads", all});
  REQUIRE_MESSAGE(fits.exit_code == 0, fits.describe());
  CHECK_FALSE(contains(fits.err, "note: --threads"));
  for (const char* file : {"train.bin", "val.bin", "tokenizer.json"})
    CHECK(read_text_file(tmp.file(std::string("over/") + file)) ==
          read_text_file(tmp.file(std::string("fits/") + file)));
  const CommandResult quiet = run_attnlab({"tokenize", "--data", tmp.file("corpus.txt"), "--out",
                                           tmp.file("quiet"), "--threads", past, "--quiet"});
  REQUIRE_MESSAGE(quiet.exit_code == 0, quiet.describe());
  CHECK(quiet.err.empty());
}

}  // namespace
}  // namespace attnlab
