#include "cli/stop_signal.hpp"

#include <unistd.h>

namespace attnlab::cli {
namespace {

std::atomic<bool> stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

// Async-signal-safe only: an atomic store, write(2), signal(2). The handlers
// go back to the default here, so the second signal kills the process at
// once; the atomic file writes leave the last complete checkpoint behind.
void on_signal(int) {
  stop_requested.store(true);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  static const char kMessage[] =
      "\nattnlab: stopping after this step and saving (Ctrl-C again to abort at once)\n";
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

}  // namespace

StopOnSignal::StopOnSignal() {
  stop_requested.store(false);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a read or write in progress goes on
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

StopOnSignal::~StopOnSignal() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

const std::atomic<bool>* StopOnSignal::flag() const {
  return &stop_requested;
}

}  // namespace attnlab::cli
