// Data-parallel training under mpirun (train/data_parallel.hpp): the number
// of processes never changes a bit, a run resumes on another number of
// processes, a killed rank ends the job at once without a broken checkpoint,
// and ranks that disagree are refused.
//
// Each case runs `mpirun -np N attnlab train` on a tiny configuration for a
// few steps. They are skipped, with a message, when the build has no MPI or
// in the sanitizer build: OpenMPI's own libraries report leaks to
// LeakSanitizer at exit, which would fail every run for reasons not ours.
// mpirun refuses to run as root unless told, and CI runs as root: the
// command lines set OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/train/metrics.hpp"
#include "attnlab/train/output_lock.hpp"
#include "tests/cli/cli_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using testing::child_with_environment;
using testing::CommandResult;
using testing::describe;
using testing::exited_already;
using testing::KillIfRunning;
using testing::metrics_steps;
using testing::Process;
using testing::read_text_file;
using testing::run_command;
using testing::shell_quote;
using testing::spawn_shell;
using testing::TempDir;
using testing::wait_within;

#if defined(ATTNLAB_MPIEXEC) && !defined(ATTNLAB_SANITIZED)
constexpr const char* kMpiexec = ATTNLAB_MPIEXEC;
#else
constexpr const char* kMpiexec = nullptr;
#endif

bool mpi_available() {
  if (kMpiexec == nullptr || !fs::exists(kMpiexec)) {
    MESSAGE(
        "skipped: no MPI in this build (or a sanitizer build, where OpenMPI's libraries "
        "report leaks): the data-parallel tests run in the release preset with OpenMPI");
    return false;
  }
  return true;
}

// The attnlab command line `args` on `ranks` processes (mpirun; --oversubscribe
// lets 4 ranks share 2 cores); ranks == 0: without mpirun.
std::string command(int ranks, const std::vector<std::string>& args) {
  std::string line;
  if (ranks > 0)
    line = fmt::format(
        "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 {} --oversubscribe -np {} ",
        shell_quote(kMpiexec), ranks);
  line += shell_quote(ATTNLAB_EXE);
  for (const std::string& a : args) {
    line += ' ';
    line += shell_quote(a);
  }
  return line;
}

// A tiny run of the baby model: small batches, a handful of steps.
std::vector<std::string> tiny_run(const std::string& out, int64_t accum, int64_t steps,
                                  std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"train",
                                   "--preset",
                                   "baby",
                                   "--batch-size",
                                   "2",
                                   "--seq-len",
                                   "16",
                                   "--steps",
                                   std::to_string(steps),
                                   "--accum",
                                   std::to_string(accum),
                                   "--eval-every",
                                   "2",
                                   "--eval-batches",
                                   "3",
                                   "--warmup",
                                   "2",
                                   "--lr",
                                   "3e-3",
                                   "--threads",
                                   "1",
                                   "--out",
                                   out};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

CommandResult run(int ranks, const std::vector<std::string>& args) {
  return run_command(command(ranks, args));
}

// Waits (up to 2 minutes) until mpirun has started rank 1 and the run has
// written `file`; rank 1's pid (the child of mpirun with
// OMPI_COMM_WORLD_RANK=1 in its environment).
pid_t wait_for_rank_1(const Process& mpirun, const std::string& file) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  pid_t rank1 = -1;
  while (std::chrono::steady_clock::now() < deadline && (rank1 < 0 || !fs::exists(file))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (rank1 < 0) rank1 = child_with_environment(mpirun.pid, "OMPI_COMM_WORLD_RANK=1");
    int code = 0;
    if (exited_already(mpirun, &code)) FAIL("mpirun ended early: " << describe(mpirun, code));
  }
  REQUIRE(rank1 > 0);
  REQUIRE(fs::exists(file));
  return rank1;
}

// Every tensor of two checkpoints (weights and AdamW moments), byte for byte.
bool same_tensors(const std::string& a_path, const std::string& b_path) {
  const Checkpoint a = read_checkpoint(a_path), b = read_checkpoint(b_path);
  auto same = [](const auto& x, const auto& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      const Tensor& t = x[i].second;
      const Tensor& w = y[i].second;
      if (x[i].first != y[i].first || t.shape() != w.shape() || t.dtype() != w.dtype())
        return false;
      const Tensor u = t.contiguous(), v = w.contiguous();
      if (std::memcmp(u.storage()->data(), v.storage()->data(),
                      static_cast<size_t>(u.numel()) * dtype_size(u.dtype())) != 0)
        return false;
    }
    return true;
  };
  return !a.optimizer.empty() && same(a.parameters, b.parameters) &&
         same(a.optimizer, b.optimizer) && a.meta("train.step") == b.meta("train.step") &&
         a.meta("train.sampler_state") == b.meta("train.sampler_state") &&
         a.meta("train.dropout_state") == b.meta("train.dropout_state");
}

// The per-step columns that must not depend on the number of processes.
std::vector<std::string> loss_columns(const std::string& metrics_csv) {
  std::vector<std::string> rows;
  const MetricsLog log = MetricsLog::read(metrics_csv, 1 << 30);
  for (const MetricsRow& r : log.rows())
    rows.push_back(fmt::format("{} {:a} {} {:a} {:a} {:a}", r.step, r.train_loss,
                               r.val_loss ? fmt::format("{:a}", *r.val_loss) : "-", r.lr,
                               r.grad_norm, r.aux_loss));
  return rows;
}

}  // namespace

TEST_CASE("data-parallel: 1, 2, 3 and 4 processes end with the same bits") {
  if (!mpi_available()) return;
  TempDir dir;
  // MoE (experts that no token of a micro-batch chooses have no gradient
  // there) and dropout (each micro-batch draws its own masks) included.
  const std::vector<std::string> moe = {"--attention",         "mla", "--experts", "4",
                                        "--experts-per-token", "1",   "--dropout", "0.1"};
  for (const auto& [name, extra] :
       {std::pair<std::string, std::vector<std::string>>{"mha", {}}, {"mla-moe", moe}}) {
    CAPTURE(name);
    const std::string one = dir.file(name + "-1");
    const CommandResult r1 = run(0, tiny_run(one, 4, 4, extra));
    REQUIRE_MESSAGE(r1.exit_code == 0, r1.describe());
    for (int ranks : {2, 4}) {
      CAPTURE(ranks);
      const std::string out = dir.file(name + "-" + std::to_string(ranks));
      const CommandResult r = run(ranks, tiny_run(out, 4, 4, extra));
      REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
      CHECK(same_tensors(one + "/last.safetensors", out + "/last.safetensors"));
      CHECK(loss_columns(one + "/metrics.csv") == loss_columns(out + "/metrics.csv"));
      // Only rank 0 printed: one summary line.
      CHECK(r.out.find("done: 4 steps") != std::string::npos);
      CHECK(r.out.find("done: 4 steps") == r.out.rfind("done: 4 steps"));
      CHECK(r.out.find("data-parallel on " + std::to_string(ranks) + " processes") !=
            std::string::npos);
    }
  }
  // A number of ranks that is not a power of two: ranks hold several subtrees.
  const CommandResult a = run(0, tiny_run(dir.file("six-1"), 6, 3));
  const CommandResult b = run(3, tiny_run(dir.file("six-3"), 6, 3));
  REQUIRE_MESSAGE(a.exit_code == 0, a.describe());
  REQUIRE_MESSAGE(b.exit_code == 0, b.describe());
  CHECK(same_tensors(dir.file("six-1/last.safetensors"), dir.file("six-3/last.safetensors")));
}

TEST_CASE("data-parallel: a run resumes on another number of processes (2 -> 1 -> 4)") {
  if (!mpi_available()) return;
  TempDir dir;
  const std::vector<std::string> decay = {"--decay-steps", "6"};
  const CommandResult whole = run(0, tiny_run(dir.file("whole"), 4, 6, decay));
  REQUIRE_MESSAGE(whole.exit_code == 0, whole.describe());
  const std::string parts = dir.file("parts");
  const CommandResult first = run(2, tiny_run(parts, 4, 2, decay));
  REQUIRE_MESSAGE(first.exit_code == 0, first.describe());
  const CommandResult second = run(0, {"train", "--resume", parts, "--steps", "4"});
  REQUIRE_MESSAGE(second.exit_code == 0, second.describe());
  const CommandResult third = run(4, {"train", "--resume", parts, "--steps", "6"});
  REQUIRE_MESSAGE(third.exit_code == 0, third.describe());
  CHECK(same_tensors(dir.file("whole/last.safetensors"), parts + "/last.safetensors"));
  CHECK(loss_columns(dir.file("whole/metrics.csv")) == loss_columns(parts + "/metrics.csv"));
}

TEST_CASE("data-parallel: ranks that disagree are refused at the start") {
  if (!mpi_available()) return;
  TempDir dir;
  // Two programs of one job (mpirun's A : B form), each with one rank.
  auto two_ranks = [&](const std::vector<std::string>& a, const std::vector<std::string>& b) {
    std::string line = command(1, a);
    line += " : -np 1 ";
    line += shell_quote(ATTNLAB_EXE);
    for (const std::string& arg : b) {
      line += ' ';  // (appending in two steps avoids a GCC 12 -Wrestrict false positive)
      line += shell_quote(arg);
    }
    return run_command(line);
  };
  const std::string out = dir.file("run");
  const CommandResult seeds =
      two_ranks(tiny_run(out, 2, 2, {"--seed", "1"}), tiny_run(out, 2, 2, {"--seed", "2"}));
  CHECK_MESSAGE(seeds.exit_code != 0, seeds.describe());
  CHECK_MESSAGE(seeds.err.find("attnlab: error: the 2 processes disagree: rank 1 has another "
                               "training settings than rank 0") != std::string::npos,
                seeds.describe());
  CHECK(seeds.err.find("attnlab: error:") == seeds.err.rfind("attnlab: error:"));  // said once
  CHECK_FALSE(fs::exists(out + "/last.safetensors"));

  std::ofstream(dir.file("a.txt")) << std::string(4000, 'a') + "the same letters, other text";
  std::ofstream(dir.file("b.txt")) << std::string(4000, 'a') + "the same letters, other texts";
  const CommandResult data = two_ranks(tiny_run(out, 2, 2, {"--data", dir.file("a.txt")}),
                                       tiny_run(out, 2, 2, {"--data", dir.file("b.txt")}));
  CHECK_MESSAGE(data.exit_code != 0, data.describe());
  CHECK_MESSAGE(data.err.find("rank 1 has another training data than rank 0") != std::string::npos,
                data.describe());

  // The same data at two paths (another machine's copy) is the same data.
  fs::copy_file(dir.file("a.txt"), dir.file("a-copy.txt"));
  const CommandResult copy = two_ranks(tiny_run(out, 2, 2, {"--data", dir.file("a.txt")}),
                                       tiny_run(out, 2, 2, {"--data", dir.file("a-copy.txt")}));
  CHECK_MESSAGE(copy.exit_code == 0, copy.describe());

  const CommandResult accum = run(2, tiny_run(dir.file("odd"), 3, 2));
  CHECK(accum.exit_code != 0);
  CHECK_MESSAGE(accum.err.find("attnlab: error: --accum 3 is not a multiple of the number of "
                               "processes 2") != std::string::npos,
                accum.describe());
}

TEST_CASE("data-parallel: a killed rank ends the job at once, and --resume goes on") {
  if (!mpi_available()) return;
  TempDir dir;
  const std::string out = dir.file("run");
  // A long run that writes a checkpoint after every step.
  std::vector<std::string> args = tiny_run(out, 2, 100000);
  args[std::find(args.begin(), args.end(), "--eval-every") - args.begin() + 1] = "1";
  const Process mpirun = spawn_shell(command(2, args), dir.file("log"));
  const KillIfRunning guard{mpirun};
  const pid_t rank1 = wait_for_rank_1(mpirun, out + "/last.safetensors");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few steps more
  REQUIRE(::kill(rank1, SIGKILL) == 0);
  const auto killed = std::chrono::steady_clock::now();
  const std::optional<int> status = wait_within(mpirun, std::chrono::seconds(30));
  if (!status) FAIL("mpirun still ran 30 s after rank 1 was killed");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  MESSAGE("the job ended ", seconds, " s after rank 1 was killed");
  const std::string text = read_text_file(mpirun.out_path) + read_text_file(mpirun.err_path);
  CHECK_MESSAGE(*status != 0, text);
  CHECK_MESSAGE(text.find("rank 1") != std::string::npos, text);
  CHECK_MESSAGE(text.find("signal 9") != std::string::npos, text);
  // Nothing but complete files, temporaries of the killed writer, and its
  // lock file (train/output_lock.hpp: its flock died with it).
  for (const auto& entry : fs::directory_iterator(out)) {
    if (OutputLock::is_lock_file(entry.path())) continue;
    const std::string name = entry.path().filename();
    CHECK_MESSAGE(
        (name == "last.safetensors" || name == "best.safetensors" || name == "metrics.csv" ||
         name == "settings.json" || name.find(".tmp.") != std::string::npos),
        name);
  }
  const Checkpoint last = read_checkpoint(out + "/last.safetensors");
  const int64_t step = std::stoll(last.meta("train.step"));
  CHECK(step >= 1);
  const CommandResult resumed =
      run(0, {"train", "--resume", out, "--steps", std::to_string(step + 2)});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.describe());
  CHECK(read_checkpoint(out + "/last.safetensors").meta("train.step") == std::to_string(step + 2));
}

TEST_CASE("data-parallel: Ctrl-C to one rank stops every rank at the same step") {
  if (!mpi_available()) return;
  TempDir dir;
  const std::string out = dir.file("run");
  // A long run that evaluates (and saves) only far ahead: what it holds when
  // stopped is the stop's own save.
  std::vector<std::string> args = tiny_run(out, 2, 100000);
  args[std::find(args.begin(), args.end(), "--eval-every") - args.begin() + 1] = "50000";
  const Process mpirun = spawn_shell(command(2, args), dir.file("log"));
  const KillIfRunning guard{mpirun};
  // Rank 0 appends a metrics.csv row at every step.
  const pid_t rank1 = wait_for_rank_1(mpirun, out + "/metrics.csv");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few steps more
  REQUIRE(::kill(rank1, SIGINT) == 0);  // rank 1 only: rank 0 must hear of it
  const std::optional<int> status = wait_within(mpirun, std::chrono::seconds(60));
  if (!status) FAIL("mpirun still ran 60 s after rank 1 was asked to stop");
  const std::string err = read_text_file(mpirun.err_path);
  CHECK_MESSAGE(*status == 130, describe(mpirun, *status));
  CHECK_MESSAGE(err.find("continue with: attnlab train --resume") != std::string::npos, err);
  const int64_t step = std::stoll(read_checkpoint(out + "/last.safetensors").meta("train.step"));
  CHECK(step >= 1);
  CHECK(step < 100000);
  std::vector<int64_t> expected(static_cast<size_t>(step));
  for (int64_t i = 0; i < step; ++i) expected[static_cast<size_t>(i)] = i + 1;
  CHECK(metrics_steps(out + "/metrics.csv") == expected);  // no row missing, none past the stop
  const CommandResult resumed =
      run(2, {"train", "--resume", out, "--steps", std::to_string(step + 2), "--quiet"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.describe());
  CHECK(read_checkpoint(out + "/last.safetensors").meta("train.step") == std::to_string(step + 2));
}

}  // namespace attnlab
