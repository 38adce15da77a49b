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
  // tokens_per_s ≤ 0: no rate shown (a survey's bar spans several runs).
  void update(int64_t step, double loss, double tokens_per_s, double seconds_left);
  // A message on a line of its own (an evaluation), without breaking the bar.
  void note(const std::string& line);
  void finish();

  // Whether progress on `stream` is drawn as a bar: the stream is a terminal
  // and this process was not started by mpirun. Open MPI gives every rank a
  // pseudo-terminal whatever mpirun's own output is, so a rank's bar would
  // land in a log file as carriage returns and escape codes; under an MPI
  // launcher progress is plain lines.
  static bool draws_bar(std::FILE* stream);
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

// The phases of a short piece of work (convert: read, check, write): on a
// terminal one line redrawn with the phase under way, "convert: checking …",
// erased when done; otherwise a line per phase.
class PhaseProgress {
 public:
  PhaseProgress(std::FILE* out, bool interactive, std::string what);
  ~PhaseProgress() { finish(); }  // an error message then starts on a clean line
  PhaseProgress(const PhaseProgress&) = delete;
  PhaseProgress& operator=(const PhaseProgress&) = delete;
  void start(const std::string& phase);
  void finish();  // erases the redrawn line

 private:
  std::FILE* out_;
  bool interactive_;
  std::string what_;
  bool drawn_ = false;
};

}  // namespace attnlab
