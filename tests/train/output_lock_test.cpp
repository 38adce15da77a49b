// OutputLock: one writer per output directory. A second lock is refused in the
// same process (flock locks belong to an open file) and in another one, with a
// message naming the directory and the holder's pid; a holder killed by
// SIGKILL leaves no lock behind; releasing removes what taking the lock
// created; the descriptor does not leak into an exec'd child; and many
// lock/release cycles of two processes never let both in at once.
#include "attnlab/train/output_lock.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "attnlab/tensor/error.hpp"
#include "tests/cli/cli_test_util.hpp"

extern char** environ;

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using testing::read_text_file;
using testing::TempDir;

// The message of the Error that taking the lock throws; "" when it succeeds.
std::string refusal(const std::string& dir) {
  try {
    const OutputLock lock = OutputLock::directory(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string busy_message(long pid, const std::string& dir) {
  return "another attnlab process (pid " + std::to_string(pid) + ") is writing to " + dir +
         "; wait for it to finish, or choose another output";
}

// Waits for a child; its exit status, or 128 + signal.
int wait_for(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("OutputLock creates the directory, holds it alone and leaves nothing when released") {
  TempDir tmp("attnlab-lock");
  const std::string dir = tmp.file("a/b/run");
  {
    const OutputLock lock = OutputLock::directory(dir);
    CHECK(fs::is_directory(dir));
    CHECK(lock.lock_path() == dir + "/.attnlab.lock");
    CHECK(read_text_file(lock.lock_path()) == std::to_string(getpid()) + "\n");
    CHECK(OutputLock::is_lock_file(lock.lock_path()));
    // A second lock in this process is an open file of its own: refused, and
    // the refusal changes nothing.
    CHECK(refusal(dir) == busy_message(getpid(), dir));
    CHECK(refusal(dir + "/") == busy_message(getpid(), dir + "/"));
    CHECK(fs::exists(lock.lock_path()));
  }
  // Released: the lock file and the directories it created (empty) are gone.
  CHECK(!fs::exists(tmp.file("a")));
  CHECK(refusal(dir) == "");
  CHECK(!fs::exists(tmp.file("a")));

  // A directory that was written into stays, without its lock file.
  {
    const OutputLock lock = OutputLock::directory(dir);
    CHECK(OutputLock::holds_nothing_but_locks(dir));  // its own lock file is not content
    CHECK(!fs::is_empty(dir));
    std::ofstream(dir + "/metrics.csv") << "step\n";
    CHECK(!OutputLock::holds_nothing_but_locks(dir));
  }
  CHECK(!OutputLock::holds_nothing_but_locks(tmp.file("missing")));
  CHECK(fs::exists(dir + "/metrics.csv"));
  CHECK(!fs::exists(dir + "/.attnlab.lock"));
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);

  // A directory that existed before stays even when nothing was written.
  fs::create_directories(tmp.file("kept"));
  CHECK(refusal(tmp.file("kept")) == "");
  CHECK(fs::is_directory(tmp.file("kept")));
  CHECK(fs::is_empty(tmp.file("kept")));
}

TEST_CASE("OutputLock refuses a file where the directory should be, creating nothing") {
  TempDir tmp("attnlab-lock");
  std::ofstream(tmp.file("afile")) << "x";
  CHECK(refusal(tmp.file("afile")) == tmp.file("afile") + " is a file, not a directory");
  CHECK(refusal(tmp.file("afile/run")) == tmp.file("afile") + " is a file, not a directory");
  CHECK(read_text_file(tmp.file("afile")) == "x");
  CHECK(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("OutputLock::file locks one output file beside it") {
  TempDir tmp("attnlab-lock");
  const std::string svg = tmp.file("plots/loss.svg");
  std::optional<OutputLock> lock;
  lock.emplace(OutputLock::file(svg));
  CHECK(lock->lock_path() == tmp.file("plots/.loss.svg.attnlab.lock"));
  CHECK(OutputLock::is_lock_file(lock->lock_path()));
  try {
    const OutputLock second = OutputLock::file(svg);
    FAIL("a second lock of the same file was granted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == busy_message(getpid(), svg));
  }
  // A directory replaced whole is locked by its name the same way.
  {
    const OutputLock data = OutputLock::file(tmp.file("plots/data/"));
    CHECK(data.lock_path() == tmp.file("plots/.data.attnlab.lock"));
    CHECK(!fs::exists(tmp.file("plots/data")));
  }
  // Another file in the same directory is another lock.
  CHECK_NOTHROW(OutputLock::file(tmp.file("plots/other.svg")));
  lock.reset();
  CHECK(!fs::exists(tmp.file("plots")));
  for (const char* name : {"last.safetensors", "metrics.csv", ".attnlab", "attnlab.lock"})
    CHECK(!OutputLock::is_lock_file(name));
}

TEST_CASE("OutputLock excludes another process, and a holder killed by SIGKILL leaves no lock") {
  TempDir tmp("attnlab-lock");
  const std::string dir = tmp.file("run");

  // The parent holds the lock: a forked child is refused, naming the parent.
  {
    const OutputLock lock = OutputLock::directory(dir);
    const pid_t parent = getpid();
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) _exit(refusal(dir) == busy_message(parent, dir) ? 0 : 1);
    CHECK(wait_for(child) == 0);
  }

  // A child holds it (and reports so through a pipe): the parent is refused,
  // naming the child; once the child is killed, the lock is free at once,
  // although the dead holder's lock file is still there.
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  std::fflush(nullptr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(ready[0]);
    try {
      const OutputLock lock = OutputLock::directory(dir);
      const char byte = 'L';
      if (write(ready[1], &byte, 1) != 1) _exit(2);
      pause();  // until killed
    } catch (...) {
    }
    _exit(1);
  }
  close(ready[1]);
  char byte = 0;
  REQUIRE(read(ready[0], &byte, 1) == 1);
  close(ready[0]);
  CHECK(refusal(dir) == busy_message(child, dir));
  REQUIRE(kill(child, SIGKILL) == 0);
  CHECK(wait_for(child) == 128 + SIGKILL);
  CHECK(fs::exists(dir + "/.attnlab.lock"));  // left by the killed holder
  {
    const OutputLock lock = OutputLock::directory(dir);
    CHECK(read_text_file(lock.lock_path()) == std::to_string(getpid()) + "\n");
  }
  CHECK(!fs::exists(dir + "/.attnlab.lock"));
}

TEST_CASE("OutputLock's descriptor is not inherited by a program the holder starts") {
  TempDir tmp("attnlab-lock");
  const OutputLock lock = OutputLock::directory(tmp.file("run"));
  const fs::path lock_file = fs::canonical(lock.lock_path());
  auto holds_lock_file = [&](pid_t pid) {
    const fs::path fds = "/proc/" + std::to_string(pid) + "/fd";
    std::error_code ec;
    for (const auto& fd : fs::directory_iterator(fds, ec)) {
      const fs::path target = fs::read_symlink(fd.path(), ec);
      if (!ec && target == lock_file) return true;
    }
    return false;
  };
  REQUIRE(holds_lock_file(getpid()));  // the check can see a held lock file
  // glibc's posix_spawn returns once the child has exec'd (or failed to).
  const char* argv[] = {"/bin/sleep", "30", nullptr};
  pid_t child = 0;
  REQUIRE(posix_spawn(&child, "/bin/sleep", nullptr, nullptr, const_cast<char**>(argv), environ) ==
          0);
  CHECK(!holds_lock_file(child));
  kill(child, SIGKILL);
  wait_for(child);
}

TEST_CASE("two processes locking and releasing in a loop are never inside at the same time") {
  // Each takes the lock 150 times; inside it creates a marker with O_EXCL
  // (which fails if the other is inside too) and removes it. Releasing
  // removes the lock file, so this also runs the path where a process locks
  // a file that its holder has just removed and must start again.
  TempDir tmp("attnlab-lock");
  const std::string dir = tmp.file("run");
  const std::string marker = dir + "/inside";
  std::fflush(nullptr);
  pid_t children[2];
  for (pid_t& child : children) {
    child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int held = 0, refused = 0;
      while (held < 150 && refused < 10000000) {
        try {
          const OutputLock lock = OutputLock::directory(dir);
          const int fd = open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
          if (fd < 0) _exit(3);  // the other one is inside too
          close(fd);
          unlink(marker.c_str());
          ++held;
        } catch (const Error& e) {
          if (std::string(e.what()).find("another attnlab process") == std::string::npos) _exit(4);
          ++refused;
        }
      }
      _exit(held == 150 ? 0 : 5);
    }
  }
  for (pid_t child : children) CHECK(wait_for(child) == 0);
  CHECK(!fs::exists(marker));
  CHECK(!fs::exists(dir + "/.attnlab.lock"));
}

}  // namespace attnlab
