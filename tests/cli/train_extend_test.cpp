// Extending and branching runs: --resume may change the length, the schedule
// and the evaluation interval (and changing nothing stays bit-exact); steps
// past the decay horizon are warned about; --init-from starts a new run from
// a checkpoint's weights (fine-tuning).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/train/lr_schedule.hpp"
#include "attnlab/train/metrics.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/cli/tiny_char_run.hpp"
#include "tests/models/checkpoint_values.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

using test::contains;
using testing::CommandResult;
using testing::read_text_file;
using testing::run_attnlab;
using testing::TempDir;

struct Scratch : testing::TinyCharRun {
  Scratch() : TinyCharRun("attnlab-extend") {}
  CommandResult train(const std::string& out, std::vector<std::string> more) const {
    std::vector<std::string> args = {"train", "--config",       config, "--data",
                                     corpus,  "--out",          out,    "--eval-every",
                                     "5",     "--eval-batches", "1",    "--batch-size",
                                     "2",     "--seq-len",      "16",   "--warmup",
                                     "2",     "--threads",      "1",    "--quiet"};
    args.insert(args.end(), more.begin(), more.end());
    return run_attnlab(args);
  }
  static CommandResult resume(const std::string& run, std::vector<std::string> more) {
    std::vector<std::string> args = {"train", "--resume", run, "--threads", "1"};
    args.insert(args.end(), more.begin(), more.end());
    return run_attnlab(args);
  }
};

TEST_CASE("train --resume: giving the run's own schedule again changes no bit") {
  Scratch s;
  const std::string whole = s.dir.file("whole"), halves = s.dir.file("halves");
  REQUIRE(s.train(whole, {"--steps", "20", "--decay-steps", "20"}).exit_code == 0);
  REQUIRE(s.train(halves, {"--steps", "10", "--decay-steps", "20"}).exit_code == 0);
  const CommandResult r =
      Scratch::resume(halves, {"--steps", "20", "--decay-steps", "20", "--lr", "1e-3", "--min-lr",
                               "1e-4", "--warmup", "2", "--eval-every", "5", "--quiet"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  const Checkpoint a = read_checkpoint(whole + "/last.safetensors");
  const Checkpoint b = read_checkpoint(halves + "/last.safetensors");
  CHECK(test::checkpoint_values(a) == test::checkpoint_values(b));
  CHECK(a.meta("train.settings") == b.meta("train.settings"));
}

TEST_CASE("train --resume past the decay horizon warns; --decay-steps, --lr move the schedule") {
  Scratch s;
  const std::string run = s.dir.file("run");
  REQUIRE(s.train(run, {"--steps", "10"}).exit_code == 0);  // decays until step 10
  const CommandResult warned = Scratch::resume(run, {"--steps", "15"});
  REQUIRE_MESSAGE(warned.exit_code == 0, warned.describe());
  CHECK(contains(warned.err,
                 "warning: the learning rate decays until step 10 (--decay-steps): steps 11 to 15 "
                 "run at the minimum, --min-lr 0.0001; to decay over the new steps too, resume "
                 "with --decay-steps 15\n"));
  // Extended with a new horizon and peak: steps 16 … 30 follow the new schedule.
  const CommandResult moved = Scratch::resume(
      run, {"--steps", "30", "--decay-steps", "30", "--lr", "2e-3", "--eval-every", "0"});
  REQUIRE_MESSAGE(moved.exit_code == 0, moved.describe());
  CHECK(!contains(moved.err, "warning"));
  const auto rows = MetricsLog::read(run + "/metrics.csv", 1000).rows();
  REQUIRE(rows.size() == 30);
  const LrSchedule old_schedule{.lr = 1e-3, .min_lr = 1e-4, .warmup_steps = 2, .decay_steps = 10};
  const LrSchedule new_schedule{.lr = 2e-3, .min_lr = 1e-4, .warmup_steps = 2, .decay_steps = 30};
  for (const MetricsRow& row : rows) {
    CAPTURE(row.step);
    const double expected = (row.step <= 15 ? old_schedule : new_schedule).at(row.step - 1);
    CHECK(row.lr == doctest::Approx(expected).epsilon(1e-5));  // the CSV keeps 6 digits
  }
  // Evaluated only at the end now (--eval-every 0): the last row has a val loss.
  CHECK(rows.back().val_loss.has_value());
  CHECK(!rows[24].val_loss.has_value());
}

TEST_CASE(
    "train --init-from: a new run from a checkpoint's weights, with its own data and "
    "schedule") {
  Scratch s;
  const std::string base = s.dir.file("base");
  REQUIRE(s.train(base, {"--steps", "6"}).exit_code == 0);
  const Checkpoint trained = read_checkpoint(base + "/last.safetensors");
  // Another corpus: the second half of the first one (its characters are the
  // tokenizer's). One with a character the tokenizer does not know is refused.
  const std::string text = read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt");
  const std::string other = s.dir.file("other.txt"), foreign = s.dir.file("foreign.txt");
  std::ofstream(other, std::ios::binary) << text.substr(10000, 10000);
  std::ofstream(foreign, std::ios::binary) << text.substr(40000, 20000);
  const CommandResult refused =
      run_attnlab({"train", "--init-from", base + "/last.safetensors", "--data", foreign, "--out",
                   s.dir.file("refused"), "--steps", "1"});
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, "cannot encode character 'K'"));
  CHECK(contains(refused.err, "(with the tokenizer of --init-from " + base));
  CHECK(!std::filesystem::exists(s.dir.file("refused")));

  // No steps: the run's checkpoint holds the weights it started from, a fresh optimizer.
  const std::string zero = s.dir.file("zero");
  const CommandResult r0 =
      run_attnlab({"train", "--init-from", base + "/last.safetensors", "--data", other, "--out",
                   zero, "--steps", "0", "--eval-batches", "1", "--threads", "1"});
  REQUIRE_MESSAGE(r0.exit_code == 0, r0.describe());
  CHECK(contains(r0.out, "parameters, from " + base + "/last.safetensors) on " + other));
  const Checkpoint start = read_checkpoint(zero + "/last.safetensors");
  CHECK(start.meta("train.step") == "0");
  CHECK(test::checkpoint_values(start, false) == test::checkpoint_values(trained, false));
  for (const auto& [name, t] : start.optimizer)
    for (double v : t.to_vector()) CHECK(v == 0);
  CHECK(start.meta("tokenizer") == trained.meta("tokenizer"));
  CHECK(start.meta("train.init_from") == base + "/last.safetensors");

  // Fine-tuned: it trains on, from the trained loss (not from ln 65 ≈ 4.17).
  const std::string tuned = s.dir.file("tuned");
  const CommandResult r =
      run_attnlab({"train", "--init-from", base + "/best.safetensors", "--data", other, "--out",
                   tuned, "--steps", "4", "--lr", "5e-4", "--eval-batches", "1", "--batch-size",
                   "2", "--threads", "1", "--quiet"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  CHECK(read_checkpoint(tuned + "/last.safetensors").meta("train.step") == "4");
  CHECK(read_checkpoint(tuned + "/last.safetensors").config.d_model == 16);
  const auto base_rows = MetricsLog::read(base + "/metrics.csv", 1000).rows();
  const auto tuned_rows = MetricsLog::read(tuned + "/metrics.csv", 1000).rows();
  REQUIRE(tuned_rows.size() == 4);
  CHECK(tuned_rows[0].train_loss < base_rows[0].train_loss);
}

}  // namespace
}  // namespace attnlab
