// Ctrl-C and SIGTERM during a long command: the first asks the work to stop
// at its next safe point (the library polls the flag, e.g. between training
// steps: RunControl::stop), the second ends the process at once. Installed by
// the command for the time it runs, never by the library.
#pragma once

#include <signal.h>

#include <atomic>

namespace attnlab::cli {

class StopOnSignal {
 public:
  StopOnSignal();   // installs the handlers of SIGINT and SIGTERM
  ~StopOnSignal();  // puts the previous ones back
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

  // Set by the first signal; pass it to the work to stop.
  const std::atomic<bool>* flag() const;
  bool requested() const { return flag()->load(); }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// The exit status of a command stopped by a signal (128 + SIGINT, as shells
// report a process ended by Ctrl-C).
inline constexpr int kExitInterrupted = 130;

}  // namespace attnlab::cli
