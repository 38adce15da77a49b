// Ctrl-C during `attnlab train`: the first SIGINT (or SIGTERM) ends the step
// in progress, writes last.safetensors and exits 130 with the command that
// continues the run; the resumed run ends with the same bits as a run never
// interrupted. A second Ctrl-C ends the process at once, leaving the last
// complete checkpoint. metrics.csv grows by a row at every step.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "attnlab/models/checkpoint.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/cli/tiny_char_run.hpp"
#include "tests/models/checkpoint_values.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using test::contains;
using testing::describe;
using testing::metrics_steps;
using testing::Process;
using testing::read_text_file;
using testing::run_attnlab;
using testing::spawn_attnlab;
using testing::TempDir;
using testing::wait_for;

// Polls until pred() holds (true) or 60 s pass (false).
template <typename Pred>
bool wait_until(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

struct Corpus : testing::TinyCharRun {
  Corpus() : TinyCharRun("attnlab-interrupt") {}
  std::vector<std::string> train(const std::string& out, int64_t steps,
                                 const char* eval_every = "25") const {
    // clang-format off
    return {"train", "--config", config, "--data", corpus, "--out", out,
            "--steps", std::to_string(steps), "--decay-steps", "100000",
            "--eval-every", eval_every, "--eval-batches", "1", "--batch-size", "2",
            "--seq-len", "16", "--threads", "1", "--dropout", "0.1", "--quiet"};
    // clang-format on
  }
};

TEST_CASE("Ctrl-C stops train after the step, saves, exits 130, and --resume ends bit-exact") {
  Corpus c;
  const std::string run = c.dir.file("run");
  const Process p = spawn_attnlab(c.train(run, 100000), c.dir.file("interrupted"));
  // Interrupt once some steps are logged (metrics.csv grows by a row per step).
  REQUIRE(wait_until([&] { return metrics_steps(fs::path(run) / "metrics.csv").size() >= 30; }));
  REQUIRE(kill(p.pid, SIGINT) == 0);
  const int code = wait_for(p);
  REQUIRE_MESSAGE(code == 130, describe(p, code));
  const std::string err = read_text_file(p.err_path);
  CHECK(contains(err, "stopping after this step and saving"));
  CHECK(contains(err, "continue with: attnlab train --resume " + run + "\n"));
  const Checkpoint stopped = read_checkpoint(run + "/last.safetensors");
  const int64_t k = std::stoll(stopped.meta("train.step"));
  CHECK(k >= 30);
  CHECK(contains(err, "holds step " + std::to_string(k) + ";"));
  CHECK(!fs::exists(run + "/.attnlab.lock"));  // released on the way out
  std::vector<int64_t> expected;
  for (int64_t s = 1; s <= k; ++s) expected.push_back(s);
  CHECK(metrics_steps(fs::path(run) / "metrics.csv") == expected);

  // Resumed to k + 40 (past two evaluations) == trained to k + 40 at once.
  const int64_t total = k + 40;
  const auto resumed = run_attnlab(
      {"train", "--resume", run, "--steps", std::to_string(total), "--threads", "1", "--quiet"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.describe());
  const auto whole = run_attnlab(c.train(c.dir.file("whole"), total));
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.describe());
  const Checkpoint a = read_checkpoint(run + "/last.safetensors");
  const Checkpoint b = read_checkpoint(c.dir.file("whole/last.safetensors"));
  CHECK(a.meta("train.step") == std::to_string(total));
  CHECK(test::checkpoint_values(a) ==
        test::checkpoint_values(b));  // every weight and AdamW moment, to the bit
  for (const char* key : {"train.step", "train.sampler_state", "train.dropout_state",
                          "train.val_loss", "train.best_val_loss", "train.settings"})
    CHECK_MESSAGE(a.meta(key) == b.meta(key), key);
  expected.clear();
  for (int64_t s = 1; s <= total; ++s) expected.push_back(s);
  CHECK(metrics_steps(fs::path(run) / "metrics.csv") == expected);  // none missing, none twice
}

TEST_CASE(
    "SIGTERM stops train the same way; --save-every writes last.safetensors between "
    "evaluations") {
  Corpus c;
  const std::string run = c.dir.file("run");
  std::vector<std::string> args = c.train(run, 100000, "0");
  args.insert(args.end(), {"--save-every", "7"});
  const Process p = spawn_attnlab(args, c.dir.file("term"));
  // No evaluation before the end: the first checkpoint is --save-every's, at step 7.
  REQUIRE(wait_until([&] { return fs::exists(run + "/last.safetensors"); }));
  REQUIRE(kill(p.pid, SIGTERM) == 0);
  const int code = wait_for(p);
  REQUIRE_MESSAGE(code == 130, describe(p, code));
  const int64_t k = std::stoll(read_checkpoint(run + "/last.safetensors").meta("train.step"));
  CHECK(k >= 7);
  CHECK(metrics_steps(fs::path(run) / "metrics.csv").size() == static_cast<size_t>(k));
}

TEST_CASE("a second Ctrl-C ends train at once, leaving the last complete checkpoint") {
  Corpus c;
  const std::string run = c.dir.file("run");
  // Step 1 is saved (--save-every 1); step 2 (some 50 ms) ends with an
  // evaluation of 400 batches, seconds long. The first signal, sent 500 ms
  // after step 1 is saved, waits for the evaluation's end; the second lands
  // while it runs.
  const Process p = spawn_attnlab(
      {"train", "--preset", "baby", "--data", c.corpus, "--out", run, "--save-every", "1",
       "--eval-every", "2", "--eval-batches", "400", "--threads", "1", "--quiet"},
      c.dir.file("twice"));
  REQUIRE(wait_until([&] { return fs::exists(run + "/last.safetensors"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  REQUIRE(kill(p.pid, SIGINT) == 0);
  REQUIRE(wait_until(
      [&] { return contains(read_text_file(p.err_path), "Ctrl-C again to abort at once"); }));
  REQUIRE(kill(p.pid, SIGINT) == 0);
  int status = 0;
  REQUIRE(waitpid(p.pid, &status, 0) == p.pid);
  CHECK(WIFSIGNALED(status));  // killed by the second signal, not a clean exit
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGINT));
  CHECK(!contains(read_text_file(p.err_path), "continue with"));
  CHECK(read_checkpoint(run + "/last.safetensors").meta("train.step") == "1");
}

}  // namespace
}  // namespace attnlab
