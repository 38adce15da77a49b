#include "attnlab/train/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "attnlab/train/communicator.hpp"

namespace attnlab {

ProgressDisplay::ProgressDisplay(std::FILE* out, int64_t total_steps, bool interactive,
                                 int64_t every)
    : out_(out),
      total_(std::max<int64_t>(total_steps, 1)),
      interactive_(interactive),
      every_(every) {}

bool ProgressDisplay::draws_bar(std::FILE* stream) {
  return is_terminal(stream) && launched_ranks() == 0;
}

bool ProgressDisplay::is_terminal(std::FILE* stream) {
  return isatty(fileno(stream)) == 1;
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
    fmt::print(out_, "\r[{}{}] step {}/{}  loss {:.4f}  {}{} left\033[K", std::string(filled, '#'),
               std::string(kWidth - filled, '-'), step, total_, loss,
               tokens_per_s > 0 ? rate(tokens_per_s) + " tok/s  " : "",
               format_duration(seconds_left));
    std::fflush(out_);
    drawn_ = true;
  } else if (step % every_ == 0 || step == total_ || step == 1) {
    fmt::print(out_, "step {}/{}: loss {:.4f}, {} tok/s, {} left\n", step, total_, loss,
               rate(tokens_per_s), format_duration(seconds_left));
    std::fflush(out_);
  }
}

void ProgressDisplay::note(const std::string& line) {
  if (interactive_ && drawn_) fmt::print(out_, "\r\033[K");
  fmt::print(out_, "{}\n", line);
  std::fflush(out_);
}

void ProgressDisplay::finish() {
  if (interactive_ && drawn_) fmt::print(out_, "\n");
  std::fflush(out_);
  drawn_ = false;
}

CountProgress::CountProgress(std::FILE* out, bool interactive, std::string what, int64_t total)
    : out_(out),
      interactive_(interactive),
      what_(std::move(what)),
      total_(std::max<int64_t>(total, 1)) {}

void CountProgress::update(int64_t done) {
  if (interactive_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * std::min(done, total_) / total_);
    fmt::print(out_, "\r{} [{}{}] {}/{}\033[K", what_, std::string(filled, '#'),
               std::string(kWidth - filled, '-'), done, total_);
    drawn_ = true;
  } else if (4 * done >= (quarter_ + 1) * total_) {
    quarter_ = 4 * done / total_;
    fmt::print(out_, "{}: {}/{}\n", what_, done, total_);
  }
  std::fflush(out_);
}

void CountProgress::finish() {
  if (interactive_ && drawn_) fmt::print(out_, "\r\033[K");
  std::fflush(out_);
  drawn_ = false;
}

PhaseProgress::PhaseProgress(std::FILE* out, bool interactive, std::string what)
    : out_(out), interactive_(interactive), what_(std::move(what)) {}

void PhaseProgress::start(const std::string& phase) {
  if (interactive_)
    fmt::print(out_, "\r{}: {}…\033[K", what_, phase);
  else
    fmt::print(out_, "{}: {}\n", what_, phase);
  drawn_ = interactive_;
  std::fflush(out_);
}

void PhaseProgress::finish() {
  if (interactive_ && drawn_) fmt::print(out_, "\r\033[K");
  std::fflush(out_);
  drawn_ = false;
}

}  // namespace attnlab
