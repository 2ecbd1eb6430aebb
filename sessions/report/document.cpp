#include "sessions/report/document.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "sessions/report/pdf.h"
#include "sessions/report/text.h"

namespace kvwb::sessions::report {

Cell number_cell(double v, int significant, const std::string& key) {
  Cell c;
  c.text = format_number(v, significant);
  if (std::isfinite(v)) c.value = v;
  c.key = key;
  if (!std::isfinite(v)) c.tone = "muted";
  return c;
}

Cell text_cell(std::string text, std::string tone) {
  Cell c;
  c.text = std::move(text);
  c.tone = std::move(tone);
  return c;
}

// ---- HTML ----

namespace {

/// Per column: every cell that holds something other than "", "n/a" or "-" is a number (such
/// columns get a right-aligned header). Key-value tables have none.
std::vector<bool> numeric_columns(const Table& t, size_t ncol) {
  std::vector<bool> numeric(ncol, false);
  if (t.key_value) return numeric;
  for (size_t c = 0; c < ncol; ++c) {
    size_t nums = 0, texts = 0;
    for (const auto& row : t.rows) {
      if (c >= row.size()) continue;
      const Cell& cell = row[c];
      if (cell.value)
        ++nums;
      else if (!cell.text.empty() && cell.text != "n/a" && cell.text != "-")
        ++texts;
    }
    numeric[c] = nums > 0 && texts == 0;
  }
  return numeric;
}

constexpr const char* kCss = R"CSS(
:root { color-scheme: light; }
body { font-family: Helvetica, Arial, "Liberation Sans", sans-serif; color: #222; margin: 0 auto;
       max-width: 1100px; padding: 24px 28px; line-height: 1.4; font-size: 14px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 3px; margin-top: 34px; }
.subtitle { color: #555; margin: 0 0 12px; }
.banner { background: #b00020; color: #fff; font-weight: bold; padding: 8px 12px; border-radius: 4px; }
nav ol { columns: 2; font-size: 13px; margin-top: 4px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0 18px; }
caption { text-align: left; font-weight: bold; padding: 4px 0; caption-side: top; }
th, td { border: 1px solid #d6d6d6; padding: 3px 6px; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; }
table.kv th { background: #fafafa; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv td.num { text-align: left; }
figure.chart { margin: 12px 0 22px; }
figure.chart svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #555; max-width: 900px; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 8px; font-size: 12px; white-space: pre-wrap;
      word-break: break-all; }
p.note { color: #555; font-size: 13px; }
p.warning { color: #8a1f11; background: #fdecea; padding: 6px 10px; border-radius: 3px; }
.good { color: #1b6e20; }
.bad { color: #b00020; font-weight: bold; }
.muted { color: #888; }
footer { margin-top: 36px; border-top: 1px solid #ccc; padding-top: 8px; color: #555; font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-after: avoid; }
  figure.chart, tr { break-inside: avoid; }
}
)CSS";

std::string value_attr(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

std::string cell_html(const Cell& c, bool header_cell) {
  std::string cls;
  if (c.value) cls = "num";
  if (!c.tone.empty()) cls += (cls.empty() ? "" : " ") + c.tone;
  std::string o = header_cell ? "<th" : "<td";
  if (!cls.empty()) o += " class=\"" + xml_escape(cls) + "\"";
  if (!c.key.empty()) o += " data-key=\"" + xml_escape(c.key) + "\"";
  if (c.value) o += " data-value=\"" + value_attr(*c.value) + "\"";
  o += ">" + xml_escape(c.text) + (header_cell ? "</th>" : "</td>");
  return o;
}

void html_block(std::string& o, const Paragraph& p) {
  const std::string id = p.id.empty() ? std::string() : " id=\"" + xml_escape(p.id) + "\"";
  if (p.style == Paragraph::Style::kCode) {
    o += "<pre" + id + "><code>" + xml_escape(p.text) + "</code></pre>\n";
    return;
  }
  // The CSS class of the paragraph's style; plain text has none.
  const char* cls = p.style == Paragraph::Style::kNote      ? " class=\"note\""
                    : p.style == Paragraph::Style::kWarning ? " class=\"warning\""
                    : p.style == Paragraph::Style::kBanner  ? " class=\"banner\""
                                                            : "";
  o += "<p" + std::string(cls) + id + ">" + xml_escape(p.text) + "</p>\n";
}

void html_block(std::string& o, const Table& t) {
  o += "<div class=\"table-wrap\"><table";
  if (!t.id.empty()) o += " id=\"" + xml_escape(t.id) + "\"";
  if (t.key_value) o += " class=\"kv\"";
  o += ">\n";
  if (!t.caption.empty()) o += "<caption>" + xml_escape(t.caption) + "</caption>\n";
  if (!t.columns.empty() && !t.key_value) {
    const std::vector<bool> numeric = numeric_columns(t, t.columns.size());
    o += "<thead><tr>";
    for (size_t i = 0; i < t.columns.size(); ++i)
      o += (numeric[i] ? "<th class=\"num\">" : "<th>") + xml_escape(t.columns[i]) + "</th>";
    o += "</tr></thead>\n";
  }
  o += "<tbody>\n";
  for (const auto& row : t.rows) {
    o += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) o += cell_html(row[i], t.key_value && i == 0);
    o += "</tr>\n";
  }
  o += "</tbody></table></div>\n";
}

void html_block(std::string& o, const Chart& c) {
  o += "<figure class=\"chart\" id=\"" + xml_escape(c.id) + "\">\n" +
       figure_to_svg(c.figure, c.id + "-svg") + "\n";
  std::string cap = c.caption;
  for (const auto& n : figure_notes(c.figure)) cap += (cap.empty() ? "" : " ") + n + ".";
  if (!cap.empty()) o += "<figcaption>" + xml_escape(cap) + "</figcaption>\n";
  o += "</figure>\n";
}

}  // namespace

std::string render_html(const ReportDocument& doc) {
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  o += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  if (!doc.generator.empty())
    o += "<meta name=\"generator\" content=\"" + xml_escape(doc.generator) + "\">\n";
  o += "<title>" + xml_escape(doc.title) + "</title>\n<style>" + kCss +
       "</style>\n</head>\n<body>\n<header>\n";
  o += "<h1>" + xml_escape(doc.title) + "</h1>\n";
  if (!doc.subtitle.empty()) o += "<p class=\"subtitle\">" + xml_escape(doc.subtitle) + "</p>\n";
  if (doc.synthetic)
    o += "<p class=\"banner\" id=\"synthetic-banner\">" + xml_escape(doc.synthetic_text) + "</p>\n";
  o += "</header>\n<nav><strong>Contents</strong><ol>\n";
  for (const auto& s : doc.sections)
    o += "<li><a href=\"#" + xml_escape(s.id) + "\">" + xml_escape(s.title) + "</a></li>\n";
  o += "</ol></nav>\n";
  for (const auto& s : doc.sections) {
    o += "<section id=\"" + xml_escape(s.id) + "\">\n<h2>" + xml_escape(s.title) + "</h2>\n";
    for (const auto& b : s.blocks) std::visit([&o](const auto& x) { html_block(o, x); }, b);
    o += "</section>\n";
  }
  o += "<footer>" + xml_escape(doc.footer) + "</footer>\n</body>\n</html>\n";
  return o;
}

// ---- PDF ----

namespace {

constexpr double kMarginX = 40, kMarginTop = 46, kMarginBottom = 50;
constexpr double kTableFont = 7, kTablePad = 2.5;
constexpr const char* kRuleGray = "#c8c8c8";

std::string tone_color(const std::string& tone) {
  if (tone == "good") return "#1b6e20";
  if (tone == "bad") return "#b00020";
  if (tone == "muted") return "#888888";
  return "#222222";
}

class PdfLayout {
 public:
  explicit PdfLayout(const ReportDocument& doc) : doc_(doc) { new_page(); }

  double width() const { return pdf_.page_width() - 2 * kMarginX; }
  double left() const { return kMarginX; }

  void new_page() {
    page_ = pdf_.add_page();
    y_ = pdf_.page_height() - kMarginTop;
  }
  /// Starts a new page unless `h` points fit above the bottom margin.
  void need(double h) {
    if (y_ - h < kMarginBottom && y_ < pdf_.page_height() - kMarginTop - 1) new_page();
  }
  std::string& out() { return pdf_.content(page_); }

  void gap(double h) { y_ -= h; }

  void text_lines(const std::string& text, double size, FontFace face, const std::string& color,
                  double leading, double indent = 0, bool code = false) {
    const auto lines = code ? wrap_code(text, size, face, width() - indent)
                            : wrap_text(text, size, face, width() - indent);
    for (const auto& line : lines) {
      need(leading);
      y_ -= leading;
      pdf_show_text(out(), left() + indent, y_ + leading * 0.25, line, size, face, color);
    }
  }

  void title() {
    text_lines(doc_.title, 17, FontFace::kSansBold, "#111111", 21);
    if (!doc_.subtitle.empty()) text_lines(doc_.subtitle, 8.5, FontFace::kSans, "#555555", 11);
    if (doc_.synthetic) {
      gap(6);
      const auto lines = wrap_text(doc_.synthetic_text, 9, FontFace::kSansBold, width() - 16);
      const double h = 10.5 * static_cast<double>(lines.size()) + 9;
      need(h);
      out() += pdf_rgb("#b00020") + " rg " + std::to_string(left()) + " " + std::to_string(y_ - h) +
               " " + std::to_string(width()) + " " + std::to_string(h) + " re f\n";
      double yy = y_ - 4.5;
      for (const auto& l : lines) {
        yy -= 10.5;
        pdf_show_text(out(), left() + 8, yy + 2.5, l, 9, FontFace::kSansBold, "#ffffff");
      }
      y_ -= h;
    }
    gap(4);
  }

  void heading(const Section& s) {
    need(19 + 80);  // never a heading alone at the bottom of a page
    gap(10);
    y_ -= 15;
    pdf_show_text(out(), left(), y_ + 3, s.title, 12.5, FontFace::kSansBold, "#111111");
    pdf_.add_outline(s.title, page_, y_ + 18);
    out() += pdf_rgb(kRuleGray) + " RG 0.6 w [] 0 d " + num(left()) + " " + num(y_) + " m " +
             num(left() + width()) + " " + num(y_) + " l S\n";
    gap(4);
  }

  void block(const Paragraph& p) {
    if (p.style == Paragraph::Style::kCode) {
      gap(2);
      text_lines(p.text, 6.6, FontFace::kMono, "#222222", 7.9, 4, true);
      gap(4);
      return;
    }
    // Font size (pt), face, colour and line height (pt) of the paragraph's style.
    struct Look {
      double size;
      FontFace face;
      const char* color;
      double line;
    };
    const Look look =
        p.style == Paragraph::Style::kNote      ? Look{7.5, FontFace::kSans, "#555555", 9.5}
        : p.style == Paragraph::Style::kWarning ? Look{8.5, FontFace::kSansBold, "#8a1f11", 11}
        : p.style == Paragraph::Style::kBanner  ? Look{9, FontFace::kSansBold, "#b00020", 11.5}
                                                : Look{8.5, FontFace::kSans, "#222222", 11};
    text_lines(p.text, look.size, look.face, look.color, look.line);
    gap(2);
  }

  void block(const Table& t) {
    if (t.rows.empty()) return;
    const size_t ncol = t.key_value ? 2 : std::max(t.columns.size(), t.rows.front().size());
    double font = kTableFont;
    std::vector<double> widths;
    // Natural widths (capped), then fit to the page: smaller font first, then narrower columns
    // (water-filling: columns narrower than their share keep their width), cells wrapping.
    for (int attempt = 0; attempt < 3; ++attempt) {
      widths.assign(ncol, 12.0);
      auto measure = [&](size_t c, const std::string& s, bool bold) {
        for (const auto& part :
             wrap_text(s, font, bold ? FontFace::kSansBold : FontFace::kSans, 1e9))
          widths[c] = std::max(
              widths[c],
              std::min(200.0, text_width(part, font, bold ? FontFace::kSansBold : FontFace::kSans) +
                                  2 * kTablePad + 1));
      };
      if (!t.key_value)
        for (size_t c = 0; c < t.columns.size() && c < ncol; ++c) measure(c, t.columns[c], true);
      for (const auto& row : t.rows)
        for (size_t c = 0; c < row.size() && c < ncol; ++c)
          measure(c, row[c].text, t.key_value && c == 0);
      if (std::accumulate(widths.begin(), widths.end(), 0.0) <= width() || font <= 5.6) break;
      font -= 0.7;
    }
    double total = std::accumulate(widths.begin(), widths.end(), 0.0);
    if (t.key_value) {
      widths[1] = std::max(widths[1], std::min(width() - widths[0], 360.0));
      total = widths[0] + widths[1];
    }
    if (total > width()) {
      std::vector<bool> fixed(ncol, false);
      double budget = width();
      size_t open = ncol;
      bool changed = true;
      while (changed && open > 0) {
        changed = false;
        const double share = budget / static_cast<double>(open);
        for (size_t c = 0; c < ncol; ++c)
          if (!fixed[c] && widths[c] <= share)
            fixed[c] = true, budget -= widths[c], --open, changed = true;
      }
      if (open > 0)
        for (size_t c = 0; c < ncol; ++c)
          if (!fixed[c]) widths[c] = std::max(24.0, budget / static_cast<double>(open));
    }
    const double leading = font * 1.25;
    auto cell_lines = [&](size_t c, const std::string& s, bool bold) {
      return wrap_text(s, font, bold ? FontFace::kSansBold : FontFace::kSans,
                       std::max(4.0, widths[c] - 2 * kTablePad));
    };
    auto draw_row = [&](const std::vector<Cell>& cells, bool header) {
      std::vector<std::vector<std::string>> lines(ncol);
      size_t n = 1;
      for (size_t c = 0; c < ncol && c < cells.size(); ++c) {
        lines[c] = cell_lines(c, cells[c].text, header || (t.key_value && c == 0));
        n = std::max(n, lines[c].size());
      }
      const double h = static_cast<double>(n) * leading + 2 * kTablePad;
      return std::make_pair(lines, h);
    };
    const std::vector<bool> numeric_col = numeric_columns(t, ncol);
    std::vector<Cell> header_cells;
    for (const auto& h : t.columns) header_cells.push_back(text_cell(h));
    const double table_w = std::accumulate(widths.begin(), widths.end(), 0.0);
    auto paint = [&](const std::vector<Cell>& cells, bool header) {
      auto [lines, h] = draw_row(cells, header);
      if (header || (t.key_value)) {
        const std::string fill = header ? "#eeeeee" : "";
        if (!fill.empty())
          out() += pdf_rgb(fill) + " rg " + num(left()) + " " + num(y_ - h) + " " + num(table_w) +
                   " " + num(h) + " re f\n";
      }
      double x = left();
      for (size_t c = 0; c < ncol; ++c) {
        const bool bold = header || (t.key_value && c == 0);
        const FontFace face = bold ? FontFace::kSansBold : FontFace::kSans;
        const Cell* cell = c < cells.size() ? &cells[c] : nullptr;
        const bool right = header ? numeric_col[c] : (cell && cell->value && !t.key_value);
        const std::string color = cell && !header ? tone_color(cell->tone) : "#111111";
        double yy = y_ - kTablePad;
        for (const auto& l : lines[c]) {
          yy -= leading;
          const double tx =
              right ? x + widths[c] - kTablePad - text_width(l, font, face) : x + kTablePad;
          pdf_show_text(out(), tx, yy + leading * 0.22, l, font, face, color);
        }
        x += widths[c];
      }
      y_ -= h;
      out() += pdf_rgb(kRuleGray) + " RG 0.4 w [] 0 d " + num(left()) + " " + num(y_) + " m " +
               num(left() + table_w) + " " + num(y_) + " l S\n";
    };
    const bool has_header = !t.key_value && !t.columns.empty();
    const double header_h = has_header ? draw_row(header_cells, true).second : 0;
    const double first_h = draw_row(t.rows.front(), false).second;
    need((t.caption.empty() ? 0 : 12) + header_h + first_h);
    if (!t.caption.empty()) {
      gap(3);
      text_lines(t.caption, 8, FontFace::kSansBold, "#222222", 10.5);
      gap(1);
    }
    auto top_rule = [&] {
      out() += pdf_rgb(kRuleGray) + " RG 0.4 w [] 0 d " + num(left()) + " " + num(y_) + " m " +
               num(left() + table_w) + " " + num(y_) + " l S\n";
    };
    top_rule();
    if (has_header) paint(header_cells, true);
    for (const auto& row : t.rows) {
      const double h = draw_row(row, false).second;
      if (y_ - h < kMarginBottom) {
        new_page();
        top_rule();
        if (has_header) paint(header_cells, true);
      }
      paint(row, false);
    }
    gap(9);
  }

  void block(const Chart& c) {
    const double scale = std::min(1.0, width() / c.figure.width) * 0.98;
    const double h = figure_total_height(c.figure) * scale;
    std::string cap = c.caption;
    for (const auto& n : figure_notes(c.figure)) cap += (cap.empty() ? "" : " ") + n + ".";
    const double cap_h =
        cap.empty()
            ? 0
            : 9.5 * static_cast<double>(wrap_text(cap, 7.5, FontFace::kSans, width()).size());
    need(h + std::min(cap_h, 30.0) + 4);
    PdfCanvas canvas(out(), left() + (width() - c.figure.width * scale) / 2, y_, scale);
    draw_figure(c.figure, canvas);
    y_ -= h + 3;
    if (!cap.empty()) text_lines(cap, 7.5, FontFace::kSans, "#555555", 9.5);
    gap(8);
  }

  std::vector<uint8_t> finish() {
    const size_t n = pdf_.page_count();
    for (size_t i = 0; i < n; ++i) {
      std::string& o = pdf_.content(i);
      const double fy = 26;
      o += pdf_rgb(kRuleGray) + " RG 0.4 w [] 0 d " + num(left()) + " " + num(fy + 10) + " m " +
           num(left() + width()) + " " + num(fy + 10) + " l S\n";
      const std::string page = "page " + std::to_string(i + 1) + " of " + std::to_string(n);
      const double pw = text_width(page, 7, FontFace::kSans);
      std::string foot = doc_.footer;
      if (doc_.synthetic) {
        const std::string tag = "SYNTHETIC DATA";
        pdf_show_text(o, left(), fy, tag, 7, FontFace::kSansBold, "#b00020");
        const double tw = text_width(tag + "  ", 7, FontFace::kSansBold);
        const auto lines = wrap_text(foot, 7, FontFace::kSans, width() - pw - tw - 12);
        pdf_show_text(o, left() + tw, fy, lines.front() + (lines.size() > 1 ? "…" : ""), 7,
                      FontFace::kSans, "#555555");
      } else {
        const auto lines = wrap_text(foot, 7, FontFace::kSans, width() - pw - 12);
        pdf_show_text(o, left(), fy, lines.front() + (lines.size() > 1 ? "…" : ""), 7,
                      FontFace::kSans, "#555555");
      }
      pdf_show_text(o, left() + width() - pw, fy, page, 7, FontFace::kSans, "#555555");
    }
    pdf_.set_info(doc_.title, doc_.subtitle, doc_.generator, doc_.created_utc);
    return pdf_.finish();
  }

 private:
  static std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v);
    return b;
  }
  const ReportDocument& doc_;
  PdfDocument pdf_;
  size_t page_ = 0;
  double y_ = 0;
};

}  // namespace

std::vector<uint8_t> render_pdf(const ReportDocument& doc) {
  PdfLayout L(doc);
  L.title();
  for (const auto& s : doc.sections) {
    L.heading(s);
    for (const auto& b : s.blocks) std::visit([&L](const auto& x) { L.block(x); }, b);
  }
  return L.finish();
}

}  // namespace kvwb::sessions::report
