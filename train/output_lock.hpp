// One writer per output: every attnlab command that writes a directory (a run
// directory, a survey, …) holds an exclusive lock on it from before its first
// write until it exits, so two commands started at the same moment into the
// same directory cannot both run: the second is refused at once, naming the
// directory and the pid of the process that holds it, and changes nothing.
//
//   const OutputLock lock = OutputLock::directory(out_dir);  // may throw Error
//   ... check what out_dir holds, then write into it ...
//
// The lock is flock(LOCK_EX | LOCK_NB) on a lock file inside the directory,
// `.attnlab.lock`, which holds the holder's pid as text (for the refusal's
// message). The kernel drops a flock when the last descriptor of its open file
// goes away, so a writer killed by SIGKILL never leaves a stale lock: the file
// may stay behind, but the next writer locks it again at once. The descriptor
// is opened O_CLOEXEC, so a child process (survey's runs) never inherits, and
// outlives the parent with, the parent's lock. flock locks belong to an open
// file, not to a process: a second OutputLock on the same directory in the
// same process is refused too.
//
// Releasing (the destructor) removes the lock file, and the directories that
// taking the lock created when they are still empty: a command refused after
// taking the lock (a bad corpus, a run that would not fit in memory) leaves
// the file system as it found it. Removing a lock file is safe because taking
// the lock checks, once it holds the flock, that the file it locked is still
// the one at the path (a writer that locked a file just removed retries).
//
// The lock file is not part of what a directory holds: code that asks whether
// a directory is empty or already holds a run skips it (is_lock_file). It is
// advisory: only attnlab's writers take it; readers (eval, sample, info,
// inspect) never need it, since every file is written atomically.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace attnlab {

class OutputLock {
 public:
  // Locks the directory `dir` (creating it and its missing parents).
  // Throws Error when another process holds the lock ("another attnlab
  // process (pid N) is writing to DIR; …"), when `dir` is a file, or when the
  // lock file cannot be created.
  static OutputLock directory(const std::string& dir);
  // Locks one output by its name, for a command whose output is a single
  // file, or a directory it replaces whole (built aside, then renamed into
  // place: a lock file inside would move away with the old one). The lock
  // file is `.<name>.attnlab.lock` beside it, in its parent directory (created
  // if missing). The output itself is left to the caller.
  static OutputLock file(const std::string& path);

  // Whether a directory entry is an attnlab lock file (`.attnlab.lock`, or
  // `.<name>.attnlab.lock`): never part of a run's content.
  static bool is_lock_file(const std::filesystem::path& entry);
  // Whether `dir` is a directory that holds nothing but lock files: what a
  // check "is this output directory empty?" asks (std::filesystem::is_empty
  // would count the lock file the caller itself holds).
  static bool holds_nothing_but_locks(const std::filesystem::path& dir);

  OutputLock(OutputLock&& other) noexcept;
  OutputLock& operator=(OutputLock&& other) noexcept;
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  ~OutputLock();

  // The lock file's path.
  const std::string& lock_path() const { return lock_path_; }

 private:
  OutputLock(const std::string& output, const std::filesystem::path& dir,
             const std::string& lock_name);
  void release() noexcept;

  int fd_ = -1;
  std::string lock_path_;
  std::vector<std::filesystem::path> created_dirs_;  // by the lock, outermost first
};

}  // namespace attnlab
