#pragma once
// The report as a document (sections of paragraphs, tables, charts and code) and its two
// renderings from the same content: one self-contained HTML file (inline CSS, charts as inline
// SVG; no script, no external file, image or font) and a PDF (pdf.h; A4, the same tables and
// charts, bookmarks per section). No Qt.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sessions/report/plot.h"

namespace kvwb::sessions::report {

/// One table cell. Numeric cells keep the exact value next to its display text (HTML:
/// data-value="%.17g") and, when they show a field of a result JSON, its path (data-key, e.g.
/// "layers[0].k.rel_mse" or "totals.ratio_vs_bf16"), so that readers and tests can check every
/// number against its source.
struct Cell {
  std::string text;
  std::optional<double> value;
  std::string key;
  std::string tone;  // "" | "good" | "bad" | "muted" (colour only; the text says the same)
};

struct Table {
  std::string id;                    // HTML id ([a-z0-9-]+)
  std::string caption;               // "" = none
  std::vector<std::string> columns;  // header; empty with key_value
  std::vector<std::vector<Cell>> rows;
  bool key_value = false;  // two columns, the first one a label (no header)
};

struct Paragraph {
  enum class Style { kText, kNote, kWarning, kCode, kBanner };
  std::string text;
  Style style = Style::kText;
  std::string id;  // HTML id, "" = none
};

struct Chart {
  std::string id;  // HTML id of the <figure> ("chart-…"); the <svg> gets id + "-svg"
  Figure figure;
  std::string caption;
};

using Block = std::variant<Paragraph, Table, Chart>;

struct Section {
  std::string id;  // anchor ([a-z0-9-]+)
  std::string title;
  std::vector<Block> blocks;
};

struct ReportDocument {
  std::string title;
  std::string subtitle;        // one line under the title
  bool synthetic = false;      // SYNTHETIC banner at the top and in every PDF page footer
  std::string synthetic_text;  // what the banner says
  std::vector<Section> sections;
  std::string footer;       // tool, version, date (last line of the HTML, every PDF page)
  std::string generator;    // <meta name="generator"> / PDF Creator
  std::string created_utc;  // "YYYYMMDDHHmmSS" for the PDF CreationDate ("" = none)
};

/// The document as one self-contained HTML file (UTF-8).
std::string render_html(const ReportDocument& doc);
/// The document as a PDF file (A4 portrait).
std::vector<uint8_t> render_pdf(const ReportDocument& doc);

/// A numeric cell: `text` = format_number(v, significant) (integers exactly), value = v.
Cell number_cell(double v, int significant = 5, const std::string& key = {});
/// A text cell.
Cell text_cell(std::string text, std::string tone = {});

}  // namespace kvwb::sessions::report
