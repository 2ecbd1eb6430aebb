// Reports (sessions/report/): the text helpers (UTF-8, escaping, PDF font runs and metrics,
// wrapping), the plotting helper (ticks, log axes, what it leaves out, SVG output through a
// recording canvas), the PDF writer (a structurally valid file: every cross-reference offset
// points at its object), the HTML/PDF renderings of a document, and the report of a real run on a
// small demo capture and of a sweep store whose records carry end-to-end intervals and verdicts:
// every table number with a data-key equals the run result JSON at that path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/explore/sweep.h"
#include "sessions/report/document.h"
#include "sessions/report/pdf.h"
#include "sessions/report/plot.h"
#include "sessions/report/report.h"
#include "sessions/report/text.h"
#include "sessions/run/runner.h"
#include "tests/sessions/demo_fixture.h"
#include "tests/test_support.h"

using namespace kvwb;
using namespace kvwb::sessions;
using namespace kvwb::sessions::report;
using nlohmann::json;

namespace {

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size()))
    ++n;
  return n;
}

/// Every call a figure makes, for geometry checks.
class RecordingCanvas : public Canvas {
 public:
  struct Text {
    double x, y;
    std::string s;
  };
  std::vector<std::array<double, 4>> lines;
  std::vector<std::vector<std::pair<double, double>>> polylines;
  std::vector<std::array<double, 4>> rects;  // x, y, w, h (filled ones)
  std::vector<std::pair<double, double>> circles;
  std::vector<Text> texts;
  int clip_depth = 0, max_clip_depth = 0;
  void line(double x1, double y1, double x2, double y2, const Stroke&) override {
    lines.push_back({x1, y1, x2, y2});
  }
  void polyline(const std::vector<std::pair<double, double>>& p, const Stroke&) override {
    polylines.push_back(p);
  }
  void rect(double x, double y, double w, double h, const std::string& fill,
            const Stroke*) override {
    if (!fill.empty() && fill != "#ffffff") rects.push_back({x, y, w, h});
  }
  void circle(double cx, double cy, double, const std::string&, const Stroke*) override {
    circles.emplace_back(cx, cy);
  }
  void text(double x, double y, std::string_view s, double, TextAnchor, bool, const std::string&,
            bool) override {
    texts.push_back({x, y, std::string(s)});
  }
  void push_clip(double, double, double, double) override {
    max_clip_depth = std::max(max_clip_depth, ++clip_depth);
  }
  void pop_clip() override { --clip_depth; }
  bool has_text(const std::string& s) const {
    for (const auto& t : texts)
      if (t.s == s) return true;
    return false;
  }
};

/// Resolves "layers[3].k.rel_mse" in a JSON document.
const json* at_path(const json& root, const std::string& path) {
  const json* node = &root;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') ++i;
    if (path[i] == '[') {
      const size_t e = path.find(']', i);
      const size_t idx = std::stoul(path.substr(i + 1, e - i - 1));
      if (!node->is_array() || idx >= node->size()) return nullptr;
      node = &(*node)[idx];
      i = e + 1;
      continue;
    }
    size_t e = path.find_first_of(".[", i);
    if (e == std::string::npos) e = path.size();
    const std::string key = path.substr(i, e - i);
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
    i = e;
  }
  return node;
}

/// Checks the structure of a PDF file: header, %%EOF, startxref -> "xref", and every in-use
/// cross-reference entry pointing at "N 0 obj". Returns the page count (/Type /Pages /Count).
int check_pdf_structure(const std::vector<uint8_t>& bytes) {
  const std::string s(bytes.begin(), bytes.end());
  EXPECT_EQ(s.rfind("%PDF-1.4\n", 0), 0u);
  EXPECT_NE(s.find("%%EOF", s.size() - 8), std::string::npos);
  const size_t sx = s.rfind("startxref\n");
  EXPECT_NE(sx, std::string::npos);
  const size_t xref = std::stoul(s.substr(sx + 10));
  EXPECT_EQ(s.compare(xref, 5, "xref\n"), 0);
  std::istringstream is(s.substr(xref + 5));
  size_t first = 0, count = 0;
  is >> first >> count;
  EXPECT_EQ(first, 0u);
  std::string line;
  std::getline(is, line);
  for (size_t n = 0; n < count; ++n) {
    std::getline(is, line);
    EXPECT_EQ(line.size(), 19u) << "xref entry " << n;  // 20 bytes with '\n'
    if (line.size() < 18 || line[17] != 'n') continue;
    const size_t off = std::stoul(line.substr(0, 10));
    EXPECT_EQ(s.compare(off, std::to_string(n).size() + 6, std::to_string(n) + " 0 obj"), 0)
        << "object " << n;
  }
  std::smatch m;
  const std::regex pages("/Type /Pages /Kids \\[[^\\]]*\\] /Count ([0-9]+)");
  EXPECT_TRUE(std::regex_search(s, m, pages));
  const int n_pages = m.empty() ? 0 : std::stoi(m[1]);
  EXPECT_EQ(count_of(s, "/Type /Page /Parent"), static_cast<size_t>(n_pages));
  return n_pages;
}

/// Checks that `text` contains each of `needles` (one expectation each, naming the needle).
void expect_contains(const std::string& text, std::initializer_list<std::string> needles) {
  for (const auto& n : needles) EXPECT_NE(text.find(n), std::string::npos) << n;
}

/// Checks that `text` contains none of `needles` (one expectation each, naming the needle).
void expect_lacks(const std::string& text, std::initializer_list<std::string> needles) {
  for (const auto& n : needles) EXPECT_EQ(text.find(n), std::string::npos) << n;
}

}  // namespace

// ---- text ----

TEST(ReportText, DecodesUtf8AndReplacesBadBytes) {
  EXPECT_EQ(decode_utf8("aΣ≥"), (std::vector<char32_t>{'a', 0x3A3, 0x2265}));
  EXPECT_EQ(decode_utf8("\xC3"), (std::vector<char32_t>{0xFFFD}));              // truncated
  EXPECT_EQ(decode_utf8("\xC0\xAF"), (std::vector<char32_t>{0xFFFD, 0xFFFD}));  // overlong
  EXPECT_EQ(decode_utf8("\xED\xA0\x80"),
            (std::vector<char32_t>{0xFFFD, 0xFFFD, 0xFFFD}));  // surrogate
  EXPECT_EQ(encode_utf8(0x1F600), "\xF0\x9F\x98\x80");
}

TEST(ReportText, EscapesMarkupQuotesAndControlCharacters) {
  EXPECT_EQ(xml_escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
  EXPECT_EQ(xml_escape(std::string("a\x01z\tb", 5)), "a\xEF\xBF\xBDz\tb");
  EXPECT_EQ(xml_escape("\xFF"), "\xEF\xBF\xBD");
  EXPECT_EQ(xml_escape("Σ_q ‖e‖²"), "Σ_q ‖e‖²");
}

TEST(ReportText, PdfRunsSwitchToSymbolForGreekAndMath) {
  const auto runs = pdf_glyph_runs("Σ_q ≥ 2", FontFace::kSans);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].font, 3);
  EXPECT_EQ(runs[0].bytes, std::string(1, 83));  // Sigma in the Symbol encoding
  EXPECT_EQ(runs[1].font, 0);
  EXPECT_EQ(runs[1].bytes, "_q ");
  EXPECT_EQ(runs[2].font, 3);
  EXPECT_EQ(static_cast<unsigned char>(runs[2].bytes[0]), 179);  // greaterequal
  EXPECT_EQ(runs[3].bytes, " 2");
  // WinAnsi beyond ASCII: em dash 0x97, multiplication sign 0xD7; bold face uses font 1.
  const auto r2 = pdf_glyph_runs("a—×", FontFace::kSansBold);
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_EQ(r2[0].font, 1);
  EXPECT_EQ(r2[0].bytes, "a\x97\xD7");
  // Look-alikes and unknowns.
  EXPECT_EQ(pdf_glyph_runs("‖x‖", FontFace::kSans)[0].bytes, "||x||");
  EXPECT_EQ(pdf_glyph_runs("x\xCC\x82", FontFace::kSans)[0].bytes, "x");  // combining mark dropped
  EXPECT_EQ(pdf_glyph_runs("\xE4\xB8\xAD", FontFace::kSans)[0].bytes, "?");
}

TEST(ReportText, WidthsAreHelveticaMetrics) {
  EXPECT_DOUBLE_EQ(text_width("ABC", 10, FontFace::kSans), (667 + 667 + 722) * 10 / 1000.0);
  EXPECT_DOUBLE_EQ(text_width("ABC", 10, FontFace::kSansBold), (722 + 722 + 722) * 10 / 1000.0);
  EXPECT_DOUBLE_EQ(text_width("iii", 10, FontFace::kMono), 18.0);
  EXPECT_DOUBLE_EQ(text_width("#", 1000, FontFace::kSans), 556);
}

TEST(ReportText, WrapsAtSpacesAndBreaksLongWords) {
  const std::string text = "the quick brown fox jumps over the lazy dog again and again";
  const auto lines = wrap_text(text, 10, FontFace::kSans, 80);
  ASSERT_GT(lines.size(), 2u);
  std::string joined;
  for (const auto& l : lines) {
    EXPECT_LE(text_width(l, 10, FontFace::kSans), 80.0) << l;
    joined += (joined.empty() ? "" : " ") + l;
  }
  EXPECT_EQ(joined, text);
  const auto hex = wrap_text(std::string(64, 'a'), 10, FontFace::kSans, 100);
  EXPECT_GT(hex.size(), 3u);
  for (const auto& l : hex) EXPECT_LE(text_width(l, 10, FontFace::kSans), 100.0);
  EXPECT_EQ(wrap_text("", 10, FontFace::kSans, 50).size(), 1u);
  EXPECT_EQ(wrap_text("a\nb", 10, FontFace::kSans, 50), (std::vector<std::string>{"a", "b"}));
  const auto code =
      wrap_code("{\n    \"key\": \"" + std::string(60, 'v') + "\"\n}", 8, FontFace::kMono, 200);
  ASSERT_GE(code.size(), 4u);
  EXPECT_EQ(code[1].rfind("    \"key\"", 0), 0u);
  EXPECT_EQ(code[2].rfind("    v", 0), 0u);  // continuation keeps the indentation
  for (const auto& l : code) EXPECT_LE(text_width(l, 8, FontFace::kMono), 200.0);
}

TEST(ReportText, FormatsNumbers) {
  EXPECT_EQ(format_number(2931616), "2931616");
  EXPECT_EQ(format_number(2.86140123, 5), "2.8614");
  EXPECT_EQ(format_number(NAN), "n/a");
  EXPECT_EQ(format_number(-0.0), "0");
  EXPECT_EQ(format_number(1.5e-7, 3), "1.5e-07");
}

// ---- plot ----

TEST(ReportPlot, LinearTicksAreNiceAndCoverTheRange) {
  const Ticks t = linear_ticks(0.013, 0.93, false);
  EXPECT_DOUBLE_EQ(t.lo, 0.0);
  EXPECT_DOUBLE_EQ(t.hi, 1.0);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1.0"}));
  const Ticks i = linear_ticks(-0.5, 3.5, true, true, true);
  EXPECT_EQ(i.labels, (std::vector<std::string>{"0", "1", "2", "3"}));
  const Ticks big = linear_ticks(0, 2931616, false);
  EXPECT_GE(big.hi, 2931616.0);
  for (const auto& l : big.labels) EXPECT_EQ(l.find_first_of(".e"), std::string::npos) << l;
  const Ticks flat = linear_ticks(5, 5, false);
  EXPECT_LT(flat.lo, 5.0);
  EXPECT_GT(flat.hi, 5.0);
}

TEST(ReportPlot, LogTicksLabelDecades) {
  const Ticks t = log_ticks(3e-5, 0.2);
  EXPECT_DOUBLE_EQ(t.lo, 1e-5);
  EXPECT_DOUBLE_EQ(t.hi, 1.0);
  EXPECT_EQ(t.labels, (std::vector<std::string>{"1e-5", "1e-4", "0.001", "0.01", "0.1", "1"}));
  EXPECT_FALSE(t.minor.empty());
  const Ticks narrow = log_ticks(0.013, 0.06);
  EXPECT_EQ(narrow.labels, (std::vector<std::string>{"0.01", "0.02", "0.05", "0.1"}));
  const Ticks wide = log_ticks(1e-12, 1e6);
  EXPECT_LE(wide.labels.size(), 8u);
  EXPECT_EQ(wide.labels.front(), "1e-12");
}

TEST(ReportPlot, DrawsSeriesInsideThePlotAndLegendBelow) {
  Figure f;
  f.title = "t";
  f.x = {"layer", false, std::nullopt, std::nullopt, true};
  f.y = {"err", true, std::nullopt, std::nullopt, false};
  Series a;
  a.name = "K";
  a.x = {0, 1, 2, 3, 4};
  a.y = {0.1, 0.2, NAN, 0.05, 0.0};  // NaN breaks the line, 0 cannot be shown on a log axis
  a.markers = false;
  Series b;
  b.name = "boundary";
  b.kind = SeriesKind::kVLines;
  b.x = {2};
  Series c;
  c.name = "pts";
  c.kind = SeriesKind::kScatter;
  c.x = {1, 3};
  c.y = {0.3, 0.4};
  c.y_lo = {0.2, NAN};
  c.y_hi = {0.5, NAN};
  c.labels = {"#1", ""};
  f.series = {a, b, c};
  RecordingCanvas rc;
  draw_figure(f, rc);
  EXPECT_EQ(rc.clip_depth, 0);
  EXPECT_EQ(rc.max_clip_depth, 1);
  // One two-point polyline (x = 0, 1), a lone point (x = 3) drawn as a marker, two scatter markers.
  ASSERT_EQ(rc.polylines.size(), 1u);
  EXPECT_EQ(rc.polylines[0].size(), 2u);
  EXPECT_EQ(rc.circles.size(), 1u + 2u + 1u);  // lone point, scatter, legend marker of "pts"
  EXPECT_TRUE(rc.has_text("#1"));
  EXPECT_TRUE(rc.has_text("K"));
  EXPECT_TRUE(rc.has_text("boundary"));
  EXPECT_TRUE(rc.has_text("t"));
  EXPECT_TRUE(rc.has_text("layer"));
  const auto notes = figure_notes(f);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0], "1 value <= 0 not shown on the log y axis");
  EXPECT_EQ(notes[1], "1 point without a finite value (n/a) not shown");
  // Higher values are drawn higher (smaller y) on the log axis.
  EXPECT_LT(rc.polylines[0][1].second, rc.polylines[0][0].second);
  // The legend sits below the plot block.
  double legend_y = 0;
  for (const auto& t : rc.texts)
    if (t.s == "K") legend_y = t.y;
  EXPECT_GT(legend_y, f.height);
  EXPECT_GT(figure_total_height(f), f.height);
}

TEST(ReportPlot, GroupsBarsSideBySide) {
  Figure f;
  f.x = {"layer", false, std::nullopt, std::nullopt, true};
  f.y = {"bytes", false, 0.0, std::nullopt, false};
  Series k, v;
  k.kind = v.kind = SeriesKind::kBars;
  k.name = "K";
  v.name = "V";
  k.x = v.x = {0, 1, 2};
  k.y = {10, 20, 30};
  v.y = {30, 20, 10};
  f.series = {k, v};
  RecordingCanvas rc;
  draw_figure(f, rc);
  ASSERT_EQ(rc.rects.size(), 3u + 3u + 2u);  // bars + legend swatches
  // K and V of layer 0 are adjacent and do not overlap; the taller bar reaches higher.
  const auto& k0 = rc.rects[0];
  const auto& v0 = rc.rects[3];
  EXPECT_LE(k0[0] + k0[2], v0[0] + 1e-9);
  EXPECT_LT(v0[1], k0[1]);
  EXPECT_NEAR(k0[1] + k0[3], v0[1] + v0[3], 1e-9);  // common base
}

TEST(ReportPlot, EmptyFigureSaysSo) {
  Figure f;
  f.title = "nothing";
  f.empty_text = "no run yet";
  RecordingCanvas rc;
  draw_figure(f, rc);
  EXPECT_TRUE(rc.has_text("no run yet"));
  EXPECT_TRUE(rc.polylines.empty());
}

TEST(ReportPlot, SvgIsEscapedAndSelfContained) {
  Figure f;
  f.title = "A <b>&\"bad\"</b> title";
  Series s;
  s.name = "<script>alert(1)</script>";
  s.x = {1, 2};
  s.y = {1, 2};
  f.series = {s};
  const std::string svg = figure_to_svg(f, "chart-1");
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart-1\"", 0), 0u);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_NE(svg.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(svg.find("<title>A &lt;b&gt;&amp;&quot;bad&quot;&lt;/b&gt; title</title>"),
            std::string::npos);
  EXPECT_EQ(svg.find("href"), std::string::npos);  // nothing external
  EXPECT_EQ(svg.find("xlink"), std::string::npos);
  EXPECT_NE(svg.find("clipPath id=\"chart-1-clip0\""), std::string::npos);
  EXPECT_EQ(count_of(svg, "<g "), count_of(svg, "</g>"));
  EXPECT_THROW(figure_to_svg(f, "bad id\""), InvalidArgument);
}

// ---- PDF ----

TEST(ReportPdf, WritesAStructurallyValidFile) {
  PdfDocument pdf;
  EXPECT_THROW(pdf.finish(), InvalidArgument);
  const size_t p0 = pdf.add_page();
  pdf_show_text(pdf.content(p0), 50, 800, "Σ_q (a) \\ b — ok", 12, FontFace::kSans, "#112233");
  PdfCanvas c(pdf.content(p0), 40, 700, 0.5);
  c.line(0, 0, 100, 100, Stroke{"#ff0000", 1, true});
  c.circle(10, 10, 3, "#00ff00", nullptr);
  c.push_clip(0, 0, 50, 50);
  c.rect(0, 0, 10, 10, "#0000ff", nullptr);
  c.pop_clip();
  c.pop_clip();  // unbalanced pops are ignored
  const size_t p1 = pdf.add_page();
  pdf.add_outline("Σ_q section", p1, 700);
  pdf.add_outline("Second", p0, 500);
  pdf.set_info("Title (x)", "subject", "kvwb test", "20250101120000");
  const auto bytes = pdf.finish();
  EXPECT_EQ(check_pdf_structure(bytes), 2);
  const std::string s(bytes.begin(), bytes.end());
  EXPECT_NE(s.find("(_q \\(a\\) \\\\ b \x97 ok) Tj"), std::string::npos);
  EXPECT_NE(s.find("/F4 12 Tf (S) Tj"), std::string::npos);  // Sigma through Symbol
  EXPECT_NE(s.find("/Title (Title \\(x\\))"), std::string::npos);
  EXPECT_NE(s.find("<FEFF03A3005F0071"), std::string::npos);  // outline title in UTF-16BE
  EXPECT_NE(s.find("/Count 2 >>"), std::string::npos);
  EXPECT_EQ(count_of(s, " q ") + count_of(s, "\nq "), count_of(s, "Q\n"));
  EXPECT_EQ(pdf_rgb("#ff8000"), "1.000 0.502 0.000");
  EXPECT_EQ(pdf_rgb("red"), "0 0 0");
  EXPECT_EQ(pdf_literal(std::string("a\n(", 3)), "(a\\012\\()");
}

// ---- document ----

TEST(ReportDocument, HtmlIsSelfContainedAndPdfPaginatesLongTables) {
  ReportDocument doc;
  doc.title = "Report <x>";
  doc.synthetic = true;
  doc.synthetic_text = "SYNTHETIC";
  doc.footer = "footer";
  Section s{"sec-a", "Section A", {}};
  Table t;
  t.id = "big";
  t.columns = {"layer", "value", "note"};
  for (int i = 0; i < 150; ++i)
    t.rows.push_back({number_cell(i),
                      number_cell(1.0 / (i + 1), 5, "rows[" + std::to_string(i) + "]"),
                      text_cell(i == 3 ? "<img src=x onerror=alert(1)>" : "ok")});
  s.blocks.push_back(t);
  Figure f;
  f.title = "chart";
  Series sr;
  sr.name = "s";
  sr.x = {1, 2, 3};
  sr.y = {3, 1, 2};
  f.series = {sr};
  s.blocks.push_back(Chart{"chart-x", f, "caption"});
  s.blocks.push_back(Paragraph{"{\n  \"a\": 1\n}", Paragraph::Style::kCode, "code-1"});
  doc.sections = {s};
  const std::string html = render_html(doc);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  expect_lacks(html, {"<script", "<img", "<link", " src=\"", "url(http"});
  expect_contains(html, {"&lt;img src=x onerror=alert(1)&gt;", "id=\"synthetic-banner\"",
                         "<figure class=\"chart\" id=\"chart-x\">\n<svg"});
  EXPECT_NE(html.find("data-key=\"rows[2]\" data-value=\"0.33333333333333331\">0.33333<"),
            std::string::npos);
  EXPECT_NE(html.find("<pre id=\"code-1\"><code>{\n  &quot;a&quot;: 1\n}</code></pre>"),
            std::string::npos);
  EXPECT_EQ(count_of(html, "<tr>"), 151u);
  const auto pdf = render_pdf(doc);
  const int pages = check_pdf_structure(pdf);
  EXPECT_GE(pages, 3);
  const std::string ps(pdf.begin(), pdf.end());
  // The header row is repeated on every page the table spans; every page has the SYNTHETIC footer.
  EXPECT_GE(count_of(ps, "(layer) Tj"), static_cast<size_t>(pages - 1));
  EXPECT_EQ(count_of(ps, "(SYNTHETIC DATA) Tj"), static_cast<size_t>(pages));
  EXPECT_NE(ps.find("(page 1 of " + std::to_string(pages) + ") Tj"), std::string::npos);
}

// ---- the report of a real run and of a sweep store ----

namespace {

ReportInputs small_run_inputs(const std::string& capture, RunConfig cfg) {
  RunOptions opt;
  opt.collect_residuals = true;
  auto r = std::make_shared<RunResult>(run_config(capture, cfg, opt));
  ReportInputs in;
  in.capture = report_capture_identity(capture, r->capture_sha256);
  in.run = run_result_to_json(*r);
  in.run_result = r;
  in.outliers = std::make_shared<OutlierRates>(outlier_rates_from_run(*r, true));
  AnalysisOptions ao;
  in.analysis = std::make_shared<AnalysisResult>(analyze_capture(capture, ao));
  in.generated_by = "test";
  in.generated_at = 1700000000;
  return in;
}

/// data-key -> data-value of every numeric cell of the HTML.
std::multimap<std::string, double> keyed_values(const std::string& html) {
  std::multimap<std::string, double> out;
  const std::regex re("data-key=\"([^\"]+)\" data-value=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator();
       ++it)
    out.emplace((*it)[1], std::stod((*it)[2]));
  return out;
}

}  // namespace

TEST(Report, RunReportHoldsEveryChartAndTheRunsNumbers) {
  const std::string& cap = test::small_demo_capture("report.kvc.h5", 32, 96);
  RunConfig cfg;
  cfg.block_size = 32;
  cfg.boundary = {2};
  const ReportInputs in = small_run_inputs(cap, cfg);
  const ReportDocument doc = build_report_document(in);
  EXPECT_TRUE(doc.synthetic);
  const std::string html = render_html(doc);
  for (const char* id :
       {"chart-layer-bytes", "chart-layer-error", "chart-layer-attention", "chart-layer-attn-out",
        "chart-d-eff", "chart-spectrum-cumulative", "chart-spectrum-eigen", "chart-sigma-q-cond",
        "chart-sigma-q-max-l", "chart-residuals-k", "chart-residuals-v", "chart-kurtosis",
        "chart-outliers"})
    EXPECT_NE(html.find("<figure class=\"chart\" id=\"" + std::string(id) + "\">\n<svg"),
              std::string::npos)
        << id;
  expect_contains(html,
                  {xml_escape(in.run["config"].dump(2)), in.capture.sha256, "boundary (bf16)"});
  // Every keyed number equals the run JSON at its path; every layer-stream's bytes are there.
  const auto values = keyed_values(html);
  size_t checked = 0;
  for (const auto& [key, v] : values) {
    const json* j = at_path(in.run, key);
    ASSERT_NE(j, nullptr) << key;
    ASSERT_TRUE(j->is_number()) << key;
    EXPECT_EQ(v, j->get<double>()) << key;
    ++checked;
  }
  for (size_t i = 0; i < in.run["layers"].size(); ++i)
    for (const char* s : {"k", "v"})
      EXPECT_EQ(values.count("layers[" + std::to_string(i) + "]." + s + ".bytes"), 1u);
  EXPECT_EQ(values.count("ratio_vs_bf16"), 1u);
  EXPECT_EQ(values.count("totals.attention.attn_kl"), 1u);
  EXPECT_GT(checked, 60u);
  const int pages = check_pdf_structure(render_pdf(doc));
  EXPECT_GE(pages, 5);
}

TEST(Report, StoreReportShowsFrontierIntervalsAndVerdicts) {
  const std::string& cap = test::small_demo_capture("report-store.kvc.h5", 32, 64);
  test::TempDir dir;
  const std::string store = dir.file("store");
  const json grid = {
      {"k_codec", {"kakeya_pca"}}, {"bits_k", {2, 3, 4}}, {"fixed", {{"block_size", 32}}}};
  SweepOptions so;
  so.jobs = 2;
  run_sweep(cap, grid, store, so);
  // Add end-to-end totals with intervals and verdicts the way an e2e sweep stores them.
  StoreContents sc = read_result_store(store);
  ASSERT_EQ(sc.records.size(), 3u);
  for (auto& r : sc.records) {
    const double d = 0.1 * (1 + r["cell"].get<int>());
    r["result"]["totals"]["e2e"] = {{"abs_delta_ppl", d},
                                    {"abs_delta_ppl_ci", {d * 0.5, d * 1.5}},
                                    {"delta_ppl", d},
                                    {"verdict", r["cell"] == 0 ? "pass" : "inconclusive"},
                                    {"passages", 8}};
  }
  {
    ReportInputs in;
    in.capture = report_capture_identity(cap);
    in.store = ReportStore{store, sc, default_report_metrics(sc.records)};
    ASSERT_EQ(in.store->metrics,
              (std::vector<std::string>{"attn_out_rel_err", "e2e.abs_delta_ppl"}));
    const auto cell = default_report_cell(sc.records, "e2e.abs_delta_ppl");
    ASSERT_TRUE(cell.has_value());
    for (const auto& r : sc.records)
      if (r["cell"] == *cell) in.run = r["result"];
    ASSERT_TRUE(in.run.is_object());
    const std::string html = render_html(build_report_document(in));
    expect_contains(
        html, {"id=\"chart-pareto-attn-out-rel-err\"", "id=\"chart-pareto-e2e-abs-delta-ppl\"",
               "Bars: the recorded confidence intervals.", "<th>e2e verdict</th>", ">inconclusive<",
               "<th>e2e.verdict</th>", "<th class=\"num\">e2e.passages</th>"});
    EXPECT_NE(html.find("id=\"e2e-table\""), std::string::npos);  // the detailed cell's e2e totals
    EXPECT_NE(html.find("(matches)"), std::string::npos);
    check_pdf_structure(render_pdf(build_report_document(in)));
  }
  // compute_report_inputs: the request's rules and the store's capture.
  ReportRequest req;
  req.capture_path = cap;
  EXPECT_THROW(compute_report_inputs(req), InvalidArgument);
  req.store_dir = store;
  req.analysis = false;
  req.cell = 1;
  const ReportInputs in = compute_report_inputs(req);
  for (const auto& r : sc.records)
    if (r["cell"] == 1) {
      EXPECT_EQ(in.run["config_hash"], r["config_hash"]);
    }
  EXPECT_NE(in.run_origin.find("sweep cell 1"), std::string::npos);
  req.cell = 7;
  EXPECT_THROW(compute_report_inputs(req), InvalidArgument);
  {
    // A configuration run; above the residual budget the distribution charts are left out.
    ReportRequest small;
    small.capture_path = cap;
    small.config = RunConfig{};
    small.config->block_size = 32;
    small.analysis = false;
    small.residual_budget_values = 0;
    const ReportInputs ci = compute_report_inputs(small);
    EXPECT_FALSE(ci.outliers);
    const std::string html = render_html(build_report_document(ci));
    expect_lacks(html, {"id=\"chart-residuals-k\"", "id=\"chart-outliers\""});
    expect_contains(html,
                    {"did not keep the Kakeya residuals", "The capture analysis was left out"});
    small.residual_budget_values = uint64_t{1} << 26;
    const ReportInputs full = compute_report_inputs(small);
    ASSERT_TRUE(full.outliers);
    json a = full.run, b = ci.run;  // the numbers do not depend on keeping the residuals
    a.erase("seconds");
    b.erase("seconds");
    EXPECT_EQ(a, b);
  }
  req.cell.reset();
  req.metrics = {"no_such_metric"};
  EXPECT_THROW(compute_report_inputs(req), InvalidArgument);
  req.metrics.clear();
  req.config = RunConfig{};
  EXPECT_THROW(compute_report_inputs(req), InvalidArgument);  // a config and a store
  req.config.reset();
  req.capture_path = test::small_demo_capture("report-other.kvc.h5", 32, 48);
  EXPECT_THROW(compute_report_inputs(req), CaptureChanged);
}

TEST(Report, BundleSectionShowsVerdictErrorsAndRoundTrips) {
  ReportInputs in;
  in.capture.file_name = "c.kvc.h5";
  in.capture.sha256 = std::string(64, 'a');
  BundleCheckReport r;
  r.ok = false;
  r.errors = {"sigma_q.safetensors: layer 3 <L> not lower triangular"};
  r.warnings = {"deploy.env: missing"};
  r.checks = {"MANIFEST.json: version 1"};
  r.roundtrip = {{3, 0, 1e-9, 2e-9, 3e-9}, {3, 1, 5e-5, 1e-9, 1e-9}};
  in.bundle = ReportBundle{"/b", "given with --bundle", r};
  const std::string html = render_html(build_report_document(in));
  EXPECT_NE(html.find("<td class=\"bad\">FAIL</td>"), std::string::npos);
  EXPECT_NE(html.find("Error: sigma_q.safetensors: layer 3 &lt;L&gt; not lower triangular"),
            std::string::npos);
  EXPECT_NE(html.find("Warning: deploy.env: missing"), std::string::npos);
  EXPECT_EQ(count_of(html, ">yes</td>"), 1u);
  EXPECT_EQ(count_of(html, ">NO</td>"), 1u);
  // Without a run: the run sections say so instead of failing.
  expect_contains(html, {"No run in this report.", "No analysis in this report."});
}

TEST(Report, WritesBothFilesAtomically) {
  ReportDocument doc;
  doc.title = "t";
  doc.footer = "f";
  test::TempDir dir;
  const std::string html = dir.file("r.html"), pdf = dir.file("r.pdf");
  write_report(doc, html, pdf);
  const auto h = io::read_file(html), p = io::read_file(pdf);
  EXPECT_EQ(std::string(h.begin(), h.begin() + 15), "<!DOCTYPE html>");
  EXPECT_EQ(check_pdf_structure(p), 1);
  EXPECT_THROW(write_report(doc, "", ""), InvalidArgument);
  EXPECT_THROW(write_report(doc, dir.file("missing/r.html"), ""), IoError);
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}
