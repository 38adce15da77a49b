#include "attnlab/train/metrics.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/tensor/error.hpp"

namespace attnlab {

std::string MetricsLog::to_csv() const {
  std::string out = std::string(kHeader) + "\n";
  for (const MetricsRow& r : rows_)
    out += fmt::format("{},{:.6f},{},{:.6g},{:.6f},{:.6f},{:.1f},{:.3f}\n", r.step, r.train_loss,
                       r.val_loss ? fmt::format("{:.6f}", *r.val_loss) : "", r.lr, r.grad_norm,
                       r.aux_loss, r.tokens_per_s, r.elapsed_s);
  return out;
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
