#include "attnlab/train/survey_report.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>

#include "attnlab/tensor/error.hpp"

namespace attnlab {

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double spread(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double half_iqr(std::vector<double> v) {
  if (v.size() < 2) return 0;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
  };
  return (at(0.75) - at(0.25)) / 2;
}

std::string machine_line() {
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  struct utsname u {};
  uname(&u);
  return fmt::format("{}, {} cores, {} {}", cpu, std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)),
                     u.sysname, u.machine);
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

void LoadSamples::sample() {
  std::ifstream in("/proc/loadavg");
  double one_minute = 0;
  if (in >> one_minute) samples_.push_back(one_minute);
}

std::string LoadSamples::describe() const {
  if (samples_.empty()) return "";
  const auto [lo, hi] = std::minmax_element(samples_.begin(), samples_.end());
  return fmt::format("load {:.1f}, {:.1f}–{:.1f}", mean(samples_), *lo, *hi);
}

std::string chart_subtitle(int64_t threads, const LoadSamples& load) {
  const std::string l = load.describe();
  return fmt::format("{}; {} thread(s) per run; {}{}", machine_line(),
                     threads > 0 ? std::to_string(threads) : "all", l.empty() ? "" : l + "; ",
                     now_utc());
}

std::vector<SurveyVariant> survey_variants(bool with_moe, const std::vector<std::string>& only) {
  std::vector<SurveyVariant> all;
  for (const char* a : {"mha", "gqa", "mqa", "mla"}) all.push_back({a, a, false});
  if (with_moe)
    for (const char* a : {"mha", "gqa", "mqa", "mla"})
      all.push_back({std::string(a) + "+moe", a, true});
  for (const std::string& name : only)
    ATTN_CHECK(std::any_of(all.begin(), all.end(), [&](const auto& v) { return v.name == name; }),
               "--variants: {} is not one of the survey's variants (mha, gqa, mqa, mla, and with "
               "--experts mha+moe, gqa+moe, mqa+moe, mla+moe)",
               name);
  if (only.empty()) return all;
  std::vector<SurveyVariant> variants;
  for (const SurveyVariant& v : all)
    if (std::find(only.begin(), only.end(), v.name) != only.end()) variants.push_back(v);
  return variants;
}

ChartStyle variant_style(const std::string& name) {
  const std::string attention = name.substr(0, name.find('+'));
  const std::vector<std::string> order = {"mha", "gqa", "mqa", "mla"};
  const auto at = std::find(order.begin(), order.end(), attention);
  return {static_cast<int>(at - order.begin()), name.find("+moe") != std::string::npos};
}

}  // namespace attnlab
