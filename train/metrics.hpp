// metrics.csv of a run: one row per optimizer step,
//   step,train_loss,val_loss,lr,grad_norm,aux_loss,tokens_per_s,elapsed_s
// with val_loss empty on rows without an evaluation. The rows live in memory;
// each is appended to the file (and flushed) as its step ends, and the file is
// rewritten atomically with each checkpoint. A resumed run reads back the rows
// up to its checkpoint's step, rewrites the file with them and goes on, so the
// file never lists a step twice or misses one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attnlab {

struct MetricsRow {
  int64_t step = 0;
  double train_loss = 0;
  std::optional<double> val_loss;
  double lr = 0;
  double grad_norm = 0;
  double aux_loss = 0;
  double tokens_per_s = 0;
  double elapsed_s = 0;
};

class MetricsLog {
 public:
  static constexpr const char* kHeader =
      "step,train_loss,val_loss,lr,grad_norm,aux_loss,tokens_per_s,elapsed_s";

  void add(const MetricsRow& row) { rows_.push_back(row); }
  const std::vector<MetricsRow>& rows() const { return rows_; }
  MetricsRow& last() { return rows_.back(); }

  std::string to_csv() const;
  void write(const std::string& path) const;  // atomically
  // Appends one row and flushes (the header first, when the file is new).
  static void append(const std::string& path, const MetricsRow& row);
  // Reads a metrics.csv written by write() and append(), keeping the rows up
  // to `max_step`. A last line without its newline (a process killed while
  // appending it) is not a row.
  static MetricsLog read(const std::string& path, int64_t max_step);

 private:
  std::vector<MetricsRow> rows_;
};

}  // namespace attnlab
