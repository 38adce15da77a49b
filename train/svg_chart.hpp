// Small, dependency-free SVG charts for the survey and `attnlab plot`: a line
// chart (one curve per series, e.g. validation loss against step) and a bar
// chart (one bar per category). The SVG is plain XML that any browser shows; axes carry labels
// with units, ticks at round numbers, and a legend.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace attnlab {

struct LineSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), in x order
};

struct ChartLabels {
  std::string title;
  std::string x_label;      // with its unit, e.g. "step"
  std::string y_label;      // e.g. "validation loss (nats/char)"
  bool label_ends = false;  // write each curve's last value beside its end
};

std::string line_chart_svg(const std::vector<LineSeries>& series, const ChartLabels& labels);
std::string bar_chart_svg(const std::vector<std::pair<std::string, double>>& bars,
                          const ChartLabels& labels);

// "Nice" tick positions covering [lo, hi] (about `count` of them: 1, 2 or 5 × 10^k apart).
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

}  // namespace attnlab
