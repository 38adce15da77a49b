// The progress display of a training run. On a terminal, one line redrawn in
// place:  [#########-----------] step 900/2000  loss 1.8123  41.2k tok/s  0:13 left
// and, when stdout is not a terminal (a log file, CI), plain lines now and then:
//   step 900/2000: loss 1.8123, 41.2k tok/s, 0:13 left
#pragma once

#include <cstdint>
#include <string>

namespace attnlab {

class ProgressDisplay {
 public:
  // interactive: redraw one line; otherwise print a line every `every` steps.
  ProgressDisplay(int64_t total_steps, bool interactive, int64_t every = 100);
  void update(int64_t step, double loss, double tokens_per_s, double seconds_left);
  // A message on a line of its own (an evaluation), without breaking the bar.
  void note(const std::string& line);
  void finish();

  static bool stdout_is_terminal();
  static std::string format_duration(double seconds);  // "1:05", "1:02:03"

 private:
  int64_t total_;
  bool interactive_;
  int64_t every_;
  bool drawn_ = false;
};

}  // namespace attnlab
