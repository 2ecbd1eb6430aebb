#pragma once
// Shared look of the analysis charts (spectrum, Σ_q, distribution, layer error): a title row,
// axis styling, log axes with 10^n labels, a colour palette and hover tooltips that show the exact
// value of the nearest data point. Only drawing helpers; no data is computed here.
#include <QColor>
#include <QString>
#include <vector>

class QCustomPlot;
class QCPAxis;
class QCPAxisRect;
class QCPGraph;
class QCPItemRect;
class QCPLegend;
class QCPTextElement;

namespace kvwb::views {

/// Colour i of the palette (colour-blind friendly, Okabe–Ito order).
QColor chart_color(int i);

/// Prepares `plot` once: white background, antialiasing, a title element in row 0 above the
/// existing axis rect, default fonts, the legend visible. Returns the title element.
QCPTextElement* setup_chart(QCustomPlot* plot);

/// Removes every plottable and item, and the extra axis rects (all but the first) with their
/// legends; keeps the title row. Axis scale types are reset to linear.
void clear_chart(QCustomPlot* plot);

/// Axis label and fonts.
void style_axis(QCPAxis* axis, const QString& label);
/// Logarithmic axis with 10^n tick labels.
void set_log_axis(QCPAxis* axis);
/// Linear axis with the default ticker.
void set_linear_axis(QCPAxis* axis);
/// Integer ticks (layer indices): step 1, multiples of it when crowded.
void set_integer_axis(QCPAxis* axis);

/// A second axis rect under the first one, with its own legend in a row below it (outside the
/// data, entries side by side). The two rects share a margin group so their axes line up.
/// `stretch` is the height share of the new rect (the first keeps 1.0).
QCPAxisRect* add_lower_panel(QCustomPlot* plot, double stretch, QCPLegend** legend);

/// A band over x in [x0, x1] (units of the bottom axis of `rect`) spanning the full height of
/// `rect`, clipped to it. The caller sets its pen and brush.
QCPItemRect* add_band(QCustomPlot* plot, QCPAxisRect* rect, double x0, double x1);

/// A legend in a new row at the bottom of the plot layout (outside the data), entries side by
/// side; the plot's inset legend is hidden. Returns it for addToLegend.
QCPLegend* add_legend_row(QCustomPlot* plot);

/// Re-flows the entries of a legend row so each row fits `available_width` pixels (no entry is
/// clipped): as many entries a row as the widest one allows.
void fit_legend_row(QCPLegend* legend, int available_width);

/// Fits (fit_legend_row at the plot's width) and centres the entries of a legend row made by
/// add_lower_panel or add_legend_row (call after adding the entries).
void center_legend_row(QCPLegend* legend);

/// Range of a log axis: [lo/pad, hi*pad] widened to whole decades, so that at least two 10^n
/// labels show. lo, hi > 0.
void set_log_range(QCPAxis* axis, double lo, double hi, double pad);

/// `text` broken into lines of at most `width` characters at spaces.
QString wrap_text(const QString& text, int width);

/// Shows a tooltip with the series name and the exact (x, y) of the data point nearest to the
/// mouse (within 10 px) of any visible graph or bar chart of `plot`, named by the axis labels.
/// A plottable with the property "kvwb_vertical" = true marks positions (vertical lines): only
/// its x is shown.
void install_hover_tooltips(QCustomPlot* plot);

}  // namespace kvwb::views
