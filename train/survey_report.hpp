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
// The subtitle of every survey chart: machine, threads, date.
std::string chart_subtitle(int64_t threads);

// The variants a survey trains: mha, gqa, mqa, mla, then their MoE twins
// ("mha+moe", …) when with_moe.
struct SurveyVariant {
  std::string name;       // as shown: "gqa", "gqa+moe"
  std::string attention;  // --attention
  bool moe = false;
};
std::vector<SurveyVariant> survey_variants(bool with_moe);

// A variant's look in every chart: the colour of its attention, dashed when
// it is the MoE twin of a dense variant (same colour as its twin).
ChartStyle variant_style(const std::string& name);

}  // namespace attnlab
