#include "sessions/report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "base/errors.h"
#include "sessions/report/text.h"

namespace kvwb::sessions::report {

namespace {

constexpr double kTickFont = 10;
constexpr double kLabelFont = 11;
constexpr double kTitleFont = 13;
constexpr double kLegendFont = 10;
constexpr double kLegendRow = 15;
constexpr const char* kGrid = "#e4e4e4";
constexpr const char* kMinorGrid = "#f1f1f1";
constexpr const char* kFrame = "#8c8c8c";
constexpr const char* kInk = "#222222";

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

struct Counts {
  size_t nonfinite = 0, x_nonpos = 0, y_nonpos = 0;
};

/// The data ranges of a figure and what could not be shown.
struct Ranges {
  double xlo = std::numeric_limits<double>::infinity(),
         xhi = -std::numeric_limits<double>::infinity();
  double ylo = std::numeric_limits<double>::infinity(),
         yhi = -std::numeric_limits<double>::infinity();
  bool any_x = false, any_y = false;
  Counts dropped;
  double bar_spacing = 0;  // smallest gap between distinct bar x (data units), 0 = no bars
  void add_x(double v) { xlo = std::min(xlo, v), xhi = std::max(xhi, v), any_x = true; }
  void add_y(double v) { ylo = std::min(ylo, v), yhi = std::max(yhi, v), any_y = true; }
  /// A reference line at `v` across the x axis (`on_x`) or the y axis: in the range when it can
  /// be drawn on that axis (`log` scale or not), else counted as dropped.
  void add_line(double v, bool on_x, bool log) {
    if (usable(v, log))
      on_x ? add_x(v) : add_y(v);
    else if (std::isfinite(v))
      ++(on_x ? dropped.x_nonpos : dropped.y_nonpos);
    else
      ++dropped.nonfinite;
  }
};

Ranges data_ranges(const Figure& f) {
  Ranges r;
  std::set<double> bar_x;
  bool bars_linear_base = false;
  for (const auto& s : f.series) {
    switch (s.kind) {
      case SeriesKind::kVLines:
        for (double x : s.x) r.add_line(x, true, f.x.log);
        break;
      case SeriesKind::kHLines:
        for (double y : s.y) r.add_line(y, false, f.y.log);
        break;
      default: {
        const size_t n = std::min(s.x.size(), s.y.size());
        for (size_t i = 0; i < n; ++i) {
          const double x = s.x[i], y = s.y[i];
          if (!std::isfinite(x) || !std::isfinite(y)) {
            ++r.dropped.nonfinite;
            continue;
          }
          if (f.x.log && x <= 0) {
            ++r.dropped.x_nonpos;
            continue;
          }
          if (f.y.log && y <= 0) {
            ++r.dropped.y_nonpos;
            continue;
          }
          r.add_x(x), r.add_y(y);
          if (s.kind == SeriesKind::kBars) bar_x.insert(x), bars_linear_base = !f.y.log;
          if (s.kind == SeriesKind::kScatter) {
            if (i < s.y_lo.size() && usable(s.y_lo[i], f.y.log)) r.add_y(s.y_lo[i]);
            if (i < s.y_hi.size() && usable(s.y_hi[i], f.y.log)) r.add_y(s.y_hi[i]);
          }
        }
      }
    }
  }
  if (!bar_x.empty()) {
    double gap = 0;
    for (auto it = std::next(bar_x.begin()); it != bar_x.end(); ++it) {
      const double d = *it - *std::prev(it);
      if (gap == 0 || d < gap) gap = d;
    }
    r.bar_spacing = gap > 0 ? gap : 1.0;
    if (!f.x.log)
      r.add_x(*bar_x.begin() - r.bar_spacing / 2), r.add_x(*bar_x.rbegin() + r.bar_spacing / 2);
    if (bars_linear_base) r.add_y(0.0);
  }
  return r;
}

/// Layout of a figure: the plot rectangle, the axes' ticks, the legend.
struct LegendItem {
  size_t series = 0;
  double x = 0, y = 0;  // top-left of the item
};
struct Layout {
  bool empty = false;
  double px = 0, py = 0, pw = 0, ph = 0;  // plot rectangle
  Ticks xt, yt;
  std::vector<LegendItem> legend;
  double total_h = 0;
  double bar_spacing = 0;
};

Layout layout_figure(const Figure& f) {
  Layout L;
  Ranges r = data_ranges(f);
  L.bar_spacing = r.bar_spacing;
  if (!r.any_x && !r.any_y) L.empty = true;
  // Axis ranges: the data, a fixed end when given, a unit range when there is nothing.
  auto axis_ticks = [&r](const Axis& a, bool any, double lo, double hi) {
    if (!any) lo = a.log ? 1 : 0, hi = a.log ? 10 : 1;
    if (a.min && usable(*a.min, a.log)) lo = *a.min;
    if (a.max && usable(*a.max, a.log)) hi = *a.max;
    if (hi < lo) std::swap(lo, hi);
    if (a.integer && !a.log && any) {
      // Index axes (layers): half a step of room at the ends, ticks on integers only.
      const double pad = r.bar_spacing > 0 ? 0.0 : 0.5;
      if (!a.min) lo -= pad;
      if (!a.max) hi += pad;
      return linear_ticks(lo, hi, true, true, true);
    }
    if (!a.log && any && hi > lo) {
      // Room for markers at the data's ends before rounding to whole steps.
      const double pad = 0.02 * (hi - lo);
      if (!a.min) lo -= pad;
      if (!a.max) hi += pad;
    }
    return a.log ? log_ticks(lo, hi, a.min.has_value(), a.max.has_value())
                 : linear_ticks(lo, hi, a.integer, a.min.has_value(), a.max.has_value());
  };
  L.xt = axis_ticks(f.x, r.any_x, r.xlo, r.xhi);
  L.yt = axis_ticks(f.y, r.any_y, r.ylo, r.yhi);

  double ylab_w = 0;
  for (const auto& s : L.yt.labels)
    ylab_w = std::max(ylab_w, text_width(s, kTickFont, FontFace::kSans));
  const double top = f.title.empty() ? 10 : 30;
  const double left = (f.y.label.empty() ? 6 : 22) + ylab_w + 8;
  const double bottom = 22 + (f.x.label.empty() ? 0 : 16);
  double right = 16;
  if (!L.xt.labels.empty())
    right = std::max(right, text_width(L.xt.labels.back(), kTickFont, FontFace::kSans) / 2 + 4);
  L.px = left, L.py = top;
  L.pw = std::max(40.0, f.width - left - right);
  L.ph = std::max(40.0, f.height - top - bottom);

  // Legend rows below the plot.
  const double block_h = std::max(f.height, L.py + L.ph + bottom);
  const double legend_top = block_h + 2;
  double x = L.px, y = legend_top;
  bool any = false;
  for (size_t i = 0; i < f.series.size(); ++i) {
    if (f.series[i].name.empty()) continue;
    const double w = 26 + text_width(f.series[i].name, kLegendFont, FontFace::kSans) + 14;
    if (any && x + w > f.width - 8) x = L.px, y += kLegendRow;
    L.legend.push_back({i, x, y});
    x += w;
    any = true;
  }
  L.total_h = any ? y + kLegendRow + 4 : block_h;
  return L;
}

double tmap(double v, bool log) { return log ? std::log10(v) : v; }

struct Mapper {
  const Layout& L;
  bool xlog, ylog;
  double X(double v) const {
    const double a = tmap(L.xt.lo, xlog), b = tmap(L.xt.hi, xlog);
    return L.px + (tmap(v, xlog) - a) / (b - a) * L.pw;
  }
  double Y(double v) const {
    const double a = tmap(L.yt.lo, ylog), b = tmap(L.yt.hi, ylog);
    return L.py + L.ph - (tmap(v, ylog) - a) / (b - a) * L.ph;
  }
};

void draw_marker(Canvas& c, double x, double y, const std::string& color) {
  Stroke white{"#ffffff", 0.8, false};
  c.circle(x, y, 3.2, color, &white);
}

void draw_swatch(Canvas& c, const Series& s, const std::string& color, double x, double y) {
  const double mid = y + kLegendRow / 2 - 1;
  switch (s.kind) {
    case SeriesKind::kBars:
      c.rect(x + 4, mid - 5, 14, 10, color, nullptr);
      break;
    case SeriesKind::kScatter:
      draw_marker(c, x + 11, mid, color);
      break;
    case SeriesKind::kVLines:
      c.line(x + 11, mid - 6, x + 11, mid + 6, Stroke{color, s.line_width, s.dashed});
      break;
    default:
      c.line(x, mid, x + 22, mid, Stroke{color, s.line_width, s.dashed});
      if (s.markers) draw_marker(c, x + 11, mid, color);
  }
}

std::string trim_number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  std::string s = b;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

}  // namespace

std::string palette_color(size_t index) {
  static const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kPalette[index % 10];
}

std::string tick_label(double v, double step, bool log) {
  if (v == 0) return "0";
  if (log) {
    const double e = std::round(std::log10(v));
    const bool decade = std::fabs(v - std::pow(10.0, e)) <= 1e-9 * v;
    if (decade && (e < -3 || e > 4)) return "1e" + std::to_string(static_cast<int>(e));
    if (v < 1e-3 || v >= 1e5) {
      char b[32];
      std::snprintf(b, sizeof b, "%.0e", v);
      std::string s = b;  // "2e-05" -> "2e-5"
      const auto p = s.find('e');
      std::string mant = s.substr(0, p), ex = s.substr(p + 1);
      const bool neg = ex[0] == '-';
      ex = ex.substr(1);
      while (ex.size() > 1 && ex[0] == '0') ex.erase(0, 1);
      return mant + "e" + (neg ? "-" : "") + ex;
    }
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
  }
  const double mag = std::fabs(v);
  if (step >= 1 && mag < 1e12) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
  }
  if (mag >= 1e6 || (mag < 1e-4)) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3g", v);
    return b;
  }
  int decimals = step > 0 ? std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9))) : 3;
  // Steps like 0.25 need one more decimal than their magnitude suggests.
  const double scaled = step * std::pow(10.0, decimals);
  if (std::fabs(scaled - std::round(scaled)) > 1e-6) ++decimals;
  decimals = std::min(decimals, 8);
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  std::string s = b;
  if (s == "-0" || s.find_first_not_of("-0.") == std::string::npos) s = "0";
  return s;
}

Ticks linear_ticks(double lo, double hi, bool integer, bool fixed_lo, bool fixed_hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    if (!fixed_lo) lo -= pad;
    if (!fixed_hi) hi += pad;
    if (hi == lo) hi = lo + 1;
  }
  const double raw = (hi - lo) / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = std::max(1.0, std::round(step));
  Ticks t;
  t.lo = fixed_lo ? lo : std::floor(lo / step + 1e-9) * step;
  t.hi = fixed_hi ? hi : std::ceil(hi / step - 1e-9) * step;
  if (t.hi <= t.lo) t.hi = t.lo + step;
  const double first = std::ceil(t.lo / step - 1e-9) * step;
  for (int i = 0; i < 1000; ++i) {
    double v = first + i * step;
    if (v > t.hi + step * 1e-9) break;
    if (std::fabs(v) < step * 1e-9) v = 0;
    t.major.push_back(v);
    t.labels.push_back(tick_label(v, step, false));
  }
  return t;
}

Ticks log_ticks(double lo, double hi, bool fixed_lo, bool fixed_hi) {
  if (!(lo > 0) || !std::isfinite(lo)) lo = 1;
  if (!(hi > 0) || !std::isfinite(hi)) hi = lo * 10;
  if (hi < lo) std::swap(lo, hi);
  int e0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int e1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (e1 <= e0) e1 = e0 + 1;
  Ticks t;
  t.lo = fixed_lo ? lo : std::pow(10.0, e0);
  t.hi = fixed_hi ? hi : std::pow(10.0, e1);
  const int decades = e1 - e0;
  const int every = std::max(1, (decades + 6) / 7);
  auto inside = [&](double v) { return v >= t.lo * (1 - 1e-9) && v <= t.hi * (1 + 1e-9); };
  for (int e = e0; e <= e1; ++e) {
    const double d = std::pow(10.0, e);
    if (inside(d)) {
      if ((e - e0) % every == 0) {
        t.major.push_back(d);
        t.labels.push_back(tick_label(d, 0, true));
      } else {
        t.minor.push_back(d);
      }
    }
    if (decades <= 6)
      for (int m = 2; m <= 9; ++m) {
        const double v = m * d;
        if (!inside(v)) continue;
        if (decades <= 2 && (m == 2 || m == 5)) {
          t.major.push_back(v);
          t.labels.push_back(tick_label(v, 0, true));
        } else {
          t.minor.push_back(v);
        }
      }
  }
  // Sort majors with their labels (2 and 5 were appended after the decade).
  std::vector<std::pair<double, std::string>> m;
  for (size_t i = 0; i < t.major.size(); ++i) m.emplace_back(t.major[i], t.labels[i]);
  std::sort(m.begin(), m.end());
  t.major.clear(), t.labels.clear();
  for (auto& [v, s] : m) t.major.push_back(v), t.labels.push_back(std::move(s));
  // A fixed range inside one decade may hold no power of ten: label its ends.
  if (t.major.empty()) {
    t.major = {t.lo, t.hi};
    t.labels = {tick_label(t.lo, 0, true), tick_label(t.hi, 0, true)};
  }
  return t;
}

double figure_total_height(const Figure& f) { return layout_figure(f).total_h; }

std::vector<std::string> figure_notes(const Figure& f) {
  const Ranges r = data_ranges(f);
  std::vector<std::string> notes;
  if (r.dropped.y_nonpos)
    notes.push_back(std::to_string(r.dropped.y_nonpos) +
                    (r.dropped.y_nonpos == 1 ? " value" : " values") +
                    " <= 0 not shown on the log y axis");
  if (r.dropped.x_nonpos)
    notes.push_back(std::to_string(r.dropped.x_nonpos) +
                    (r.dropped.x_nonpos == 1 ? " value" : " values") +
                    " <= 0 not shown on the log x axis");
  if (r.dropped.nonfinite)
    notes.push_back(std::to_string(r.dropped.nonfinite) +
                    (r.dropped.nonfinite == 1 ? " point" : " points") +
                    " without a finite value (n/a) not shown");
  return notes;
}

void draw_figure(const Figure& f, Canvas& c) {
  const Layout L = layout_figure(f);
  const Mapper M{L, f.x.log, f.y.log};
  c.rect(0, 0, f.width, L.total_h, "#ffffff", nullptr);
  if (!f.title.empty())
    c.text(f.width / 2, 19, f.title, kTitleFont, TextAnchor::kMiddle, true, kInk);

  // Grid, frame, ticks.
  const double bottom = L.py + L.ph, right = L.px + L.pw;
  for (double v : L.yt.minor) c.line(L.px, M.Y(v), right, M.Y(v), Stroke{kMinorGrid, 0.6, false});
  for (double v : L.xt.minor) c.line(M.X(v), L.py, M.X(v), bottom, Stroke{kMinorGrid, 0.6, false});
  for (double v : L.yt.major) c.line(L.px, M.Y(v), right, M.Y(v), Stroke{kGrid, 0.8, false});
  for (double v : L.xt.major) c.line(M.X(v), L.py, M.X(v), bottom, Stroke{kGrid, 0.8, false});
  Stroke frame{kFrame, 0.9, false};
  c.rect(L.px, L.py, L.pw, L.ph, "", &frame);
  for (size_t i = 0; i < L.yt.major.size(); ++i) {
    const double y = M.Y(L.yt.major[i]);
    c.line(L.px - 4, y, L.px, y, frame);
    c.text(L.px - 6, y + 3.5, L.yt.labels[i], kTickFont, TextAnchor::kEnd, false, kInk);
  }
  for (size_t i = 0; i < L.xt.major.size(); ++i) {
    const double x = M.X(L.xt.major[i]);
    c.line(x, bottom, x, bottom + 4, frame);
    c.text(x, bottom + 15, L.xt.labels[i], kTickFont, TextAnchor::kMiddle, false, kInk);
  }
  if (!f.x.label.empty())
    c.text(L.px + L.pw / 2, bottom + 32, f.x.label, kLabelFont, TextAnchor::kMiddle, false, kInk);
  if (!f.y.label.empty())
    c.text(13, L.py + L.ph / 2, f.y.label, kLabelFont, TextAnchor::kMiddle, false, kInk, true);

  if (L.empty) {
    c.text(L.px + L.pw / 2, L.py + L.ph / 2, f.empty_text, 12, TextAnchor::kMiddle, false,
           "#777777");
    return;
  }

  // Series, clipped to the plot.
  size_t n_bars = 0;
  for (const auto& s : f.series) n_bars += s.kind == SeriesKind::kBars;
  size_t bar_index = 0;
  struct PendingLabel {
    double x, y;
    std::string text;
  };
  std::vector<PendingLabel> labels;
  c.push_clip(L.px, L.py, L.pw, L.ph);
  for (size_t si = 0; si < f.series.size(); ++si) {
    const Series& s = f.series[si];
    const std::string color = s.color.empty() ? palette_color(si) : s.color;
    const Stroke stroke{color, s.line_width, s.dashed};
    const size_t n = std::min(s.x.size(), s.y.size());
    auto ok = [&](size_t i) { return usable(s.x[i], f.x.log) && usable(s.y[i], f.y.log); };
    switch (s.kind) {
      case SeriesKind::kLine: {
        std::vector<std::pair<double, double>> run;
        for (size_t i = 0; i <= n; ++i) {
          if (i < n && ok(i)) {
            run.emplace_back(M.X(s.x[i]), M.Y(s.y[i]));
            continue;
          }
          if (run.size() >= 2) c.polyline(run, stroke);
          if (s.markers || run.size() == 1)
            for (const auto& [x, y] : run) draw_marker(c, x, y, color);
          run.clear();
        }
        break;
      }
      case SeriesKind::kScatter:
        for (size_t i = 0; i < n; ++i) {
          if (!ok(i)) continue;
          const double x = M.X(s.x[i]);
          const bool has_lo = i < s.y_lo.size() && usable(s.y_lo[i], f.y.log);
          const bool has_hi = i < s.y_hi.size() && usable(s.y_hi[i], f.y.log);
          if (has_lo || has_hi) {
            const double y0 = M.Y(has_lo ? s.y_lo[i] : s.y[i]),
                         y1 = M.Y(has_hi ? s.y_hi[i] : s.y[i]);
            const Stroke eb{color, 1.0, false};
            c.line(x, y0, x, y1, eb);
            if (has_lo) c.line(x - 3, y0, x + 3, y0, eb);
            if (has_hi) c.line(x - 3, y1, x + 3, y1, eb);
          }
        }
        for (size_t i = 0; i < n; ++i) {
          if (!ok(i)) continue;
          const double x = M.X(s.x[i]), y = M.Y(s.y[i]);
          draw_marker(c, x, y, color);
          if (i < s.labels.size() && !s.labels[i].empty())
            labels.push_back({x + 5, y - 5, s.labels[i]});
        }
        break;
      case SeriesKind::kBars: {
        const double spacing_px = f.x.log ? 18.0 : std::fabs(M.X(L.bar_spacing) - M.X(0.0));
        const double group = std::max(2.0, 0.8 * spacing_px);
        const double bw = group / static_cast<double>(std::max<size_t>(n_bars, 1));
        double base;
        if (f.y.log)
          base = bottom;
        else
          base = std::clamp(M.Y(0.0), L.py, bottom);
        for (size_t i = 0; i < n; ++i) {
          if (!ok(i)) continue;
          const double left = M.X(s.x[i]) - group / 2 + bar_index * bw;
          const double top = M.Y(s.y[i]);
          c.rect(left, std::min(top, base), std::max(0.5, bw - 0.8), std::fabs(base - top), color,
                 nullptr);
        }
        ++bar_index;
        break;
      }
      case SeriesKind::kVLines:
        for (double x : s.x)
          if (usable(x, f.x.log)) c.line(M.X(x), L.py, M.X(x), bottom, stroke);
        break;
      case SeriesKind::kHLines:
        for (double y : s.y)
          if (usable(y, f.y.log)) c.line(L.px, M.Y(y), right, M.Y(y), stroke);
        break;
    }
  }
  c.pop_clip();
  for (const auto& l : labels)
    if (l.x - 5 >= L.px - 0.5 && l.x - 5 <= right + 0.5 && l.y + 5 >= L.py - 0.5 &&
        l.y + 5 <= bottom + 0.5)
      c.text(l.x, l.y, l.text, 9, TextAnchor::kStart, false, "#444444");

  for (const auto& item : L.legend) {
    const Series& s = f.series[item.series];
    const std::string color = s.color.empty() ? palette_color(item.series) : s.color;
    draw_swatch(c, s, color, item.x, item.y);
    c.text(item.x + 26, item.y + kLegendRow / 2 + 2.5, s.name, kLegendFont, TextAnchor::kStart,
           false, kInk);
  }
}

// ---- SVG ----

namespace {

class SvgCanvas : public Canvas {
 public:
  explicit SvgCanvas(std::string id) : id_(std::move(id)) {}
  std::string body;

  void line(double x1, double y1, double x2, double y2, const Stroke& s) override {
    body += "<line x1=\"" + trim_number(x1) + "\" y1=\"" + trim_number(y1) + "\" x2=\"" +
            trim_number(x2) + "\" y2=\"" + trim_number(y2) + "\"" + stroke_attr(s) + "/>\n";
  }
  void polyline(const std::vector<std::pair<double, double>>& pts, const Stroke& s) override {
    body += "<polyline fill=\"none\" stroke-linejoin=\"round\" points=\"";
    for (size_t i = 0; i < pts.size(); ++i)
      body.append(i ? " " : "")
          .append(trim_number(pts[i].first))
          .append(",")
          .append(trim_number(pts[i].second));
    body += "\"" + stroke_attr(s) + "/>\n";
  }
  void rect(double x, double y, double w, double h, const std::string& fill,
            const Stroke* s) override {
    body += "<rect x=\"" + trim_number(x) + "\" y=\"" + trim_number(y) + "\" width=\"" +
            trim_number(w) + "\" height=\"" + trim_number(h) + "\" fill=\"" +
            (fill.empty() ? "none" : xml_escape(fill)) + "\"" +
            (s ? stroke_attr(*s) : std::string()) + "/>\n";
  }
  void circle(double cx, double cy, double r, const std::string& fill, const Stroke* s) override {
    body += "<circle cx=\"" + trim_number(cx) + "\" cy=\"" + trim_number(cy) + "\" r=\"" +
            trim_number(r) + "\" fill=\"" + (fill.empty() ? "none" : xml_escape(fill)) + "\"" +
            (s ? stroke_attr(*s) : std::string()) + "/>\n";
  }
  void text(double x, double y, std::string_view utf8, double size, TextAnchor anchor, bool bold,
            const std::string& color, bool vertical) override {
    body += "<text x=\"" + trim_number(x) + "\" y=\"" + trim_number(y) + "\" font-size=\"" +
            trim_number(size) + "\"";
    if (anchor == TextAnchor::kMiddle) body += " text-anchor=\"middle\"";
    if (anchor == TextAnchor::kEnd) body += " text-anchor=\"end\"";
    if (bold) body += " font-weight=\"bold\"";
    body += " fill=\"" + xml_escape(color) + "\"";
    if (vertical)
      body += " transform=\"rotate(-90 " + trim_number(x) + " " + trim_number(y) + ")\"";
    body += ">" + xml_escape(utf8) + "</text>\n";
  }
  void push_clip(double x, double y, double w, double h) override {
    const std::string cid = id_ + "-clip" + std::to_string(clips_++);
    body += "<clipPath id=\"" + cid + "\"><rect x=\"" + trim_number(x) + "\" y=\"" +
            trim_number(y) + "\" width=\"" + trim_number(w) + "\" height=\"" + trim_number(h) +
            "\"/></clipPath>\n<g clip-path=\"url(#" + cid + ")\">\n";
  }
  void pop_clip() override { body += "</g>\n"; }

 private:
  static std::string stroke_attr(const Stroke& s) {
    std::string a =
        " stroke=\"" + xml_escape(s.color) + "\" stroke-width=\"" + trim_number(s.width) + "\"";
    if (s.dashed) a += " stroke-dasharray=\"5 3\"";
    return a;
  }
  std::string id_;
  int clips_ = 0;
};

}  // namespace

std::string figure_to_svg(const Figure& f, const std::string& id) {
  if (id.empty() ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
          std::string::npos)
    throw InvalidArgument("figure_to_svg: id '" + id + "' must be [A-Za-z0-9_-]+");
  SvgCanvas c(id);
  draw_figure(f, c);
  const double h = figure_total_height(f);
  const std::string w = trim_number(f.width), hs = trim_number(h);
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"" + id + "\" width=\"" + w +
                    "\" height=\"" + hs + "\" viewBox=\"0 0 " + w + " " + hs +
                    "\" font-family=\"Helvetica, Arial, 'Liberation Sans', sans-serif\" "
                    "role=\"img\" aria-label=\"" +
                    xml_escape(f.title.empty() ? std::string("chart") : f.title) + "\">\n<title>" +
                    xml_escape(f.title.empty() ? std::string("chart") : f.title) + "</title>\n";
  out += c.body;
  out += "</svg>";
  return out;
}

}  // namespace kvwb::sessions::report
