// The progress display of a training run. On a terminal, one line redrawn in
// place:  [#########-----------] step 900/2000  loss 1.8123  41.2k tok/s  0:13 left
// and, when the stream is not a terminal (a log file, CI), plain lines now
// and then:
//   step 900/2000: loss 1.8123, 41.2k tok/s, 0:13 left
// The stream is the caller's choice (the library never prints unasked).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace attnlab {

class ProgressDisplay {
 public:
  // interactive: redraw one line; otherwise print a line every `every` steps.
  ProgressDisplay(std::FILE* out, int64_t total_steps, bool interactive, int64_t every = 100);
  void update(int64_t step, double loss, double tokens_per_s, double seconds_left);
  // A message on a line of its own (an evaluation), without breaking the bar.
  void note(const std::string& line);
  void finish();

  static bool stdout_is_terminal();
  static bool is_terminal(std::FILE* stream);
  static std::string format_duration(double seconds);  // "1:05", "1:02:03"

 private:
  std::FILE* out_;
  int64_t total_;
  bool interactive_;
  int64_t every_;
  bool drawn_ = false;
};

// The progress of a counted piece of work (an evaluation's batches): on a
// terminal one line redrawn, "evaluating [#######---------] 40/100", erased
// when done; otherwise a plain line "evaluating: 40/100" at each quarter.
class CountProgress {
 public:
  CountProgress(std::FILE* out, bool interactive, std::string what, int64_t total);
  void update(int64_t done);
  void finish();  // erases the redrawn line

 private:
  std::FILE* out_;
  bool interactive_;
  std::string what_;
  int64_t total_, quarter_ = 0;
  bool drawn_ = false;
};

}  // namespace attnlab
