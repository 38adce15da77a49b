#include "attnlab/train/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace attnlab {

ProgressDisplay::ProgressDisplay(int64_t total_steps, bool interactive, int64_t every)
    : total_(std::max<int64_t>(total_steps, 1)), interactive_(interactive), every_(every) {}

bool ProgressDisplay::stdout_is_terminal() {
  return isatty(STDOUT_FILENO) == 1;
}

std::string ProgressDisplay::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

static std::string rate(double tokens_per_s) {
  return tokens_per_s >= 1000 ? fmt::format("{:.1f}k", tokens_per_s / 1000)
                              : fmt::format("{:.0f}", tokens_per_s);
}

void ProgressDisplay::update(int64_t step, double loss, double tokens_per_s, double seconds_left) {
  if (interactive_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * std::min<int64_t>(step, total_) / total_);
    fmt::print("\r[{}{}] step {}/{}  loss {:.4f}  {} tok/s  {} left\033[K",
               std::string(filled, '#'), std::string(kWidth - filled, '-'), step, total_, loss,
               rate(tokens_per_s), format_duration(seconds_left));
    std::fflush(stdout);
    drawn_ = true;
  } else if (step % every_ == 0 || step == total_ || step == 1) {
    fmt::print("step {}/{}: loss {:.4f}, {} tok/s, {} left\n", step, total_, loss,
               rate(tokens_per_s), format_duration(seconds_left));
    std::fflush(stdout);
  }
}

void ProgressDisplay::note(const std::string& line) {
  if (interactive_ && drawn_) fmt::print("\r\033[K");
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

void ProgressDisplay::finish() {
  if (interactive_ && drawn_) fmt::print("\n");
  std::fflush(stdout);
  drawn_ = false;
}

}  // namespace attnlab
