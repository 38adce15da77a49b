// Crash safety of `attnlab train`: SIGKILL at random moments, 50 times in a
// row, never leaves a run directory without a loadable checkpoint.
//
// A tiny model trains with --eval-every 1, so a checkpoint (best, last) and
// metrics.csv are written after every step and most of the run's time is
// spent writing them: many kills land in the middle of a write. Each round
// starts the run (the first time, and while no checkpoint exists yet) or
// resumes it, waits a random time and kills it. After each kill:
//   - the run directory holds only last.safetensors, best.safetensors,
//     metrics.csv, the lock file .attnlab.lock (whose flock died with its
//     holder, train/output_lock.hpp) and temporary files `<name>.tmp.<pid>.<n>`
//     of the processes this test killed (a run removes those of dead writers
//     when it starts, cli/train_command.cpp, so after a clean finish none is
//     left, nor the lock file);
//   - last.safetensors, once it exists, loads with read_checkpoint, and its
//     step never goes backwards; best.safetensors loads too;
// and every resume must start (a killed writer's lock never blocks the next
// one): a process that exits by itself before it is killed has failed. At the
// end the run is resumed to a few steps more than its checkpoint and must
// finish there, with a metrics.csv of one row per step, 1 … N, none missing
// and none twice.
//
// The delays come from a fixed seed (ATTNLAB_KILL_SEED overrides it), so a
// failure can be replayed; ATTNLAB_KILLS sets the number of kills (50).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/train/output_lock.hpp"
#include "tests/cli/cli_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using testing::describe;
using testing::exited_already;
using testing::metrics_steps;
using testing::Process;
using testing::spawn_attnlab;
using testing::TempDir;
using testing::wait_for;
using Clock = std::chrono::steady_clock;

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

int64_t step_of(const Checkpoint& ck) {
  return std::stoll(ck.meta("train.step"));
}

// What a file in the run directory is: one of the run's files (pid 0), a
// temporary of one of them `<name>.tmp.<pid>.<n>` (its writer's pid), or
// something else (nullopt).
std::optional<int64_t> run_file_writer(const std::string& file) {
  auto digits = [](const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  for (const char* name :
       {"last.safetensors", "best.safetensors", "metrics.csv", "settings.json"}) {
    if (file == name) return 0;
    const std::string prefix = std::string(name) + ".tmp.";
    if (file.rfind(prefix, 0) != 0) continue;
    const std::string rest = file.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == std::string::npos || !digits(rest.substr(0, dot)) || !digits(rest.substr(dot + 1)))
      return std::nullopt;
    return std::stoll(rest.substr(0, dot));
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("attnlab train killed with SIGKILL at random moments always leaves a loadable run") {
  const int64_t kills = env_int("ATTNLAB_KILLS", 50);
  std::mt19937_64 rng(static_cast<uint64_t>(env_int("ATTNLAB_KILL_SEED", 20240611)));

  TempDir tmp("attnlab-kill");
  const std::string corpus = tmp.file("corpus.txt");
  {
    // A small slice of the bundled corpus: tiny-shakespeare's 65 characters
    // are not all in it, which the config's vocab_size of 65 allows.
    std::string text = testing::read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt");
    REQUIRE(text.size() > 20000);
    std::ofstream(corpus, std::ios::binary) << text.substr(0, 20000);
  }
  const std::string config = tmp.file("tiny.json");
  std::ofstream(config) << R"({"vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": 2,
                               "max_seq_len": 16})";
  const fs::path run = tmp.path() / "run";
  const fs::path last = run / "last.safetensors", best = run / "best.safetensors";

  const std::vector<std::string> start_args = {
      "train",      "--config",     config,    "--data",       corpus, "--out",
      run.string(), "--steps",      "1000000", "--eval-every", "1",    "--eval-batches",
      "1",          "--batch-size", "2",       "--seq-len",    "16",   "--threads",
      "1",          "--quiet"};
  const std::vector<std::string> resume_args = {"train",     "--resume", run.string(),
                                                "--threads", "1",        "--quiet"};

  int64_t last_step = 0, with_checkpoint = 0, with_temporaries = 0, most_temporaries = 0;
  int64_t starts = 0;
  std::vector<int64_t> pids;
  std::uniform_int_distribution<int> very_short_delay(0, 30), short_delay(0, 300),
      long_delay(300, 1200);
  const auto t0 = Clock::now();
  for (int64_t round = 0; round < kills; ++round) {
    CAPTURE(round);
    const bool resume = fs::exists(last);
    starts += resume ? 0 : 1;
    const Process p =
        spawn_attnlab(resume ? resume_args : start_args, tmp.file("round" + std::to_string(round)));
    pids.push_back(p.pid);
    // The first round kills a new run at once (before its first checkpoint),
    // the next two within 30 ms; then mostly short delays (kills during
    // start-up, loading and the first writes), every fourth a longer one
    // (deep in the write loop).
    const int delay_ms = round == 0       ? 0
                         : round < 3      ? very_short_delay(rng)
                         : round % 4 == 3 ? long_delay(rng)
                                          : short_delay(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    int code = 0;
    if (exited_already(p, &code)) FAIL("round " << round << ": " << describe(p, code));
    REQUIRE(kill(p.pid, SIGKILL) == 0);
    REQUIRE(wait_for(p) == 128 + SIGKILL);

    // What the kill left behind.
    int64_t temporaries = 0;
    if (fs::exists(run)) {
      for (const auto& entry : fs::directory_iterator(run)) {
        const std::string name = entry.path().filename().string();
        // The killed writer's lock file (train/output_lock.hpp) stays, unlocked.
        if (OutputLock::is_lock_file(entry.path())) continue;
        INFO("file " << name << " in the run directory after round " << round);
        const std::optional<int64_t> writer = run_file_writer(name);
        REQUIRE(writer.has_value());
        if (*writer != 0) {
          // Left by a process this test killed (this one, or an earlier one
          // when this one was killed before it had cleaned up).
          CHECK(std::find(pids.begin(), pids.end(), *writer) != pids.end());
          ++temporaries;
        }
      }
    }
    with_temporaries += temporaries > 0 ? 1 : 0;
    most_temporaries = std::max(most_temporaries, temporaries);
    if (fs::exists(last)) {
      ++with_checkpoint;
      Checkpoint ck;
      try {
        ck = read_checkpoint(last.string());
      } catch (const Error& e) {
        FAIL("round " << round << " (killed after " << delay_ms
                      << " ms): last.safetensors does not load: " << e.what());
      }
      const int64_t step = step_of(ck);
      CHECK(step >= last_step);
      last_step = step;
      CHECK(fs::exists(best));
      CHECK_NOTHROW(read_checkpoint(best.string()));
    }
  }
  const double kill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  MESSAGE(kills << " kills in " << kill_seconds << " s: " << kills - with_checkpoint
                << " before the first checkpoint, " << with_checkpoint
                << " left a checkpoint (last at step " << last_step << "), " << with_temporaries
                << " left temporary files (killed while writing; at most " << most_temporaries
                << " at once), " << starts << " started a new run");
  REQUIRE(fs::exists(last));

  // The run continues from its checkpoint and finishes.
  const int64_t target = last_step + 3;
  const Process p = spawn_attnlab({"train", "--resume", run.string(), "--steps",
                                   std::to_string(target), "--threads", "1", "--quiet"},
                                  tmp.file("final"));
  const int code = wait_for(p);
  REQUIRE_MESSAGE(code == 0, describe(p, code));
  const Checkpoint ck = read_checkpoint(last.string());
  CHECK(step_of(ck) == target);
  for (const auto& entry : fs::directory_iterator(run))
    CHECK_MESSAGE(entry.path().filename().string().find(".tmp.") == std::string::npos,
                  "a temporary file is left after a clean finish: " << entry.path());
  CHECK(!fs::exists(run / ".attnlab.lock"));
  // metrics.csv: one row per step, 1 … target.
  const std::vector<int64_t> steps = metrics_steps(run / "metrics.csv");
  std::vector<int64_t> expected(static_cast<size_t>(target));
  for (int64_t i = 0; i < target; ++i) expected[static_cast<size_t>(i)] = i + 1;
  if (steps != expected) {
    std::ostringstream got;
    for (size_t i = 0; i < steps.size(); ++i)
      if (i == 0 || steps[i] != steps[i - 1] + 1)
        got << " [row " << i << ": step " << steps[i] << "]";
    FAIL_CHECK("metrics.csv lists " << steps.size() << " rows for " << target
                                    << " steps; where the steps jump:" << got.str());
  }
}

}  // namespace attnlab
