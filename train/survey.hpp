// The attention survey: the same model trained with each attention variant
// (mha, gqa, mqa, mla; optionally as MoE) on the same data order, seeds, steps
// and schedule, then measured on the same footing: validation loss, size,
// KV-cache memory, training and decoding speed, peak memory.
//
// Each training run and each decoding measurement runs in a child process of
// its own (this same program), so that its peak resident memory is its own.
// Everything lands in the output directory:
//   survey.md, survey.csv          the table (command, date and machine on top)
//   val_loss.svg                   validation loss against step, one curve per variant
//   loss_per_cache_byte.svg        final val loss against KV-cache bytes per token
//   length.svg                     loss by position at 4× the trained context
//   kv_cache.svg, train_throughput.svg, decode_throughput.svg   bars per variant
//   runs/<variant>/seed-<s>/       each run's metrics.csv and checkpoints
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace attnlab {

struct SurveyOptions {
  std::string preset = "baby";
  int64_t steps = 2000;
  std::optional<int64_t> experts;  // also train MoE versions with E experts
  std::optional<int64_t> top_k;
  std::vector<std::string> only;  // train only these variants ("mha", "mqa+moe", …); empty: all
  int64_t seeds = 1;              // seeds 1337, 1338, …; mean ± spread when > 1
  std::string out_dir = "survey";
  bool quick = false;  // tiny budget: a minute end to end, for trying it out
  std::string data_path;
  int64_t threads = 0;
  std::string exe;           // this program (children are started from it)
  std::string command_line;  // written at the top of survey.md
  bool interactive = false;  // redraw the progress line
  bool quiet = true;         // false: progress and results on stdout (the attnlab program)
};

struct SurveyRow {
  std::string variant;  // "mha", "gqa", "mqa", "mla", "mha+moe", …
  int64_t runs = 0;
  double final_val = 0, final_val_spread = 0;  // mean (and std over seeds) at the last evaluation
  double best_val = 0, best_val_spread = 0;
  int64_t attention_params = 0, total_params = 0;
  int64_t kv_bytes_per_token = 0, kv_bytes_full_context = 0;
  double train_tokens_per_s = 0, decode_tokens_per_s = 0;  // medians of repeated timings
  double train_tokens_per_s_spread = 0, decode_tokens_per_s_spread = 0;  // half their IQR
  // Length generalisation: val loss with the context at 1×, 2× and 4× the
  // trained one (the same weights; positions past 1× never seen in training).
  std::array<double, 3> val_loss_at_length = {0, 0, 0};
  std::vector<double> loss_by_position_4x;  // at each position of the 4× context, mean over seeds
  double train_peak_mib = 0, decode_peak_mib = 0;
  double val_bytes_per_token = 1;  // of the data's val split: bits per byte
};

std::vector<SurveyRow> run_survey(const SurveyOptions& options);

// What a decoding child measures: batch 1, a fixed prompt prefilled, then
// `tokens` greedy steps, timed `repeats` times after a warm-up: the median
// and half the interquartile range of the rates. on_generated(done, total)
// is called after each generation, the warm-up included, if given.
constexpr int64_t kSurveyDecodeRepeats = 5;  // the survey's timed generations per checkpoint
struct DecodeMeasurement {
  double tokens_per_s = 0, tokens_per_s_spread = 0;
  int64_t cache_bytes = 0;
};
DecodeMeasurement measure_decode(
    const std::string& checkpoint, int64_t prompt_tokens, int64_t tokens, int64_t threads,
    int64_t repeats = kSurveyDecodeRepeats,
    const std::function<void(int64_t done, int64_t total)>& on_generated = {});

}  // namespace attnlab
