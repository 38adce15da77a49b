// One writer per output directory (train/output_lock.hpp), with real
// processes:
//   - while a writer holds D (stopped by SIGSTOP once it holds the lock, so
//     the others surely overlap it), a second `train --out D`, `train --resume
//     D` and `survey --out D` each exit 1 at once with the lock message naming
//     D and the holder's pid, and change nothing in D; the holder then
//     finishes its run (a new run, then a resumed one);
//   - two `train --out D` with different seeds started together: exactly one
//     exits 0, the other exits 1 (refused by the lock, or, when a loaded
//     machine started it only after the winner had finished, by "already
//     holds a run"), and D holds the winner's run only (its seed, the same
//     tensors as that seed trained alone, one metrics row per step);
//   - two `train --resume D` started together: the run reaches its total
//     once, with no metrics row twice;
//   - `train --out D` and `survey --out D`, one after the other and together:
//     whichever locks D first runs and the other is refused at once, naming
//     it, and writes nothing there;
//   - two `tokenize --out D` started together: one prepares D, the other is
//     refused; one refused while another process holds D's lock;
//   - a writer killed with SIGKILL leaves no lock: the next one runs at once.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/train/output_lock.hpp"
#include "attnlab/train/train_settings.hpp"
#include "tests/cli/cli_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using testing::describe;
using testing::exited_already;
using testing::KillIfRunning;
using testing::metrics_steps;
using testing::Process;
using testing::read_text_file;
using testing::spawn_attnlab;
using testing::TempDir;
using testing::wait_for;

constexpr int64_t kSteps = 4;

// A scratch directory with a small corpus and a tiny model config.
struct Scratch {
  TempDir tmp{"attnlab-one-writer"};
  std::string corpus = tmp.file("corpus.txt"), config = tmp.file("tiny.json");
  int logs = 0;

  Scratch() {
    const std::string text = read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt");
    REQUIRE(text.size() > 20000);
    std::ofstream(corpus, std::ios::binary) << text.substr(0, 20000);
    std::ofstream(config) << R"({"vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": 2,
                                 "max_seq_len": 16})";
  }

  // A new run of the tiny model; it evaluates and saves every `eval_every` steps.
  std::vector<std::string> train(const std::string& out, uint64_t seed, int64_t steps = kSteps,
                                 int64_t eval_every = 2) const {
    return {"train",
            "--config",
            config,
            "--data",
            corpus,
            "--out",
            out,
            "--seed",
            std::to_string(seed),
            "--steps",
            std::to_string(steps),
            "--eval-every",
            std::to_string(eval_every),
            "--eval-batches",
            "1",
            "--batch-size",
            "2",
            "--threads",
            "1",
            "--quiet"};
  }
  Process start(const std::vector<std::string>& args, bool own_group = false) {
    return spawn_attnlab(args, tmp.file("log" + std::to_string(logs++)), own_group);
  }
};

// The one line a refused writer prints.
std::string lock_refusal(pid_t holder, const std::string& dir) {
  return "attnlab: error: another attnlab process (pid " + std::to_string(holder) +
         ") is writing to " + dir + "; wait for it to finish, or choose another output\n";
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<int64_t> one_to(int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

// Every tensor of a checkpoint (weights and optimizer moments), in order.
std::vector<double> tensors_of(const Checkpoint& ck) {
  std::vector<double> all;
  for (const auto* group : {&ck.parameters, &ck.optimizer})
    for (const auto& [name, t] : *group)
      for (double v : t.to_vector()) all.push_back(v);
  return all;
}

// Waits until `dir` is locked by `holder` (its pid in the lock file).
void wait_locked(const std::string& dir, const Process& holder) {
  const std::string pid = std::to_string(holder.pid) + "\n";
  for (int i = 0; i < 12000 && read_text_file(dir + "/.attnlab.lock") != pid; ++i) {
    int code = 0;
    if (exited_already(holder, &code)) FAIL("the holder exited: " << describe(holder, code));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(read_text_file(dir + "/.attnlab.lock") == pid);
}

// Every file under dir (name → contents).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    files[fs::relative(e.path(), dir).string()] = read_text_file(e.path().string());
  return files;
}

// Two writers started together. Exactly one may do the work: the other either
// ran while it held the lock and was refused (exit 1, one line naming the
// winner's pid), or, on a loaded machine, started only after the winner had
// finished and found the work done (`came_after` says how that looks).
struct RaceResult {
  int winner = -1;      // 0 or 1 (-1: both exited 0, the second with nothing left to do)
  bool locked = false;  // the loser was refused by the lock
};

RaceResult race(Scratch& s, const std::vector<std::string>& args_a,
                const std::vector<std::string>& args_b, const std::string& dir,
                const std::function<bool(int code, const std::string& err)>& came_after) {
  const Process p[2] = {s.start(args_a), s.start(args_b)};
  const int code[2] = {wait_for(p[0]), wait_for(p[1])};
  INFO("a: " << describe(p[0], code[0]) << "\nb: " << describe(p[1], code[1]));
  RaceResult r;
  if (code[0] == 0 && code[1] == 0) {
    REQUIRE((came_after(0, read_text_file(p[0].err_path)) ||
             came_after(0, read_text_file(p[1].err_path))));
    return r;
  }
  REQUIRE(((code[0] == 0 && code[1] == 1) || (code[0] == 1 && code[1] == 0)));
  r.winner = code[0] == 0 ? 0 : 1;
  const Process &winner = p[r.winner], &loser = p[1 - r.winner];
  const std::string err = read_text_file(loser.err_path);
  r.locked = err == lock_refusal(winner.pid, dir);
  CHECK((r.locked || came_after(1, err)));
  CHECK(read_text_file(loser.out_path).empty());
  CHECK(read_text_file(winner.err_path).empty());
  return r;
}

}  // namespace

TEST_CASE("a second writer while the first holds D is refused and changes nothing") {
  // The first is stopped (SIGSTOP) once it holds the lock, so that the others
  // surely run while it does, and D cannot change under them.
  Scratch s;
  const std::string dir = s.tmp.file("run");
  const std::vector<std::string> survey = {"survey", "--quick", "--data", s.corpus, "--threads",
                                           "1",      "--quiet", "--out",  dir};
  auto resume = [&](int64_t total) {
    return std::vector<std::string>{
        "train", "--resume", dir, "--steps", std::to_string(total), "--threads", "1", "--quiet"};
  };
  auto refused_while_held = [&](const Process& holder) {
    const KillIfRunning guard{holder};
    wait_locked(dir, holder);
    REQUIRE(kill(holder.pid, SIGSTOP) == 0);
    const auto before = snapshot(dir);
    for (const auto& args : {s.train(dir, 2), resume(2000), survey}) {
      CAPTURE(args[0]);
      const Process second = s.start(args);
      const int code = wait_for(second);
      CHECK_MESSAGE(code == 1, describe(second, code));
      CHECK(read_text_file(second.err_path) == lock_refusal(holder.pid, dir));
      CHECK(read_text_file(second.out_path).empty());
      CHECK(snapshot(dir) == before);
    }
    REQUIRE(kill(holder.pid, SIGCONT) == 0);
    const int code = wait_for(holder);
    CHECK_MESSAGE(code == 0, describe(holder, code));
  };

  // A new run holds it.
  refused_while_held(s.start(s.train(dir, 1, 600, 0)));
  CHECK(entries(dir) == std::vector<std::string>{"best.safetensors", "last.safetensors",
                                                 "metrics.csv", "settings.json"});
  CHECK(TrainSettings::from_json(read_checkpoint(dir + "/last.safetensors").meta("train.settings"),
                                 "last")
            .seed == 1);
  CHECK(metrics_steps(dir + "/metrics.csv") == one_to(600));

  // A resumed run holds it.
  refused_while_held(s.start(resume(1200)));
  CHECK(entries(dir) == std::vector<std::string>{"best.safetensors", "last.safetensors",
                                                 "metrics.csv", "settings.json"});
  CHECK(read_checkpoint(dir + "/last.safetensors").meta("train.step") == "1200");
  CHECK(metrics_steps(dir + "/metrics.csv") == one_to(1200));
}

TEST_CASE("two train --out D started together: one trains, the other is refused") {
  Scratch s;
  // What each seed's run holds when it trains alone.
  std::vector<double> alone[2];
  for (uint64_t seed : {1, 2}) {
    const std::string dir = s.tmp.file("alone" + std::to_string(seed));
    const Process p = s.start(s.train(dir, seed));
    const int code = wait_for(p);
    REQUIRE_MESSAGE(code == 0, describe(p, code));
    alone[seed - 1] = tensors_of(read_checkpoint(dir + "/last.safetensors"));
  }
  REQUIRE(alone[0] != alone[1]);

  // D missing, D an empty directory, D under missing parents.
  const std::vector<std::string> dirs = {s.tmp.file("run"), s.tmp.file("empty"),
                                         s.tmp.file("deep/er/run")};
  fs::create_directories(dirs[1]);
  int first_won = 0, locked = 0;
  for (const std::string& dir : dirs) {
    CAPTURE(dir);
    const RaceResult r =
        race(s, s.train(dir, 1), s.train(dir, 2), dir, [&](int code, const std::string& err) {
          return code == 1 && err == "attnlab: error: " + dir +
                                         " already holds a run: continue it with --resume " + dir +
                                         ", or choose another --out\n";
        });
    REQUIRE(r.winner >= 0);
    first_won += r.winner == 0 ? 1 : 0;
    locked += r.locked ? 1 : 0;
    const uint64_t seed = r.winner == 0 ? 1 : 2;
    CHECK(entries(dir) == std::vector<std::string>{"best.safetensors", "last.safetensors",
                                                   "metrics.csv", "settings.json"});
    const Checkpoint last = read_checkpoint(dir + "/last.safetensors");
    CHECK(TrainSettings::from_json(last.meta("train.settings"), "last").seed == seed);
    CHECK(TrainSettings::from_json(
              read_checkpoint(dir + "/best.safetensors").meta("train.settings"), "best")
              .seed == seed);
    CHECK(tensors_of(last) == alone[seed - 1]);
    CHECK(metrics_steps(dir + "/metrics.csv") == one_to(kSteps));
  }
  MESSAGE("the first started won " << first_won << " of " << dirs.size() << " races; " << locked
                                   << " losers were refused by the lock, the rest started after "
                                      "the winner had finished");
}

TEST_CASE("two train --resume D started together: one continues the run, the other is refused") {
  Scratch s;
  const std::string dir = s.tmp.file("run");
  const Process first = s.start(s.train(dir, 1, 2));
  REQUIRE(wait_for(first) == 0);
  int64_t total = 2;
  int locked = 0;
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    total += 3;
    const std::vector<std::string> resume = {
        "train", "--resume", dir, "--steps", std::to_string(total), "--threads", "1", "--quiet"};
    // One started after the other had finished resumes at the total: it has
    // nothing to do and exits 0 having written nothing.
    const RaceResult r =
        race(s, resume, resume, dir, [](int code, const std::string& err) { return code == 0; });
    locked += r.locked ? 1 : 0;
    CHECK(entries(dir) == std::vector<std::string>{"best.safetensors", "last.safetensors",
                                                   "metrics.csv", "settings.json"});
    CHECK(read_checkpoint(dir + "/last.safetensors").meta("train.step") == std::to_string(total));
    CHECK(metrics_steps(dir + "/metrics.csv") == one_to(total));
  }
  MESSAGE(locked << " of 2 races refused by the lock");
}

TEST_CASE("tokenize: one writer per DATA_DIR (its lock file beside it)") {
  Scratch s;
  auto tokenize = [&](const std::string& out) {
    return std::vector<std::string>{"tokenize", "--data",    s.corpus, "--out",
                                    out,        "--threads", "1",      "--quiet"};
  };
  // Held by another writer (this test): refused at once, nothing created.
  const std::string held = s.tmp.file("held");
  {
    const OutputLock lock = OutputLock::file(held);
    const Process p = s.start(tokenize(held));
    const int code = wait_for(p);
    CHECK_MESSAGE(code == 1, describe(p, code));
    CHECK(read_text_file(p.err_path) == lock_refusal(getpid(), held));
  }
  CHECK(!fs::exists(held));

  // Two started together: one prepares DATA_DIR, the other is refused.
  int locked = 0;
  for (const char* name : {"data1", "data2"}) {
    const std::string dir = s.tmp.file(name);
    const RaceResult r =
        race(s, tokenize(dir), tokenize(dir), dir, [&](int code, const std::string& err) {
          return code == 1 && err.find(dir + " already exists") != std::string::npos;
        });
    REQUIRE(r.winner >= 0);
    locked += r.locked ? 1 : 0;
    CHECK(fs::exists(dir + "/dataset.json"));
  }
  // Nothing else beside them: no lock file, no half-built DATA_DIR.
  for (const std::string& name : entries(s.tmp.path()))
    CHECK((name.rfind("log", 0) == 0 || name == "corpus.txt" || name == "tiny.json" ||
           name == "data1" || name == "data2"));
  MESSAGE(locked << " of 2 races refused by the lock");
}

TEST_CASE("train and survey into the same directory: the second is refused, naming the first") {
  Scratch s;
  const std::vector<std::string> survey_args = {"survey",    "--quick", "--data",  s.corpus,
                                                "--threads", "1",       "--quiet", "--out"};
  auto survey = [&](const std::string& dir) {
    std::vector<std::string> a = survey_args;
    a.push_back(dir);
    return a;
  };

  SUBCASE("a training run holds D: survey is refused; killed, it leaves no lock behind") {
    const std::string dir = s.tmp.file("run");
    const Process train = s.start(s.train(dir, 1, 1000000));
    const KillIfRunning guard{train};
    wait_locked(dir, train);
    for (int i = 0; i < 12000 && !fs::exists(dir + "/last.safetensors"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const Process refused = s.start(survey(dir));
    CHECK(wait_for(refused) == 1);
    CHECK(read_text_file(refused.err_path) == lock_refusal(train.pid, dir));
    CHECK(read_text_file(refused.out_path).empty());
    REQUIRE(kill(train.pid, SIGKILL) == 0);
    REQUIRE(wait_for(train) == 128 + SIGKILL);
    for (const std::string& name : entries(dir))  // no survey file, no survey run
      CHECK((name == "last.safetensors" || name == "best.safetensors" || name == "metrics.csv" ||
             name == "settings.json" || name == ".attnlab.lock" ||
             name.find(".tmp.") != std::string::npos));
    // The killed run's lock file stays, unlocked: the next writer runs at once.
    const int64_t step = std::stoll(read_checkpoint(dir + "/last.safetensors").meta("train.step"));
    const Process resumed = s.start({"train", "--resume", dir, "--steps", std::to_string(step + 1),
                                     "--threads", "1", "--quiet"});
    const int code = wait_for(resumed);
    CHECK_MESSAGE(code == 0, describe(resumed, code));
    CHECK(!fs::exists(dir + "/.attnlab.lock"));
  }

  SUBCASE("a survey holds D: train is refused and writes nothing") {
    const std::string dir = s.tmp.file("survey");
    const Process holder = s.start(survey(dir), /*own_group=*/true);
    const KillIfRunning guard{holder, /*group=*/true};
    wait_locked(dir, holder);
    const Process refused = s.start(s.train(dir, 1));
    CHECK(wait_for(refused) == 1);
    CHECK(read_text_file(refused.err_path) == lock_refusal(holder.pid, dir));
    kill(-holder.pid, SIGKILL);  // the survey and the training run it started
    wait_for(holder);
    CHECK(!fs::exists(dir + "/last.safetensors"));
    CHECK(!fs::exists(dir + "/metrics.csv"));
  }

  SUBCASE("started together: the first to lock D runs, the other is refused at once") {
    const std::string dir = s.tmp.file("both");
    const Process train = s.start(s.train(dir, 1, 1000000));
    const Process surveying = s.start(survey(dir), /*own_group=*/true);
    const KillIfRunning guard_train{train}, guard_survey{surveying, /*group=*/true};
    // Neither finishes by itself soon: the first to exit is the one refused.
    int train_code = -1, survey_code = -1;
    for (int i = 0; i < 12000; ++i) {
      if (exited_already(train, &train_code) || exited_already(surveying, &survey_code)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const bool train_won = survey_code >= 0;
    MESSAGE(std::string(train_won ? "train" : "survey") << " locked the directory first");
    INFO("train: " << describe(train, train_code)
                   << "\nsurvey: " << describe(surveying, survey_code));
    REQUIRE((train_code >= 0) != (survey_code >= 0));
    const Process& winner = train_won ? train : surveying;
    const Process& loser = train_won ? surveying : train;
    CHECK((train_won ? survey_code : train_code) == 1);
    CHECK(read_text_file(loser.err_path) == lock_refusal(winner.pid, dir));
    int code = 0;
    CHECK(!exited_already(winner, &code));
    kill(train_won ? train.pid : -surveying.pid, SIGKILL);
    CHECK(wait_for(winner) == 128 + SIGKILL);
  }
}

}  // namespace attnlab
