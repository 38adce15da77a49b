// The charts' reading aids: ticks that cover the data, one number format,
// end labels, dashed twins, rotated labels that would collide, error bars.
#include <doctest/doctest.h>

#include <cmath>

#include <cstdlib>
#include <string>
#include <vector>

#include "attnlab/train/svg_chart.hpp"

using namespace attnlab;

namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The numbers of every y tick label (class="ytick").
std::vector<std::string> y_tick_labels(const std::string& svg) {
  std::vector<std::string> out;
  for (size_t at = svg.find("class=\"ytick\""); at != std::string::npos;
       at = svg.find("class=\"ytick\"", at + 1)) {
    const size_t open = svg.find('>', at) + 1;
    out.push_back(svg.substr(open, svg.find('<', open) - open));
  }
  return out;
}

}  // namespace

TEST_CASE("nice_ticks cover the range they are given") {
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{
           {1.68, 1.71}, {1.68, 4.2}, {0, 1}, {-3, 17}, {9186, 10363.5}, {5, 5}}) {
    CAPTURE(lo);
    CAPTURE(hi);
    const std::vector<double> t = nice_ticks(lo, hi);
    REQUIRE(t.size() >= 2);
    CHECK(t.front() <= lo);
    CHECK(t.back() >= hi);
    CHECK(t.size() <= 12);
  }
}

TEST_CASE("format_with_spread: the spread in its value's unit and decimals") {
  CHECK(format_with_spread(2848.4, 7.29) == "2.848k ± 0.007k");
  CHECK(format_with_spread(11997, 255) == "12.0k ± 0.3k");
  CHECK(format_with_spread(6778, 1251) == "6.78k ± 1.25k");
  CHECK(format_with_spread(0.953, 0.021) == "0.95 ± 0.02");
  CHECK(format_with_spread(1.6834, 0.0012) == "1.683 ± 0.001");
  CHECK(format_with_spread(2.5e6, 1e5) == "2.50M ± 0.10M");
}

TEST_CASE("format_number: one format for every number of a chart") {
  CHECK(format_number(9186.2) == "9.19k");
  CHECK(format_number(10363.5) == "10.4k");
  CHECK(format_number(1.6834) == "1.68");
  CHECK(format_number(1.6834, 4) == "1.683");
  CHECK(format_number(50, 1) == "50");
  CHECK(format_number(1234567) == "1.23M");
  CHECK(format_number(0.035156) == "0.0352");
  CHECK(format_number(-2500) == "-2.5k");
}

TEST_CASE("a line chart's lowest tick lies under its lowest value; ends are labelled") {
  LineSeries a{
      .name = "mha", .points = {{0, 4.2}, {1000, 1.9}, {2000, 1.6834}}, .spread = {}, .style = {}};
  LineSeries b{.name = "mha+moe",
               .points = {{0, 4.2}, {1000, 1.95}, {2000, 1.7021}},
               .spread = {0, 0.01, 0.02},
               .style = {.color = 0, .dashed = true}};
  const std::string svg = line_chart_svg({a, b}, {"loss", "step", "loss", "a machine"});
  const std::vector<std::string> ticks = y_tick_labels(svg);
  REQUIRE(!ticks.empty());
  CHECK(std::strtod(ticks.front().c_str(), nullptr) <= 1.6834);
  CHECK(std::strtod(ticks.back().c_str(), nullptr) >= 4.2);
  CHECK(count(svg, "class=\"endlabel\"") == 2);
  CHECK(svg.find("mha 1.683") != std::string::npos);
  CHECK(svg.find("mha+moe 1.702") != std::string::npos);
  CHECK(count(svg, "stroke-dasharray") >= 2);  // the twin's curve and its legend line
  CHECK(count(svg, "class=\"errorbar\"") == 2);
  CHECK(count(svg, "class=\"point\"") == 6);  // few points: marked
  CHECK(svg.find("a machine") != std::string::npos);
  // Both curves in the same colour (the twin's).
  CHECK(count(svg, "stroke=\"#0072B2\" stroke-width=\"2\"") == 2);
}

TEST_CASE("bar labels rotate when they would collide; notes and values in one format") {
  std::vector<Bar> few, many;
  for (const char* v : {"mha", "gqa", "mqa", "mla"})
    few.push_back({v, 10363.5, 0, "25% of mha", {}});
  for (const char* v : {"mha", "gqa", "mqa", "mla", "mha+moe", "gqa+moe", "mqa+moe", "mla+moe"})
    many.push_back({v, 9186.2, 120, "", {}});
  const std::string f = bar_chart_svg(few, {"t", "variant", "bytes"});
  const std::string m = bar_chart_svg(many, {"t", "variant", "bytes"});
  CHECK(f.find("rotate(-35") == std::string::npos);
  CHECK(count(m, "rotate(-35") == 8);
  CHECK(count(f, ">10.4k<") == 4);
  CHECK(count(f, ">25% of mha<") == 4);
  CHECK(count(m, ">9.19k ± 0.12k<") == 8);  // the spread in the value's unit
  CHECK(count(m, "class=\"errorbar\"") == 8);
}

TEST_CASE("a scatter chart: one labelled point each; xml_escape") {
  const std::string svg = scatter_chart_svg({{"mha", 1024, 1.68, 0, {}},
                                             {"mha+moe", 1024, 1.66, 0, {0, true}},
                                             {"mqa", 256, 1.71, 0, {}}},
                                            {"loss per cache byte", "bytes", "loss"});
  CHECK(count(svg, "class=\"point\"") == 3);
  CHECK(svg.find("mha+moe (1.66)") != std::string::npos);
  CHECK(xml_escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;");
}

TEST_CASE("a scatter label wider than the gap to the next point moves off its row") {
  // The recall survey's points: mqa's label at the height of gqa's point ran
  // into it (0.9902 and 0.9961 are a pixel apart; 256 and 512 bytes ~90 px).
  const std::string svg = scatter_chart_svg({{"mha", 1024, 0.9961, 0, {}},
                                             {"gqa", 512, 0.9961, 0, {}},
                                             {"mqa", 256, 0.9902, 0, {}},
                                             {"mla", 192, 0.502, 0, {}}},
                                            {"accuracy per cache byte", "bytes", "accuracy"});
  auto label_y = [&](const std::string& text) {
    const size_t end = svg.find(">" + text + "<");
    REQUIRE(end != std::string::npos);
    const size_t at = svg.rfind(" y=\"", end);
    return std::stod(svg.substr(at + 4));
  };
  CHECK(std::abs(label_y("mqa (0.9902)") - label_y("gqa (0.9961)")) >= 12);
}
