#include "sessions/report/pdf.h"

#include <cmath>
#include <cstdio>

#include "base/errors.h"

namespace kvwb::sessions::report {

namespace {

std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  std::string s = b;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string pdf_rgb(const std::string& hex) {
  if (hex.size() != 7 || hex[0] != '#') return "0 0 0";
  double c[3];
  for (int i = 0; i < 3; ++i) {
    const int hi = hex_digit(hex[1 + 2 * i]), lo = hex_digit(hex[2 + 2 * i]);
    if (hi < 0 || lo < 0) return "0 0 0";
    c[i] = (hi * 16 + lo) / 255.0;
  }
  char b[64];
  std::snprintf(b, sizeof b, "%.3f %.3f %.3f", c[0], c[1], c[2]);
  return b;
}

std::string pdf_literal(std::string_view bytes) {
  std::string o = "(";
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == '(' || c == ')') {
      o += '\\';
      o += ch;
    } else if (c < 32 || c == 127) {
      char b[8];
      std::snprintf(b, sizeof b, "\\%03o", c);
      o += b;
    } else {
      o += ch;
    }
  }
  return o + ")";
}

std::string pdf_text_string(std::string_view utf8) {
  const auto cps = decode_utf8(utf8);
  bool ascii = true;
  for (char32_t c : cps) ascii = ascii && c >= 32 && c < 127;
  if (ascii) return pdf_literal(utf8);
  std::string o = "<FEFF";
  auto unit = [&o](unsigned u) {
    char b[8];
    std::snprintf(b, sizeof b, "%04X", u & 0xFFFF);
    o += b;
  };
  for (char32_t c : cps) {
    if (c < 32) c = ' ';
    if (c >= 0x10000) {
      const char32_t v = c - 0x10000;
      unit(0xD800 + (v >> 10));
      unit(0xDC00 + (v & 0x3FF));
    } else {
      unit(c);
    }
  }
  return o + ">";
}

void pdf_show_text(std::string& out, double x, double y, std::string_view utf8, double size,
                   FontFace face, const std::string& color, bool vertical) {
  const auto runs = pdf_glyph_runs(utf8, face);
  if (runs.empty()) return;
  out += "BT " + pdf_rgb(color) + " rg ";
  if (vertical)
    out += "0 1 -1 0 " + num(x) + " " + num(y) + " Tm ";
  else
    out += "1 0 0 1 " + num(x) + " " + num(y) + " Tm ";
  for (const auto& r : runs)
    out += "/F" + std::to_string(r.font + 1) + " " + num(size) + " Tf " + pdf_literal(r.bytes) +
           " Tj ";
  out += "ET\n";
}

// ---- document ----

PdfDocument::PdfDocument(double page_width, double page_height)
    : width_(page_width), height_(page_height) {}

size_t PdfDocument::add_page() {
  pages_.emplace_back();
  return pages_.size() - 1;
}

std::string& PdfDocument::content(size_t index) {
  if (index >= pages_.size())
    throw InvalidArgument("PdfDocument: no page " + std::to_string(index));
  return pages_[index];
}

void PdfDocument::add_outline(const std::string& title, size_t index, double y) {
  outline_.push_back({title, index, y});
}

void PdfDocument::set_info(const std::string& title, const std::string& subject,
                           const std::string& creator, const std::string& creation_utc) {
  title_ = title, subject_ = subject, creator_ = creator, created_ = creation_utc;
}

std::vector<uint8_t> PdfDocument::finish() const {
  if (pages_.empty()) throw InvalidArgument("PdfDocument: a PDF needs at least one page");
  // Object numbers: fixed ones first, then per page (page, contents), then outline items.
  const int kCatalog = 1, kPages = 2, kResources = 3, kFont0 = 4, kInfo = 8, kOutlines = 9;
  const int first_page = 10;
  auto page_obj = [&](size_t i) { return first_page + static_cast<int>(2 * i); };
  const int first_outline = first_page + static_cast<int>(2 * pages_.size());
  const int n_objects = first_outline + static_cast<int>(outline_.size()) - 1;

  std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<size_t> offsets(n_objects + 1, 0);
  auto object = [&](int n, const std::string& body) {
    offsets[n] = out.size();
    out += std::to_string(n) + " 0 obj\n" + body + "\nendobj\n";
  };
  auto ref = [](int n) { return std::to_string(n) + " 0 R"; };

  std::string catalog = "<< /Type /Catalog /Pages " + ref(kPages);
  if (!outline_.empty()) catalog += " /Outlines " + ref(kOutlines) + " /PageMode /UseOutlines";
  object(kCatalog, catalog + " >>");
  std::string kids;
  for (size_t i = 0; i < pages_.size(); ++i) kids.append(i ? " " : "").append(ref(page_obj(i)));
  object(kPages,
         "<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(pages_.size()) + " >>");
  object(kResources, "<< /Font << /F1 " + ref(kFont0) + " /F2 " + ref(kFont0 + 1) + " /F3 " +
                         ref(kFont0 + 2) + " /F4 " + ref(kFont0 + 3) +
                         " >> /ProcSet [/PDF /Text] >>");
  const char* base[] = {"Helvetica", "Helvetica-Bold", "Courier"};
  for (int i = 0; i < 3; ++i)
    object(kFont0 + i, std::string("<< /Type /Font /Subtype /Type1 /BaseFont /") + base[i] +
                           " /Encoding /WinAnsiEncoding >>");
  object(kFont0 + 3, "<< /Type /Font /Subtype /Type1 /BaseFont /Symbol >>");
  std::string info = "<< /Producer (KV Workbench)";
  if (!title_.empty()) info += " /Title " + pdf_text_string(title_);
  if (!subject_.empty()) info += " /Subject " + pdf_text_string(subject_);
  if (!creator_.empty()) info += " /Creator " + pdf_text_string(creator_);
  if (!created_.empty()) info += " /CreationDate (D:" + created_ + "Z)";
  object(kInfo, info + " >>");
  if (outline_.empty()) {
    object(kOutlines, "<< /Type /Outlines /Count 0 >>");
  } else {
    object(kOutlines, "<< /Type /Outlines /First " + ref(first_outline) + " /Last " +
                          ref(first_outline + static_cast<int>(outline_.size()) - 1) + " /Count " +
                          std::to_string(outline_.size()) + " >>");
  }
  const std::string media = "[0 0 " + num(width_) + " " + num(height_) + "]";
  for (size_t i = 0; i < pages_.size(); ++i) {
    object(page_obj(i), "<< /Type /Page /Parent " + ref(kPages) + " /MediaBox " + media +
                            " /Resources " + ref(kResources) + " /Contents " +
                            ref(page_obj(i) + 1) + " >>");
    object(page_obj(i) + 1, "<< /Length " + std::to_string(pages_[i].size()) + " >>\nstream\n" +
                                pages_[i] + "\nendstream");
  }
  for (size_t k = 0; k < outline_.size(); ++k) {
    const auto& o = outline_[k];
    const size_t page = std::min(o.page, pages_.size() - 1);
    std::string item = "<< /Title " + pdf_text_string(o.title) + " /Parent " + ref(kOutlines);
    if (k > 0) item += " /Prev " + ref(first_outline + static_cast<int>(k) - 1);
    if (k + 1 < outline_.size()) item += " /Next " + ref(first_outline + static_cast<int>(k) + 1);
    item += " /Dest [" + ref(page_obj(page)) + " /XYZ 0 " + num(o.y) + " 0] >>";
    object(first_outline + static_cast<int>(k), item);
  }
  const size_t xref = out.size();
  out += "xref\n0 " + std::to_string(n_objects + 1) + "\n0000000000 65535 f \n";
  for (int n = 1; n <= n_objects; ++n) {
    char b[24];
    std::snprintf(b, sizeof b, "%010zu 00000 n \n", offsets[n]);
    out += b;
  }
  out += "trailer\n<< /Size " + std::to_string(n_objects + 1) + " /Root " + ref(kCatalog) +
         " /Info " + ref(kInfo) + " >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  return std::vector<uint8_t>(out.begin(), out.end());
}

// ---- canvas ----

PdfCanvas::PdfCanvas(std::string& content, double left, double top, double scale)
    : out_(content), left_(left), top_(top), scale_(scale) {}

void PdfCanvas::set_stroke(const Stroke& s) {
  out_ +=
      pdf_rgb(s.color) + " RG " + num(std::max(0.1, s.width * scale_)) + " w " +
      (s.dashed ? "[" + num(5 * scale_) + " " + num(3 * scale_) + "] 0 d" : std::string("[] 0 d")) +
      " 1 J 1 j\n";
}

void PdfCanvas::line(double x1, double y1, double x2, double y2, const Stroke& s) {
  set_stroke(s);
  out_ += num(X(x1)) + " " + num(Y(y1)) + " m " + num(X(x2)) + " " + num(Y(y2)) + " l S\n";
}

void PdfCanvas::polyline(const std::vector<std::pair<double, double>>& pts, const Stroke& s) {
  if (pts.size() < 2) return;
  set_stroke(s);
  for (size_t i = 0; i < pts.size(); ++i)
    out_ += num(X(pts[i].first)) + " " + num(Y(pts[i].second)) + (i ? " l\n" : " m\n");
  out_ += "S\n";
}

void PdfCanvas::rect(double x, double y, double w, double h, const std::string& fill,
                     const Stroke* s) {
  if (fill.empty() && !s) return;
  if (!fill.empty()) out_ += pdf_rgb(fill) + " rg\n";
  if (s) set_stroke(*s);
  out_ += num(X(x)) + " " + num(Y(y + h)) + " " + num(w * scale_) + " " + num(h * scale_) + " re " +
          (fill.empty() ? "S"
           : s          ? "B"
                        : "f") +
          "\n";
}

void PdfCanvas::circle(double cx, double cy, double r, const std::string& fill, const Stroke* s) {
  if (fill.empty() && !s) return;
  if (!fill.empty()) out_ += pdf_rgb(fill) + " rg\n";
  if (s) set_stroke(*s);
  const double x = X(cx), y = Y(cy), R = r * scale_, k = 0.5523 * R;
  out_ += num(x + R) + " " + num(y) + " m " + num(x + R) + " " + num(y + k) + " " + num(x + k) +
          " " + num(y + R) + " " + num(x) + " " + num(y + R) + " c " + num(x - k) + " " +
          num(y + R) + " " + num(x - R) + " " + num(y + k) + " " + num(x - R) + " " + num(y) +
          " c " + num(x - R) + " " + num(y - k) + " " + num(x - k) + " " + num(y - R) + " " +
          num(x) + " " + num(y - R) + " c " + num(x + k) + " " + num(y - R) + " " + num(x + R) +
          " " + num(y - k) + " " + num(x + R) + " " + num(y) + " c h " +
          (fill.empty() ? "S"
           : s          ? "B"
                        : "f") +
          "\n";
}

void PdfCanvas::text(double x, double y, std::string_view utf8, double size, TextAnchor anchor,
                     bool bold, const std::string& color, bool vertical) {
  const FontFace face = bold ? FontFace::kSansBold : FontFace::kSans;
  const double sz = size * scale_;
  const double w = text_width(utf8, sz, face);
  const double shift = anchor == TextAnchor::kMiddle ? w / 2 : anchor == TextAnchor::kEnd ? w : 0;
  if (vertical)
    pdf_show_text(out_, X(x), Y(y) - shift, utf8, sz, face, color, true);
  else
    pdf_show_text(out_, X(x) - shift, Y(y), utf8, sz, face, color, false);
}

void PdfCanvas::push_clip(double x, double y, double w, double h) {
  ++clip_depth_;
  out_ += "q " + num(X(x)) + " " + num(Y(y + h)) + " " + num(w * scale_) + " " + num(h * scale_) +
          " re W n\n";
}

void PdfCanvas::pop_clip() {
  if (clip_depth_ == 0) return;
  --clip_depth_;
  out_ += "Q\n";
}

}  // namespace kvwb::sessions::report
