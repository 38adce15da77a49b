#include "attnlab/train/svg_chart.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnlab {
namespace {

constexpr double kWidth = 720, kHeight = 420;  // attnlab plot nests charts by this size
constexpr double kLeft = 80, kRight = 190, kTop = 58, kBottom = 62;  // margins
constexpr double kLabelGap = 14;  // least vertical distance between two labels, px
// A palette that stays distinct for the colour-blind (Okabe–Ito), strong
// colours first (yellow, the faintest on white, is left out).
const char* kColors[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                         "#CC79A7", "#56B4E9", "#000000", "#999999"};

const char* color_of(const ChartStyle& style, size_t index) {
  const size_t i = style.color >= 0 ? static_cast<size_t>(style.color) : index;
  return kColors[i % std::size(kColors)];
}
std::string dash_of(const ChartStyle& style) {
  return style.dashed ? " stroke-dasharray=\"7 4\"" : "";
}

std::string header(const ChartLabels& l, double bottom) {
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      kWidth, kHeight);
  s += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", kWidth, kHeight);
  s += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                   kWidth / 2, xml_escape(l.title));
  if (!l.subtitle.empty())
    s += fmt::format(
        "<text class=\"subtitle\" x=\"{}\" y=\"40\" text-anchor=\"middle\" font-size=\"11\" "
        "fill=\"#555\">{}</text>\n",
        kWidth / 2, xml_escape(l.subtitle));
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                   kLeft + (kWidth - kLeft - kRight) / 2, kHeight - 12, xml_escape(l.x_label));
  s += fmt::format(
      "<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
      "{0})\">{1}</text>\n",
      kTop + (kHeight - kTop - bottom) / 2, xml_escape(l.y_label));
  return s;
}

// A linear mapping of data to pixels.
struct Axis {
  double lo, hi, px_lo, px_hi;
  double operator()(double v) const { return px_lo + (v - lo) / (hi - lo) * (px_hi - px_lo); }
};

// Digits a tick label needs so that neighbouring ticks differ.
std::string tick_label(double v, double step) {
  if (v == 0) return "0";
  const int digits = static_cast<int>(std::floor(std::log10(std::abs(v)))) -
                     static_cast<int>(std::floor(std::log10(step))) + 1;
  return format_number(v, std::max(digits, 1));
}

// The y axis over `ticks` (which cover the data), with gridlines and frame.
std::string y_axis(const Axis& y, const std::vector<double>& ticks, double bottom) {
  std::string s;
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
  for (double t : ticks) {
    s += fmt::format(
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>\n"
        "<text class=\"ytick\" x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        kLeft, kWidth - kRight, y(t), kLeft - 6, y(t) + 4, tick_label(t, step));
  }
  s += fmt::format("<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"black\"/>\n", kLeft,
                   kTop, kHeight - bottom);
  s += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"black\"/>\n", kLeft,
                   kWidth - kRight, kHeight - bottom);
  return s;
}

// A y axis whose ticks cover [lo, hi] and the labels' wishes.
Axis covering_y_axis(double lo, double hi, const ChartLabels& l, double bottom,
                     std::vector<double>* ticks) {
  if (l.y_min) lo = std::min(lo, *l.y_min);
  if (l.y_max) hi = std::max(hi, *l.y_max);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  *ticks = nice_ticks(lo, hi);
  return {ticks->front(), ticks->back(), kHeight - bottom, kTop};
}

std::string error_bar(double x, double y_lo_px, double y_hi_px, const char* color) {
  return fmt::format(
      "<g class=\"errorbar\" stroke=\"{0}\" stroke-width=\"1.5\"><line x1=\"{1:.1f}\" "
      "x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{3:.1f}\"/><line x1=\"{4:.1f}\" x2=\"{5:.1f}\" "
      "y1=\"{2:.1f}\" y2=\"{2:.1f}\"/><line x1=\"{4:.1f}\" x2=\"{5:.1f}\" y1=\"{3:.1f}\" "
      "y2=\"{3:.1f}\"/></g>\n",
      color, x, y_lo_px, y_hi_px, x - 4, x + 4);
}

// Pushes the wanted y positions apart to at least kLabelGap, keeping their
// order and staying inside [top, bottom] where they can.
std::vector<double> spread_labels(const std::vector<double>& wanted, double top, double bottom) {
  std::vector<size_t> order(wanted.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return wanted[a] < wanted[b]; });
  std::vector<double> at(wanted.size());
  double previous = -std::numeric_limits<double>::infinity();
  for (size_t i : order) previous = at[i] = std::max(wanted[i], previous + kLabelGap);
  // Shift the whole stack up if it ran past the bottom.
  const double over = order.empty() ? 0 : at[order.back()] - bottom;
  if (over > 0)
    for (double& v : at) v = std::max(v - over, top);
  return at;
}

double text_width(const std::string& s) {
  return 7.0 * static_cast<double>(s.size());
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
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

std::string format_number(double v, int significant) {
  if (!std::isfinite(v)) return fmt::format("{}", v);
  const double a = std::abs(v);
  // Never fewer digits than the integer part has (50, not 5e+01).
  auto digits = [&](double scaled) {
    const int whole = scaled >= 1 ? static_cast<int>(std::floor(std::log10(scaled))) + 1 : 1;
    return std::max({significant, whole, 1});
  };
  if (a >= 999.5e3) return fmt::format("{:.{}g}M", v / 1e6, digits(a / 1e6));
  if (a >= 999.5) return fmt::format("{:.{}g}k", v / 1e3, digits(a / 1e3));
  return fmt::format("{:.{}g}", v, digits(a));
}

std::string format_with_spread(double value, double spread, int significant) {
  if (!std::isfinite(value) || !std::isfinite(spread)) return fmt::format("{} ± {}", value, spread);
  const double a = std::abs(value);
  const double scale = a >= 999.5e3 ? 1e6 : a >= 999.5 ? 1e3 : 1;
  const char* suffix = scale == 1e6 ? "M" : scale == 1e3 ? "k" : "";
  const double v = value / scale, s = std::abs(spread) / scale;
  const int whole =
      std::abs(v) >= 1 ? static_cast<int>(std::floor(std::log10(std::abs(v)))) + 1 : 1;
  int decimals = std::max(significant - whole, 0);
  if (s > 0) decimals = std::max(decimals, -static_cast<int>(std::floor(std::log10(s))));
  decimals = std::min(decimals, 6);
  return fmt::format("{:.{}f}{} ± {:.{}f}{}", v, decimals, suffix, s, decimals, suffix);
}

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) hi = lo + (lo == 0 ? 1 : std::abs(lo) * 0.1);
  const double raw = (hi - lo) / std::max(count, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  const double first = std::floor(lo / step + 1e-9) * step;
  std::vector<double> ticks;
  for (int64_t i = 0;; ++i) {
    const double t = first + static_cast<double>(i) * step;
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    if (t >= hi - step * 1e-9) break;
  }
  if (ticks.size() < 2) ticks.push_back(ticks.back() + step);
  return ticks;
}

std::string line_chart_svg(const std::vector<LineSeries>& series, const ChartLabels& labels) {
  const double inf = std::numeric_limits<double>::infinity();
  double x_lo = inf, x_hi = -inf, y_lo = inf, y_hi = -inf;
  auto fx = [&](double x) { return labels.log2_x ? std::log2(x) : x; };
  for (const LineSeries& s : series)
    for (size_t i = 0; i < s.points.size(); ++i) {
      const auto [x, y] = s.points[i];
      const double sd = i < s.spread.size() ? s.spread[i] : 0;
      x_lo = std::min(x_lo, fx(x)), x_hi = std::max(x_hi, fx(x));
      y_lo = std::min(y_lo, y - sd), y_hi = std::max(y_hi, y + sd);
    }
  if (labels.x_marker)
    x_lo = std::min(x_lo, fx(*labels.x_marker)), x_hi = std::max(x_hi, fx(*labels.x_marker));
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1;
  if (x_hi == x_lo) x_hi = x_lo + 1;
  std::vector<double> yt;
  const Axis y = covering_y_axis(y_lo, y_hi, labels, kBottom, &yt);
  const Axis x{x_lo, x_hi, kLeft + 8, kWidth - kRight - 8};
  std::string svg = header(labels, kBottom) + y_axis(y, yt, kBottom);
  if (labels.log2_x) {
    for (double e = std::ceil(x_lo - 1e-9); e <= x_hi + 1e-9; e += 1)
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x(e),
                         kHeight - kBottom + 18, format_number(std::exp2(e)));
  } else {
    std::vector<double> xt = nice_ticks(x_lo, x_hi, 6);
    double step = xt[1] - xt[0];
    bool whole = true;  // x takes whole values only (positions, queries): no 2.5
    for (const LineSeries& s : series)
      for (auto [px, py] : s.points) whole = whole && px == std::round(px);
    if (whole && step < 1) {
      step = 1;
      xt.clear();
      for (double t = std::ceil(x_lo); t <= x_hi; t += 1) xt.push_back(t);
    }
    for (double t : xt)
      if (t >= x_lo - step * 1e-9 && t <= x_hi + step * 1e-9)
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x(t),
                           kHeight - kBottom + 18, tick_label(t, step));
  }
  if (labels.x_marker)
    svg += fmt::format(
        "<line class=\"marker\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" "
        "stroke=\"#444\" stroke-dasharray=\"4 4\"/>\n",
        x(fx(*labels.x_marker)), kTop, kHeight - kBottom);
  std::vector<double> end_wanted;
  std::vector<size_t> ended;
  for (size_t i = 0; i < series.size(); ++i) {
    const LineSeries& s = series[i];
    const char* color = color_of(s.style, i);
    std::string points;
    for (auto [px, py] : s.points) points += fmt::format("{:.1f},{:.1f} ", x(fx(px)), y(py));
    svg += fmt::format(
        "<polyline class=\"curve\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"2\"{} points=\"{}\"/>\n",
        xml_escape(s.name), color, dash_of(s.style), points);
    const bool few = s.points.size() <= 16;
    for (size_t p = 0; p < s.points.size(); ++p) {
      const auto [px, py] = s.points[p];
      if (p < s.spread.size() && s.spread[p] > 0)
        svg += error_bar(x(fx(px)), y(py - s.spread[p]), y(py + s.spread[p]), color);
      if (few)
        svg += fmt::format(
            "<circle class=\"point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"/>\n",
            x(fx(px)), y(py), s.style.dashed ? "white" : color);
      if (few && s.style.dashed)
        svg += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"none\" stroke=\"{}\" "
            "stroke-width=\"1.5\"/>\n",
            x(fx(px)), y(py), color);
    }
    if (!s.points.empty()) {
      end_wanted.push_back(y(s.points.back().second) + 4);
      ended.push_back(i);
    }
  }
  // Each curve's end labelled with its name and last value, in the right
  // margin (this is the legend), pushed apart so that no two overlap.
  const std::vector<double> at = spread_labels(end_wanted, kTop, kHeight - kBottom);
  for (size_t k = 0; k < ended.size(); ++k) {
    const LineSeries& s = series[ended[k]];
    const char* color = color_of(s.style, ended[k]);
    const double lx = kWidth - kRight + 6;
    svg += fmt::format(
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"3\"{4}/>\n"
        "<text class=\"endlabel\" x=\"{5}\" y=\"{6:.1f}\">{7} {8}</text>\n",
        lx, lx + 18, at[k] - 4, color, dash_of(s.style), lx + 22, at[k], xml_escape(s.name),
        format_number(s.points.back().second, 4));
  }
  return svg + "</svg>\n";
}

std::string bar_chart_svg(const std::vector<Bar>& bars, const ChartLabels& labels) {
  double lo = 0, hi = 0;
  for (const Bar& b : bars) {
    lo = std::min(lo, b.value - b.spread);
    hi = std::max(hi, b.value + b.spread);
  }
  // Room above the tallest bar for its value and note.
  const double slot =
      (kWidth - kLeft - kRight) / std::max<double>(1, static_cast<double>(bars.size()));
  double widest = 0;
  for (const Bar& b : bars) widest = std::max(widest, text_width(b.name));
  const bool rotate = widest > slot * 0.75;  // less than a quarter of a slot between labels
  const double bottom = rotate ? kBottom + std::min(widest * 0.6, 60.0) : kBottom;
  std::vector<double> yt;
  Axis y = covering_y_axis(lo, hi > 0 ? hi : 1, labels, bottom, &yt);
  // The value labels need about 34 px above the tallest bar.
  if (y(hi) - kTop < 34 && hi > 0) y = covering_y_axis(lo, hi * 1.15, labels, bottom, &yt);
  std::string svg = header(labels, bottom) + y_axis(y, yt, bottom);
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const char* color = color_of(b.style, i);
    const double x0 = kLeft + slot * (static_cast<double>(i) + 0.15), w = slot * 0.7;
    const double top = y(std::max(b.value, 0.0)), base = y(std::min(b.value, 0.0));
    svg += fmt::format(
        "<rect class=\"bar\" data-series=\"{0}\" x=\"{1:.1f}\" y=\"{2:.1f}\" width=\"{3:.1f}\" "
        "height=\"{4:.1f}\" fill=\"{5}\"{6}/>\n",
        xml_escape(b.name), x0, top, w, base - top, color,
        b.style.dashed ? fmt::format(" fill-opacity=\"0.35\" stroke=\"{}\" stroke-width=\"2\" "
                                     "stroke-dasharray=\"6 3\"",
                                     color)
                       : "");
    const double cx = x0 + w / 2;
    double label_y = top - 5;
    if (b.spread > 0) {
      svg += error_bar(cx, y(b.value - b.spread), y(b.value + b.spread), "#333");
      label_y = std::min(label_y, y(b.value + b.spread) - 5);
    }
    const std::string value =
        b.spread > 0 ? format_with_spread(b.value, b.spread) : format_number(b.value);
    svg += fmt::format(
        "<text class=\"value\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", cx,
        label_y, xml_escape(value));
    if (!b.note.empty())
      svg += fmt::format(
          "<text class=\"note\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" "
          "font-size=\"11\" fill=\"#555\">{}</text>\n",
          cx, label_y - 14, xml_escape(b.note));
    const double ly = kHeight - bottom + 16;
    if (rotate)
      svg += fmt::format(
          "<text class=\"xlabel\" x=\"{0:.1f}\" y=\"{1:.1f}\" text-anchor=\"end\" "
          "transform=\"rotate(-35 {0:.1f} {1:.1f})\">{2}</text>\n",
          cx + 4, ly, xml_escape(b.name));
    else
      svg += fmt::format(
          "<text class=\"xlabel\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", cx,
          ly, xml_escape(b.name));
  }
  return svg + "</svg>\n";
}

std::string scatter_chart_svg(const std::vector<ScatterPoint>& points, const ChartLabels& labels) {
  const double inf = std::numeric_limits<double>::infinity();
  double x_lo = inf, x_hi = -inf, y_lo = inf, y_hi = -inf;
  for (const ScatterPoint& p : points) {
    x_lo = std::min(x_lo, p.x), x_hi = std::max(x_hi, p.x);
    y_lo = std::min(y_lo, p.y - p.y_spread), y_hi = std::max(y_hi, p.y + p.y_spread);
  }
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1;
  std::vector<double> yt;
  const Axis y = covering_y_axis(y_lo, y_hi, labels, kBottom, &yt);
  const std::vector<double> xt = nice_ticks(std::min(0.0, x_lo), x_hi, 6);
  const Axis x{xt.front(), xt.back(), kLeft + 8, kWidth - kRight - 8};
  std::string svg = header(labels, kBottom) + y_axis(y, yt, kBottom);
  for (double t : xt)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x(t),
                       kHeight - kBottom + 18, tick_label(t, xt[1] - xt[0]));
  // Labels right of their point; points whose labels would run into each
  // other (a variant and its MoE twin share an x; a label is wider than the
  // gap to the next point) get their labels pushed apart vertically.
  std::vector<double> wanted;
  std::vector<std::string> texts;
  for (const ScatterPoint& p : points) {
    wanted.push_back(y(p.y) + 4);
    texts.push_back(fmt::format("{} ({})", p.name, format_number(p.y, 4)));
  }
  auto label_width = [&](size_t i) {  // from the point's centre to past the next one's edge
    return 10.0 + text_width(texts[i]) + 8.0;
  };
  std::vector<double> at(points.size());
  std::vector<bool> placed(points.size(), false);
  for (size_t i = 0; i < points.size(); ++i) {
    if (placed[i]) continue;
    std::vector<size_t> group;
    for (size_t j = i; j < points.size(); ++j) {
      const double gap = std::abs(x(points[j].x) - x(points[i].x));
      if (!placed[j] && gap < std::max({60.0, label_width(i), label_width(j)})) group.push_back(j);
    }
    std::vector<double> w;
    for (size_t j : group) w.push_back(wanted[j]);
    const std::vector<double> spread = spread_labels(w, kTop, kHeight - kBottom);
    for (size_t k = 0; k < group.size(); ++k) at[group[k]] = spread[k], placed[group[k]] = true;
  }
  for (size_t i = 0; i < points.size(); ++i) {
    const ScatterPoint& p = points[i];
    const char* color = color_of(p.style, i);
    if (p.y_spread > 0) svg += error_bar(x(p.x), y(p.y - p.y_spread), y(p.y + p.y_spread), color);
    svg += fmt::format(
        "<circle class=\"point\" data-series=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"6\" "
        "fill=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n",
        xml_escape(p.name), x(p.x), y(p.y), p.style.dashed ? "white" : color, color,
        dash_of(p.style));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"{}\">{}</text>\n", x(p.x) + 10,
                       at[i], color, xml_escape(texts[i]));
  }
  return svg + "</svg>\n";
}

}  // namespace attnlab
