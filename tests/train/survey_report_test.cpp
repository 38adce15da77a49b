// What the surveys' reports share (train/survey_report.hpp): the variants a
// survey trains, with --variants, and the machine load their charts give.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/survey_report.hpp"

using namespace attnlab;

namespace {

std::vector<std::string> names(const std::vector<SurveyVariant>& variants) {
  std::vector<std::string> out;
  for (const SurveyVariant& v : variants) out.push_back(v.name);
  return out;
}

}  // namespace

TEST_CASE("survey_variants: all four, the MoE twins, or only those asked for") {
  CHECK(names(survey_variants(false)) == std::vector<std::string>{"mha", "gqa", "mqa", "mla"});
  CHECK(names(survey_variants(true)).size() == 8);
  // In the survey's order, whatever the order asked.
  CHECK(names(survey_variants(true, {"mla+moe", "gqa"})) ==
        std::vector<std::string>{"gqa", "mla+moe"});
  const std::vector<SurveyVariant> moe = survey_variants(true, {"mqa+moe"});
  REQUIRE(moe.size() == 1);
  CHECK(moe[0].attention == "mqa");
  CHECK(moe[0].moe);
  CHECK_THROWS_WITH_AS(survey_variants(false, {"mha", "mqa+moe"}),
                       doctest::Contains("mqa+moe is not one of the survey's variants"), Error);
  CHECK_THROWS_AS(survey_variants(false, {"xla"}), Error);
}

TEST_CASE("LoadSamples: nothing without samples; mean and range of the 1-minute load") {
  LoadSamples load;
  CHECK(load.describe().empty());
  CHECK(chart_subtitle(2, load).find("load") == std::string::npos);
  if (!std::filesystem::exists("/proc/loadavg")) return;  // not Linux: nothing to sample
  load.sample();
  load.sample();
  const std::string d = load.describe();
  CHECK(d.rfind("load ", 0) == 0);
  CHECK(d.find(", ") != std::string::npos);
  CHECK(d.find("–") != std::string::npos);
  const std::string subtitle = chart_subtitle(2, load);
  CHECK(subtitle.find("; 2 thread(s) per run; " + d + "; ") != std::string::npos);
}
