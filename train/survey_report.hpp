// What the surveys' reports share (survey.hpp, task_survey.hpp): the
// statistics over seeds and repeated timings, the machine and date they
// print, and the look of each variant in every chart.
#pragma once

#include <string>
#include <vector>

#include "attnlab/train/svg_chart.hpp"

namespace attnlab {

double mean(const std::vector<double>& v);
double spread(const std::vector<double>& v);  // sample standard deviation (0 for one value)
double median(std::vector<double> v);         // the upper median of an even count
double half_iqr(std::vector<double> v);       // (q75 − q25) / 2: the spread of timings

// "CPU model, N cores, Linux x86_64".
std::string machine_line();
std::string now_utc();  // "2026-11-30 02:40 UTC"
// The machine's load while a survey ran: the 1-minute load average
// (/proc/loadavg) sampled as each run ends. Timings on a loaded machine are
// slower and noisier than on an idle one, so the report and every chart say it.
class LoadSamples {
 public:
  void sample();                 // nothing where /proc/loadavg cannot be read
  std::string describe() const;  // "load 3.2, 1.1–6.9": mean, range; "" without samples

 private:
  std::vector<double> samples_;
};

// The subtitle of every survey chart: machine, threads, load, date.
std::string chart_subtitle(int64_t threads, const LoadSamples& load);

// The variants a survey trains, the MoE twins with with_moe, only those named
// in `only` when it is not empty (a name that is none of them is refused).

// The variants a survey trains: mha, gqa, mqa, mla, then their MoE twins
// ("mha+moe", …) when with_moe.
struct SurveyVariant {
  std::string name;       // as shown: "gqa", "gqa+moe"
  std::string attention;  // --attention
  bool moe = false;
};
std::vector<SurveyVariant> survey_variants(bool with_moe,
                                           const std::vector<std::string>& only = {});

// A variant's look in every chart: the colour of its attention, dashed when
// it is the MoE twin of a dense variant (same colour as its twin).
ChartStyle variant_style(const std::string& name);

}  // namespace attnlab
