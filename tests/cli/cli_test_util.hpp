// Helpers for the end-to-end CLI tests: run a command line and capture what it
// printed and how it exited, quote arguments for the shell, run the attnlab
// binary (ATTNLAB_EXE, set by tests/CMakeLists.txt) to the end or start it
// (or another program: mpirun) and wait later, with or without a time limit,
// find a started program's child, and a scratch directory that removes itself.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace attnlab::testing {

// A fresh directory under the system temp dir, removed (with its contents)
// when the object goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "attnlab-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("TempDir: mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;  // best effort; never throw from a destructor
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside the directory, as a string.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Reads a whole file; "" when it cannot be opened.
inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// `arg` quoted for /bin/sh: in single quotes, each ' written as '\''.
inline std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;  // the exit status; 128 + signal number when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr

  // All of it, for a failure message.
  std::string describe() const {
    std::ostringstream s;
    s << "exit code " << exit_code << "\n--- stdout ---\n" << out << "--- stderr ---\n" << err;
    return s.str();
  }
};

// Runs `command_line` with /bin/sh (so it may use redirections and pipes),
// stdin from /dev/null. stdout is captured through a pipe, stderr through a
// temporary file.
inline CommandResult run_command(const std::string& command_line) {
  TempDir scratch("attnlab-cmd");
  const std::string err_path = scratch.file("stderr");
  const std::string full = "( " + command_line + " ) < /dev/null 2> " + shell_quote(err_path);
  CommandResult result;
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("run_command: popen failed for: " + command_line);
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  if (status == -1) throw std::runtime_error("run_command: pclose failed for: " + command_line);
  if (WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    result.exit_code = 128 + WTERMSIG(status);
  result.err = read_text_file(err_path);
  return result;
}

#ifdef ATTNLAB_EXE
// Runs the attnlab binary with `args`, each quoted.
inline CommandResult run_attnlab(const std::vector<std::string>& args) {
  std::string command_line = shell_quote(ATTNLAB_EXE);
  for (const std::string& a : args) {
    command_line += ' ';  // (appending in two steps avoids a GCC 12 -Wrestrict false positive)
    command_line += shell_quote(a);
  }
  return run_command(command_line);
}

// A started attnlab process, its output going to files.
struct Process {
  pid_t pid = -1;
  std::string out_path, err_path;
};

// Starts the program argv[0] with `args` without waiting; stdout and stderr
// go to `<log_prefix>.out` and `.err`. With own_group, the process leads a
// process group of its own, so that kill(-pid, …) reaches the children it
// starts.
inline Process spawn_program(std::vector<std::string> argv_strings, const std::string& log_prefix,
                             bool own_group = false) {
  Process p{-1, log_prefix + ".out", log_prefix + ".err"};
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);  // the child must not inherit (and print again) buffered output
  p.pid = fork();
  if (p.pid < 0) throw std::runtime_error("spawn_program: fork failed");
  if (p.pid == 0) {
    // The child: passive OpenMP waiting already set (so attnlab does not
    // re-execute itself, and keeps this pid), output to the log files.
    if (own_group) setpgid(0, 0);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    const int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return p;
}

// Starts attnlab with `args` without waiting (spawn_program).
inline Process spawn_attnlab(const std::vector<std::string>& args, const std::string& log_prefix,
                             bool own_group = false) {
  std::vector<std::string> argv = {ATTNLAB_EXE};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_program(std::move(argv), log_prefix, own_group);
}

// Starts a shell command line without waiting (spawn_program), the shell
// replaced by the command (exec), so that the pid is the command's.
inline Process spawn_shell(const std::string& command_line, const std::string& log_prefix) {
  return spawn_program({"/bin/sh", "-c", "exec " + command_line}, log_prefix);
}

// Waits for the process; its exit status (128 + signal when killed).
inline int wait_for(const Process& p) {
  int status = 0;
  while (waitpid(p.pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Whether the process has already exited (reaped, status in *code).
inline bool exited_already(const Process& p, int* code) {
  int status = 0;
  const pid_t r = waitpid(p.pid, &status, WNOHANG);
  if (r != p.pid) return false;
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

// Waits at most `timeout` for the process: its exit status (as wait_for),
// or nullopt when it still runs.
inline std::optional<int> wait_within(const Process& p, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int code = 0;
  while (!exited_already(p, &code)) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return code;
}

// Kills a started process (with its process group when `group`) if the test
// leaves the scope while it still runs: a failed check must not leave a long
// run behind, or a stopped one. A child not yet waited for keeps its pid, so
// the pid cannot be another process's.
struct KillIfRunning {
  const Process& p;
  bool group = false;
  ~KillIfRunning() {
    int status = 0;
    if (waitpid(p.pid, &status, WNOHANG) != 0) return;  // reaped now or before
    kill(group ? -p.pid : p.pid, SIGKILL);
    wait_for(p);
  }
};

// The child process of `parent` whose environment holds `variable` ("NAME=value",
// e.g. mpirun's OMPI_COMM_WORLD_RANK=1); -1 when there is none (yet).
inline pid_t child_with_environment(pid_t parent, const std::string& variable) {
  namespace fs = std::filesystem;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_text_file((entry.path() / "stat").string());
    const size_t close = stat.rfind(')');  // after the command name, which may hold spaces
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    const std::string environment = read_text_file((entry.path() / "environ").string());
    if (environment.find(variable + '\0') != std::string::npos)
      return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// What the process printed and how it ended, for a failure message.
inline std::string describe(const Process& p, int code) {
  return "attnlab exited with status " + std::to_string(code) + "\n--- stdout ---\n" +
         read_text_file(p.out_path) + "--- stderr ---\n" + read_text_file(p.err_path);
}
#endif

// The steps listed in a run's metrics.csv, in file order.
inline std::vector<int64_t> metrics_steps(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  std::vector<int64_t> steps;
  while (std::getline(in, line))
    if (!line.empty()) steps.push_back(std::stoll(line.substr(0, line.find(','))));
  return steps;
}

// The PyTorch reference cases of tests/data/reference (each a directory with
// an expected.safetensors), sorted by name.
inline std::vector<std::filesystem::path> reference_cases() {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(ATTNLAB_SOURCE_DIR) / "tests" / "data" / "reference";
  std::vector<fs::path> cases;
  if (fs::is_directory(root))
    for (const auto& entry : fs::directory_iterator(root))
      if (entry.is_directory() && fs::exists(entry.path() / "expected.safetensors"))
        cases.push_back(entry.path());
  std::sort(cases.begin(), cases.end());
  return cases;
}

}  // namespace attnlab::testing
