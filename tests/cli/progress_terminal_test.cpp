// Progress on a real terminal: attnlab run on a pseudo-terminal (forkpty)
// redraws its bar with carriage returns; with its output going to a pipe or a
// file it prints plain lines; started by an MPI launcher (OMPI_COMM_WORLD_SIZE
// set: Open MPI gives every rank a pseudo-terminal, whatever mpirun's own
// output is) it prints plain lines even on a terminal.
#include <doctest/doctest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/cli/cli_test_util.hpp"

using namespace attnlab::testing;

namespace {

// Runs attnlab with `args` on a new pseudo-terminal (stdin, stdout and stderr
// all on it), with `env` added to its environment; what it wrote and how it
// exited. Killed after a minute (a failure, not a hang).
CommandResult run_on_terminal(const std::vector<std::string>& args,
                              const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv_text = {ATTNLAB_EXE};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    execv(ATTNLAB_EXE, argv.data());
    _exit(127);
  }
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[4096];
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      break;
    }
    if (poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO: the terminal's last writer has gone
    result.out.append(buf, static_cast<size_t>(n));
  }
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// The attnlab command line of `args`, quoted for the shell.
std::string command_line(const std::vector<std::string>& args) {
  std::string line = shell_quote(ATTNLAB_EXE);
  for (const std::string& a : args) {
    line += ' ';  // (in two steps: GCC 12 sees a -Wrestrict overlap in " " + …)
    line += shell_quote(a);
  }
  return line;
}

// A checkpoint of the tiny preset after two steps.
std::string tiny_checkpoint(const TempDir& dir) {
  const std::string run = dir.file("run");
  const CommandResult r =
      run_attnlab({"train", "--preset", "tiny", "--steps", "2", "--eval-every", "0",
                   "--eval-batches", "1", "--threads", "1", "--quiet", "--out", run});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  return run + "/last.safetensors";
}

}  // namespace

TEST_CASE("eval: a bar redrawn on a terminal, plain lines to a pipe, a file and under mpirun") {
  TempDir dir("attnlab-progress-tty");
  const std::string ck = tiny_checkpoint(dir);
  const std::vector<std::string> eval = {
      "eval",          "--checkpoint", ck, "--batches", "8", "--batch-size", "2", "--threads", "1",
      "--by-position", dir.file("pos")};

  const CommandResult tty = run_on_terminal(eval);
  REQUIRE_MESSAGE(tty.exit_code == 0, tty.describe());
  CHECK(has(tty.out, "\revaluating [###"));
  CHECK(has(tty.out, "] 8/8\033[K"));
  CHECK(has(tty.out, "\rloss by position [###"));
  CHECK(has(tty.out, "\r\033[Kval loss "));  // the bar erased before the result
  CHECK(!has(tty.out, "evaluating: 2/8"));   // no plain lines

  std::string line = command_line(eval);
  const CommandResult piped = run_command(line + " 2>&1 | cat");
  REQUIRE_MESSAGE(piped.exit_code == 0, piped.describe());
  CHECK(has(piped.out, "evaluating: 2/8\nevaluating: 4/8\nevaluating: 6/8\nevaluating: 8/8\n"));
  CHECK(has(piped.out, "loss by position: 8/8\n"));
  CHECK(!has(piped.out, "\r"));

  const CommandResult filed = run_attnlab(eval);  // stderr to a file
  REQUIRE_MESSAGE(filed.exit_code == 0, filed.describe());
  CHECK(has(filed.err, "evaluating: 8/8\n"));
  CHECK(!has(filed.err, "\r"));

  for (const char* launcher : {"OMPI_COMM_WORLD_SIZE=1", "PMI_SIZE=1"}) {
    CAPTURE(launcher);
    const CommandResult ranked = run_on_terminal(eval, {launcher});
    REQUIRE_MESSAGE(ranked.exit_code == 0, ranked.describe());
    CHECK(has(ranked.out, "evaluating: 8/8"));
    CHECK(!has(ranked.out, "\r\033[K"));  // no redrawing (the terminal's own \r\n aside)
    CHECK(!has(ranked.out, "evaluating ["));
  }
}

TEST_CASE("survey: every phase shows progress on a terminal, plain lines in a pipe") {
  TempDir dir("attnlab-progress-survey");
  // The language-model survey of one variant: training, the 1×/2×/4× length
  // evaluation, the decode timing.
  const std::vector<std::string> lm = {"survey",     "--quick", "--steps",   "20",
                                       "--variants", "mqa",     "--threads", "1"};
  std::vector<std::string> on_tty = lm;
  on_tty.insert(on_tty.end(), {"--out", dir.file("tty")});
  const CommandResult tty = run_on_terminal(on_tty);
  REQUIRE_MESSAGE(tty.exit_code == 0, tty.describe());
  CHECK(has(tty.out, "\r[########################] step 20/20"));
  CHECK(has(tty.out, "\r[1/1] mqa seed 1337: val loss at 1×, 2×, 4× the context [###"));
  CHECK(has(tty.out, "\r[1/1] mqa seed 1337: timing decoding [########################] 6/6"));
  CHECK(has(tty.out, "[1/1] mqa seed 1337: val loss "));  // the run's result line
  const std::string csv = read_text_file(dir.file("tty") + "/survey.csv");
  CHECK(has(csv, "\nmqa,1,"));
  CHECK(!has(csv, "\nmha,"));

  std::string line = command_line(lm);
  const CommandResult piped = run_command(line + " --out " + shell_quote(dir.file("pipe")));
  REQUIRE_MESSAGE(piped.exit_code == 0, piped.describe());
  CHECK(has(piped.out, "[1/1] mqa seed 1337 step 20/20: loss "));
  CHECK(has(piped.out, "[1/1] mqa seed 1337: val loss at 1×, 2×, 4× the context: 6/6\n"));
  CHECK(has(piped.out, "[1/1] mqa seed 1337: timing decoding: 6/6\n"));
  CHECK(!has(piped.out, "\r"));

  // A task survey: one bar over the sweep, a line per finished run.
  const std::vector<std::string> recall = {
      "survey", "--task",    "recall", "--quick",    "--steps", "5",         "--pairs",
      "2,4",    "--context", "16",     "--variants", "gqa",     "--threads", "1"};
  std::vector<std::string> recall_tty = recall;
  recall_tty.insert(recall_tty.end(), {"--out", dir.file("recall-tty")});
  const CommandResult rt = run_on_terminal(recall_tty);
  REQUIRE_MESSAGE(rt.exit_code == 0, rt.describe());
  CHECK(has(rt.out, "\r[########################] step 10/10  loss "));
  CHECK(has(rt.out, "[2/2] recall gqa, 4 pairs, seed 1337: accuracy "));
  line = command_line(recall);
  const CommandResult rp = run_command(line + " --out " + shell_quote(dir.file("recall-pipe")));
  REQUIRE_MESSAGE(rp.exit_code == 0, rp.describe());
  CHECK(has(rp.out, "[1/2] recall gqa, 2 pairs, seed 1337: step 5/5, answer loss "));
  CHECK(has(rp.out, "[2/2] recall gqa, 4 pairs, seed 1337: accuracy "));
  CHECK(!has(rp.out, "\r"));
}

TEST_CASE("convert: its phases on a terminal, plain lines otherwise") {
  TempDir dir("attnlab-progress-convert");
  const std::string ck = tiny_checkpoint(dir);
  const CommandResult tty = run_on_terminal(
      {"convert", "--checkpoint", ck, "--weights", "int8", "--out", dir.file("tty.safetensors")});
  REQUIRE_MESSAGE(tty.exit_code == 0, tty.describe());
  CHECK(has(tty.out, "\rconvert: checking the decoder against the training forward…\033[K"));
  CHECK(has(tty.out, "\rconvert: storing the matrices in int8 and checking that decoder…"));
  CHECK(has(tty.out, "\r\033[Kchecked: "));  // the line erased before the results

  const CommandResult filed =
      run_attnlab({"convert", "--checkpoint", ck, "--out", dir.file("file.safetensors")});
  REQUIRE_MESSAGE(filed.exit_code == 0, filed.describe());
  CHECK(filed.err.empty());  // stderr is for errors
  const std::string phases =
      "convert: checking the decoder against the training forward\n"
      "convert: writing " +
      dir.file("file.safetensors") + "\n";
  CHECK(filed.out.rfind(phases + "checked: decoder and training forward agree", 0) == 0);
}
