// Small, dependency-free SVG charts for the survey, eval and `attnlab plot`: a line chart
// (one curve per series, e.g. validation loss against step), a bar chart (one
// bar per category) and a scatter chart (one labelled point per category,
// e.g. loss against KV-cache bytes). The SVG is plain XML that any browser
// shows. What every chart does so that a reader can read it:
//   - the y ticks cover the data (the lowest value never falls below the
//     lowest tick); all numbers in one format (format_number);
//   - a series has a colour of the palette and may be dashed (a MoE variant
//     takes its dense twin's colour, dashed);
//   - error bars where a spread is given (± one standard deviation);
//   - a line chart marks its points when there are few, and labels the end
//     of each curve with its value; bar labels rotate when they would collide;
//   - a subtitle under the title (machine, threads, date).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace attnlab {

struct ChartStyle {
  int color = -1;  // index into the palette; -1: the series' own index
  bool dashed = false;
};

struct LineSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), in x order
  std::vector<double> spread;                     // ± per point (error bars), or empty
  ChartStyle style = {};
};

struct Bar {
  std::string name;
  double value = 0;
  double spread = 0;  // ± (an error bar), 0: none
  std::string note;   // shown under the value, e.g. "25% of mha"
  ChartStyle style = {};
};

struct ScatterPoint {
  std::string name;
  double x = 0, y = 0;
  double y_spread = 0;  // ± (an error bar), 0: none
  ChartStyle style = {};
};

struct ChartLabels {
  std::string title;
  std::string x_label;                  // with its unit, e.g. "step"
  std::string y_label;                  // e.g. "validation loss (nats/char)"
  std::string subtitle = {};            // under the title: machine, threads, date
  std::optional<double> x_marker = {};  // a dashed vertical line at this x
  bool log2_x = false;                  // x on a log₂ scale (a sweep 4, 8, …, 64)
  std::optional<double> y_min = {};     // the y axis includes these (accuracy: 0 … 1)
  std::optional<double> y_max = {};
};

std::string line_chart_svg(const std::vector<LineSeries>& series, const ChartLabels& labels);
std::string bar_chart_svg(const std::vector<Bar>& bars, const ChartLabels& labels);
std::string scatter_chart_svg(const std::vector<ScatterPoint>& points, const ChartLabels& labels);

// "Nice" tick positions (1, 2 or 5 × 10^k apart, about `count` of them) that
// cover [lo, hi]: the first is ≤ lo and the last ≥ hi.
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

// The one number format of the charts: `significant` digits, with k and M
// suffixes from 1000 up (9186.2 → "9.19k", 10363.5 → "10.4k", 1.6834 → "1.68").
std::string format_number(double v, int significant = 3);

// A value with its spread, both in the value's unit and to the same decimals
// (enough to show the spread's first digit): 2848 ± 7 → "2.848k ± 0.007k",
// 11997 ± 255 → "12.0k ± 0.3k", 0.953 ± 0.021 → "0.95 ± 0.02".
std::string format_with_spread(double value, double spread, int significant = 3);

// Text made safe inside an XML element or a quoted attribute (& < > ").
std::string xml_escape(std::string_view text);

}  // namespace attnlab
