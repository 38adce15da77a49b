#include "attnlab/train/svg_chart.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnlab {
namespace {

constexpr double kWidth = 720, kHeight = 420;
constexpr double kLeft = 80, kRight = 170, kTop = 40, kBottom = 60;  // margins
// A palette that stays distinct for the colour-blind (Okabe–Ito).
const char* kColors[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                         "#CC79A7", "#56B4E9", "#F0E442", "#000000"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

std::string header(const ChartLabels& l) {
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      kWidth, kHeight);
  s += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", kWidth, kHeight);
  s += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                   kWidth / 2, escape(l.title));
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                   kLeft + (kWidth - kLeft - kRight) / 2, kHeight - 15, escape(l.x_label));
  s += fmt::format(
      "<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
      "{0})\">{1}</text>\n",
      kTop + (kHeight - kTop - kBottom) / 2, escape(l.y_label));
  return s;
}

// The y axis with gridlines; returns the mapping y → pixel.
struct Axis {
  double lo, hi, px_lo, px_hi;
  double operator()(double v) const { return px_lo + (v - lo) / (hi - lo) * (px_hi - px_lo); }
};

std::string y_axis(const Axis& y, const std::vector<double>& ticks) {
  std::string s;
  for (double t : ticks) {
    s += fmt::format(
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        kLeft, kWidth - kRight, y(t), kLeft - 6, y(t) + 4, tick_label(t));
  }
  s += fmt::format("<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"black\"/>\n", kLeft,
                   kTop, kHeight - kBottom);
  s += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"black\"/>\n", kLeft,
                   kWidth - kRight, kHeight - kBottom);
  return s;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(count, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string line_chart_svg(const std::vector<LineSeries>& series, const ChartLabels& labels) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const LineSeries& s : series)
    for (auto [x, y] : s.points) {
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (x_hi == x_lo) x_hi = x_lo + 1;
  const double pad = (y_hi - y_lo) * 0.05 + 1e-9;
  const std::vector<double> yt = nice_ticks(y_lo - pad, y_hi + pad);
  const Axis y{std::min(yt.front(), y_lo - pad), std::max(yt.back(), y_hi + pad), kHeight - kBottom,
               kTop};
  const Axis x{x_lo, x_hi, kLeft, kWidth - kRight};
  std::string svg = header(labels) + y_axis(y, yt);
  for (double t : nice_ticks(x_lo, x_hi, 6))
    if (t >= x_lo && t <= x_hi)
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x(t),
                         kHeight - kBottom + 18, tick_label(t));
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % std::size(kColors)];
    std::string points;
    for (auto [px, py] : series[i].points) points += fmt::format("{:.1f},{:.1f} ", x(px), y(py));
    svg += fmt::format(
        "<polyline class=\"curve\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"2\" points=\"{}\"/>\n",
        escape(series[i].name), color, points);
    if (labels.label_ends && !series[i].points.empty()) {
      const auto [ex, ey] = series[i].points.back();
      svg += fmt::format(
          "<text class=\"end-value\" x=\"{:.1f}\" y=\"{:.1f}\" fill=\"{}\" "
          "font-size=\"11\">{:.4g}</text>\n",
          x(ex) + 4, y(ey) + 4, color, ey);
    }
    const double ly = kTop + 10 + 20.0 * static_cast<double>(i);
    svg += fmt::format(
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"3\"/>\n"
        "<text x=\"{4}\" y=\"{5}\">{6}</text>\n",
        kWidth - kRight + 15, kWidth - kRight + 40, ly, color, kWidth - kRight + 46, ly + 4,
        escape(series[i].name));
  }
  return svg + "</svg>\n";
}

std::string bar_chart_svg(const std::vector<std::pair<std::string, double>>& bars,
                          const ChartLabels& labels) {
  double hi = 0;
  for (const auto& [name, v] : bars) hi = std::max(hi, v);
  const std::vector<double> yt = nice_ticks(0, hi > 0 ? hi * 1.05 : 1);
  const Axis y{0, std::max(yt.back(), hi * 1.05), kHeight - kBottom, kTop};
  std::string svg = header(labels) + y_axis(y, yt);
  const double slot = (kWidth - kLeft - kRight) / std::max<double>(1, bars.size());
  for (size_t i = 0; i < bars.size(); ++i) {
    const double x0 = kLeft + slot * (static_cast<double>(i) + 0.15), w = slot * 0.7;
    const double top = y(bars[i].second);
    svg += fmt::format(
        "<rect class=\"bar\" data-series=\"{0}\" x=\"{1:.1f}\" y=\"{2:.1f}\" width=\"{3:.1f}\" "
        "height=\"{4:.1f}\" fill=\"{5}\"/>\n"
        "<text x=\"{6:.1f}\" y=\"{7:.1f}\" text-anchor=\"middle\">{8}</text>\n"
        "<text x=\"{6:.1f}\" y=\"{9}\" text-anchor=\"middle\">{0}</text>\n",
        escape(bars[i].first), x0, top, w, kHeight - kBottom - top, kColors[i % std::size(kColors)],
        x0 + w / 2, top - 5, tick_label(std::round(bars[i].second * 10) / 10),
        kHeight - kBottom + 18);
  }
  return svg + "</svg>\n";
}

}  // namespace attnlab
