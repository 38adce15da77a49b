// Whole training runs give the same bits whatever the number of threads
// (the rule of tensor/threads.hpp), so that resume is exact even when
// `--threads 0` switches between one thread and every core as the machine's
// load changes. Like tests/tensor/thread_invariance_test.cpp, these compare
// attnlab with itself and hold whatever kernel OpenBLAS picks on this CPU.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "attnlab/models/checkpoint.hpp"
#include "tests/cli/cli_test_util.hpp"

namespace attnlab {
namespace {

using testing::TempDir;

const std::string kCorpus = ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt";

// Every weight and optimizer moment of a training checkpoint, in order.
std::vector<std::pair<std::string, std::vector<double>>> tensors_of(const std::string& path) {
  const Checkpoint ck = read_checkpoint(path);
  std::vector<std::pair<std::string, std::vector<double>>> out;
  for (const auto& [name, t] : ck.parameters) out.emplace_back(name, t.to_vector());
  for (const auto& [name, t] : ck.optimizer) out.emplace_back(name, t.to_vector());
  return out;
}

// Checks that two checkpoints hold the same bits in every tensor, naming the
// first that differs.
void check_same_tensors(const std::string& a, const std::string& b) {
  const auto ta = tensors_of(a), tb = tensors_of(b);
  REQUIRE(ta.size() == tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    CAPTURE(ta[i].first);
    REQUIRE(ta[i].first == tb[i].first);
    CHECK(ta[i].second == tb[i].second);
    if (ta[i].second != tb[i].second) return;  // one name is enough
  }
}

void run_ok(const std::vector<std::string>& args) {
  const testing::CommandResult r = testing::run_attnlab(args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

// A process that keeps one core busy at the lowest priority until stopped:
// the changing load under which `--threads 0` changes its choice.
class BusyProcess {
 public:
  BusyProcess() {
    pid_ = fork();
    if (pid_ == 0) {
      setpriority(PRIO_PROCESS, 0, 19);
      volatile uint64_t x = 0;
      for (;;) x = x + 1;
    }
  }
  ~BusyProcess() { stop(); }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("40 baby steps end with the same weights on 1, 2 and 3 threads: mha, mla, MoE") {
  TempDir tmp("attnlab-threads");
  const std::vector<std::pair<std::string, std::vector<std::string>>> variants = {
      {"mha", {"--attention", "mha"}},
      {"mla", {"--attention", "mla"}},
      {"moe", {"--attention", "gqa", "--experts", "4"}}};
  for (const auto& [name, flags] : variants) {
    CAPTURE(name);
    for (const std::string threads : {"1", "2", "3"}) {
      std::vector<std::string> args = {
          "train", "--preset",       "baby",  "--data",
          kCorpus, "--steps",        "40",    "--eval-every",
          "20",    "--eval-batches", "2",     "--threads",
          threads, "--quiet",        "--out", tmp.file(name + threads)};
      args.insert(args.end(), flags.begin(), flags.end());
      run_ok(args);
    }
    check_same_tensors(tmp.file(name + "1/last.safetensors"),
                       tmp.file(name + "2/last.safetensors"));
    check_same_tensors(tmp.file(name + "1/last.safetensors"),
                       tmp.file(name + "3/last.safetensors"));
  }
}

TEST_CASE("with --threads 0 under a changing load, 20 steps resumed to 40 equal 40 steps") {
  // --threads 0 times a few steps on every core and a few on one thread
  // (steps 1-10), then keeps the faster: which one it keeps depends on the
  // load, which a busy process changes in the middle of each run.
  TempDir tmp("attnlab-threads");
  auto train = [&](std::vector<std::string> args) {
    for (const std::string a : {"--threads", "0", "--quiet"}) args.push_back(a);
    return args;
  };
  auto start = [&](const std::string& steps, const std::string& out) {
    return train({"train", "--preset", "baby", "--data", kCorpus, "--steps", steps, "--decay-steps",
                  "40", "--eval-every", "10", "--eval-batches", "2", "--out", tmp.file(out)});
  };
  {
    BusyProcess busy;  // loaded for the first part of the whole run
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      busy.stop();
    });
    run_ok(start("40", "whole"));
    stopper.join();
  }
  // The split run: idle for the first half, loaded while it resumes.
  run_ok(start("20", "split"));
  {
    BusyProcess busy;
    run_ok(train({"train", "--resume", tmp.file("split"), "--steps", "40"}));
  }
  check_same_tensors(tmp.file("whole/last.safetensors"), tmp.file("split/last.safetensors"));
}

}  // namespace attnlab
