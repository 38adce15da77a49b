#include "attnlab/train/metrics.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/tensor/error.hpp"

namespace attnlab {

namespace {
std::string csv_line(const MetricsRow& r) {
  return fmt::format("{},{:.6f},{},{:.6g},{:.6f},{:.6f},{:.1f},{:.3f}\n", r.step, r.train_loss,
                     r.val_loss ? fmt::format("{:.6f}", *r.val_loss) : "", r.lr, r.grad_norm,
                     r.aux_loss, r.tokens_per_s, r.elapsed_s);
}
}  // namespace

std::string MetricsLog::to_csv() const {
  std::string out = std::string(kHeader) + "\n";
  for (const MetricsRow& r : rows_) out += csv_line(r);
  return out;
}

void MetricsLog::append(const std::string& path, const MetricsRow& row) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  ATTN_CHECK(f, "cannot append to {}: {}", path, std::strerror(errno));
  std::fseek(f, 0, SEEK_END);
  const std::string text =
      (std::ftell(f) == 0 ? std::string(kHeader) + "\n" : std::string()) + csv_line(row);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;  // flushes
  ATTN_CHECK(ok && closed, "cannot append to {}", path);
}

void MetricsLog::write(const std::string& path) const {
  write_file_atomically(path, to_csv());
}

MetricsLog MetricsLog::read(const std::string& path, int64_t max_step) {
  std::ifstream in(path);
  ATTN_CHECK(in.good(), "cannot read {}", path);
  std::string line;
  std::getline(in, line);
  ATTN_CHECK(line == kHeader, "{}: not a metrics file (header '{}')", path, line);
  MetricsLog log;
  int64_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (in.eof()) break;  // no newline after it: cut short by a kill
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) f.push_back(cell);
    if (!line.empty() && line.back() == ',') f.push_back("");
    ATTN_CHECK(f.size() == 8, "{}: line {} has {} fields, not 8", path, line_no, f.size());
    try {
      MetricsRow r;
      r.step = std::stoll(f[0]);
      r.train_loss = std::stod(f[1]);
      if (!f[2].empty()) r.val_loss = std::stod(f[2]);
      r.lr = std::stod(f[3]);
      r.grad_norm = std::stod(f[4]);
      r.aux_loss = std::stod(f[5]);
      r.tokens_per_s = std::stod(f[6]);
      r.elapsed_s = std::stod(f[7]);
      if (r.step <= max_step) log.add(r);
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: line {} is not a metrics row: '{}'", path, line_no, line));
    }
  }
  return log;
}

}  // namespace attnlab
