#pragma once
// A small plotting helper for the report: a Figure (title, two axes, named series) is laid out
// once and drawn on a Canvas, which the SVG writer (here) and the PDF writer (pdf.h) implement,
// so the HTML's inline SVG and the PDF page show the same chart. Axes: linear (1-2-5 ticks,
// integer ticks for layer indices) or log10 (decades); series: lines (NaN breaks the line),
// scatter with optional error bars and point labels, grouped bars, vertical / horizontal marker
// lines; a legend below the plot. Values that a log axis cannot show (<= 0) and non-finite values
// are left out and counted (figure_notes). Every text is escaped (text.h). No Qt.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvwb::sessions::report {

enum class SeriesKind {
  kLine,     // polyline through (x, y); markers optional
  kScatter,  // markers; optional error bars (y_lo, y_hi) and labels
  kBars,     // bars from the axis base to y, grouped with the other bar series at the same x
  kVLines,   // vertical lines across the plot at each x (y ignored)
  kHLines,   // horizontal lines across the plot at each y (x ignored)
};

struct Series {
  std::string name;  // legend text; "" = not in the legend
  SeriesKind kind = SeriesKind::kLine;
  std::vector<double> x, y;
  std::vector<double> y_lo, y_hi;   // error bars (scatter): empty or y.size() values, NaN = none
  std::vector<std::string> labels;  // point labels (scatter): empty or x.size() texts
  std::string color;                // "#rrggbb"; "" = palette colour of the series index
  bool dashed = false;
  bool markers = false;  // kLine: draw a marker at every point too
  double line_width = 1.6;
};

struct Axis {
  std::string label;
  bool log = false;
  std::optional<double> min, max;  // fixed ends (data beyond them is clipped)
  bool integer = false;            // ticks at integers only (layer indices)
};

struct Figure {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  double width = 720;   // px (SVG) / pt before scaling (PDF)
  double height = 300;  // title + plot + axes, without the legend
  std::string empty_text = "no data";
};

/// Ticks of one axis: the (possibly widened) range and the labelled and minor tick values.
struct Ticks {
  double lo = 0, hi = 1;
  std::vector<double> major;
  std::vector<std::string> labels;  // one per major tick
  std::vector<double> minor;        // unlabelled (log axes: 2..9 × decade)
};
/// 1-2-5 ticks covering [lo, hi] (widened to whole steps unless fixed); `integer` keeps steps >= 1.
Ticks linear_ticks(double lo, double hi, bool integer, bool fixed_lo = false,
                   bool fixed_hi = false);
/// Decade ticks covering [lo, hi] (both > 0), widened to whole decades unless fixed; every k-th
/// decade labelled when there are many; 2 and 5 labelled too when the range spans <= 2 decades.
Ticks log_ticks(double lo, double hi, bool fixed_lo = false, bool fixed_hi = false);
/// Tick label text: shortest of %g forms that shows `v` at the axis resolution `step`; log
/// labels of powers of ten outside [1e-3, 1e4] as "1e-5".
std::string tick_label(double v, double step, bool log);

/// The palette colour of series `index` (10 colour-blind-friendly colours, then repeated).
std::string palette_color(size_t index);

enum class TextAnchor { kStart, kMiddle, kEnd };

struct Stroke {
  std::string color = "#000000";
  double width = 1;
  bool dashed = false;
};

/// A drawing surface in figure units (origin top-left, y down).
class Canvas {
 public:
  virtual ~Canvas() = default;
  virtual void line(double x1, double y1, double x2, double y2, const Stroke& s) = 0;
  virtual void polyline(const std::vector<std::pair<double, double>>& points, const Stroke& s) = 0;
  /// Rectangle with an optional fill ("" = none) and an optional stroke.
  virtual void rect(double x, double y, double w, double h, const std::string& fill,
                    const Stroke* s) = 0;
  virtual void circle(double cx, double cy, double r, const std::string& fill, const Stroke* s) = 0;
  /// Text with its baseline at y; `vertical` rotates it 90° counter-clockwise about (x, y).
  virtual void text(double x, double y, std::string_view utf8, double size, TextAnchor anchor,
                    bool bold, const std::string& color, bool vertical = false) = 0;
  /// Clips what follows to the rectangle until the matching pop_clip.
  virtual void push_clip(double x, double y, double w, double h) = 0;
  virtual void pop_clip() = 0;
};

/// Total height of the drawn figure (figure.height plus its legend rows).
double figure_total_height(const Figure& f);
/// Draws the figure on `canvas` at (0, 0) .. (f.width, figure_total_height(f)).
void draw_figure(const Figure& f, Canvas& canvas);
/// What the chart leaves out, as sentences ("3 values <= 0 are not shown on the log y axis").
std::vector<std::string> figure_notes(const Figure& f);

/// The figure as one standalone <svg> element (UTF-8), sized in px with a viewBox, with a <title>
/// (the figure title, for screen readers). `id` prefixes the element ids (clip paths) so that
/// several charts can live in one HTML document; it must be [A-Za-z0-9_-]+.
std::string figure_to_svg(const Figure& f, const std::string& id);

}  // namespace kvwb::sessions::report
