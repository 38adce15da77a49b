#include "attnlab/train/output_lock.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <thread>

#include "attnlab/tensor/error.hpp"

namespace attnlab {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kLockSuffix = ".attnlab.lock";
constexpr const char* kDirectoryLockName = ".attnlab.lock";

// `text` without trailing slashes ("runs/a/" names the directory "runs/a").
fs::path without_trailing_slashes(std::string text) {
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return fs::path(text);
}

bool is_a_directory(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Creates `dir` and its missing parents; appends those it created, outermost
// first. A directory another process creates at the same moment is theirs.
void create_missing_directories(const fs::path& dir, std::vector<fs::path>& created) {
  std::vector<fs::path> missing;  // innermost first
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      ATTN_CHECK(S_ISDIR(st.st_mode), "{} is a file, not a directory", p.string());
      break;
    }
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto p = missing.rbegin(); p != missing.rend(); ++p) {
    if (::mkdir(p->c_str(), 0777) == 0)
      created.push_back(*p);
    else
      ATTN_CHECK(errno == EEXIST, "cannot create the directory {}: {}", p->string(),
                 std::strerror(errno));
  }
}

// Removes the directories the lock created, innermost first, while they are
// empty (rmdir refuses a directory that holds anything).
void remove_created_directories(const std::vector<fs::path>& created) noexcept {
  for (auto p = created.rbegin(); p != created.rend(); ++p) ::rmdir(p->c_str());
}

// The pid written in the lock file by the process that holds it. It writes it
// right after taking the lock, so a refusal in between may find the file
// empty (or holding a dead writer's pid): wait a little for it. 0: unknown.
long holder_pid(int fd) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    char* end = nullptr;
    const long pid = n > 0 ? std::strtol(text, &end, 10) : 0;
    const bool alive = pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (alive && end != text) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return 0;
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

OutputLock OutputLock::directory(const std::string& dir) {
  return OutputLock(dir, without_trailing_slashes(dir), kDirectoryLockName);
}

OutputLock OutputLock::file(const std::string& path) {
  const fs::path p = without_trailing_slashes(path);
  ATTN_CHECK(!p.filename().empty() && p.filename() != "." && p.filename() != "..",
             "cannot lock {}: it names no file", path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::string name = ".";  // (appended in steps: GCC 12 warns -Wrestrict on a + b + c)
  name += p.filename().string();
  name += kLockSuffix;
  return OutputLock(path, dir, name);
}

bool OutputLock::is_lock_file(const fs::path& entry) {
  const std::string name = entry.filename().string();
  return name.size() >= kLockSuffix.size() && name.front() == '.' &&
         name.compare(name.size() - kLockSuffix.size(), kLockSuffix.size(), kLockSuffix) == 0;
}

bool OutputLock::holds_nothing_but_locks(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (!is_lock_file(entry.path())) return false;
  return !ec;
}

OutputLock::OutputLock(const std::string& output, const fs::path& dir, const std::string& lock_name)
    : lock_path_((dir / lock_name).string()) {
  try {
    // Each pass opens the lock file and locks it; it starts again when the
    // directory or the file was removed under it (a holder releasing).
    for (int attempt = 0;; ++attempt) {
      ATTN_CHECK(attempt < 100, "cannot lock {}: its lock file {} keeps disappearing", output,
                 lock_path_);
      create_missing_directories(dir, created_dirs_);
      const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) continue;
        ATTN_CHECK(err != ENOTDIR || is_a_directory(dir), "{} is a file, not a directory",
                   dir.string());
        throw Error(
            fmt::format("cannot create the lock file {}: {}", lock_path_, std::strerror(err)));
      }
      int locked;
      while ((locked = ::flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
      }
      if (locked != 0) {
        const int err = errno;
        const long pid = err == EWOULDBLOCK ? holder_pid(fd) : 0;
        ::close(fd);
        ATTN_CHECK(err != EWOULDBLOCK,
                   "another attnlab process ({}) is writing to {}; wait for it to finish, or "
                   "choose another output",
                   pid > 0 ? fmt::format("pid {}", pid) : std::string("pid unknown"), output);
        throw Error(fmt::format("cannot lock {}: {}", lock_path_, std::strerror(err)));
      }
      // The file locked must still be the one at the path: a holder removes
      // its lock file when it releases, and a lock on a removed file guards
      // nothing.
      struct stat held {
      }, at_path{};
      if (::fstat(fd, &held) != 0 || ::lstat(lock_path_.c_str(), &at_path) != 0 ||
          !same_file(held, at_path)) {
        ::close(fd);
        continue;
      }
      fd_ = fd;
      const std::string pid = std::to_string(::getpid()) + "\n";
      // The pid is for the refusal's message only: a failure to write it
      // leaves the lock held (the message then says the pid is unknown).
      [[maybe_unused]] const bool written =
          ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) > 0;
      return;
    }
  } catch (...) {
    remove_created_directories(created_dirs_);
    throw;
  }
}

OutputLock::OutputLock(OutputLock&& other) noexcept
    : fd_(other.fd_),
      lock_path_(std::move(other.lock_path_)),
      created_dirs_(std::move(other.created_dirs_)) {
  other.fd_ = -1;
}

OutputLock& OutputLock::operator=(OutputLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    lock_path_ = std::move(other.lock_path_);
    created_dirs_ = std::move(other.created_dirs_);
    other.fd_ = -1;
  }
  return *this;
}

OutputLock::~OutputLock() {
  release();
}

void OutputLock::release() noexcept {
  if (fd_ < 0) return;
  // Remove the file while still holding it, and only if it is still ours
  // (someone may have deleted the directory's contents and another writer
  // locked a new file since).
  struct stat held {
  }, at_path{};
  if (::fstat(fd_, &held) == 0 && ::lstat(lock_path_.c_str(), &at_path) == 0 &&
      same_file(held, at_path))
    ::unlink(lock_path_.c_str());
  ::close(fd_);
  fd_ = -1;
  remove_created_directories(created_dirs_);
  created_dirs_.clear();
}

}  // namespace attnlab
