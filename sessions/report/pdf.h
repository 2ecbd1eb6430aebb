#pragma once
// A minimal PDF 1.4 writer for the report: pages with uncompressed content streams, the base-14
// fonts Helvetica, Helvetica-Bold, Courier (WinAnsiEncoding) and Symbol (nothing embedded, every
// PDF reader has them), vector drawing, document outline (bookmarks) and document information.
// Text goes through pdf_glyph_runs (text.h), so what the PDF shows is what text_width measured.
// The output is a complete file (header, objects, cross-reference table, trailer) that PDF readers
// and pdfinfo/pdftoppm accept. No Qt, no external tool.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sessions/report/plot.h"
#include "sessions/report/text.h"

namespace kvwb::sessions::report {

/// A4 portrait in points (1/72 inch).
inline constexpr double kA4Width = 595.28;
inline constexpr double kA4Height = 841.89;

class PdfDocument {
 public:
  explicit PdfDocument(double page_width = kA4Width, double page_height = kA4Height);

  /// Appends an empty page and returns its index (0-based).
  size_t add_page();
  size_t page_count() const { return pages_.size(); }
  double page_width() const { return width_; }
  double page_height() const { return height_; }
  /// The content stream of page `index` (PDF operators; y grows upwards from the bottom edge).
  std::string& content(size_t index);

  /// A bookmark to page `index` at height `y` (PDF coordinates), at the top level of the outline.
  void add_outline(const std::string& title, size_t index, double y);
  /// Document information (Title, Author, Subject, Creator, Producer); `creation_utc` as
  /// "YYYYMMDDHHmmSS" ("" = none).
  void set_info(const std::string& title, const std::string& subject, const std::string& creator,
                const std::string& creation_utc);

  /// The whole file. Throws InvalidArgument when there is no page.
  std::vector<uint8_t> finish() const;

 private:
  struct Outline {
    std::string title;
    size_t page;
    double y;
  };
  double width_, height_;
  std::vector<std::string> pages_;
  std::vector<Outline> outline_;
  std::string title_, subject_, creator_, created_;
};

/// "r g b" (0..1, 3 decimals) of a "#rrggbb" colour; black for anything else.
std::string pdf_rgb(const std::string& hex);
/// `bytes` as a PDF literal string "(...)" with \ ( ) and non-printable bytes escaped.
std::string pdf_literal(std::string_view bytes);
/// PDF text string for outline titles and document information: "(...)" for ASCII, else UTF-16BE
/// with a byte order mark as "<FEFF...>".
std::string pdf_text_string(std::string_view utf8);

/// Appends the operators that show `utf8` with its baseline start at (x, y) (PDF coordinates),
/// font runs switching between the face's font and Symbol. `vertical` rotates it 90° CCW.
void pdf_show_text(std::string& out, double x, double y, std::string_view utf8, double size,
                   FontFace face, const std::string& color, bool vertical = false);

/// A Canvas drawing into one page's content stream: figure units (origin top-left, y down) are
/// mapped to PDF points by x' = left + scale·x, y' = top − scale·y.
class PdfCanvas : public Canvas {
 public:
  PdfCanvas(std::string& content, double left, double top, double scale);
  void line(double x1, double y1, double x2, double y2, const Stroke& s) override;
  void polyline(const std::vector<std::pair<double, double>>& points, const Stroke& s) override;
  void rect(double x, double y, double w, double h, const std::string& fill,
            const Stroke* s) override;
  void circle(double cx, double cy, double r, const std::string& fill, const Stroke* s) override;
  void text(double x, double y, std::string_view utf8, double size, TextAnchor anchor, bool bold,
            const std::string& color, bool vertical) override;
  void push_clip(double x, double y, double w, double h) override;
  void pop_clip() override;

 private:
  double X(double x) const { return left_ + scale_ * x; }
  double Y(double y) const { return top_ - scale_ * y; }
  void set_stroke(const Stroke& s);
  std::string& out_;
  double left_, top_, scale_;
  int clip_depth_ = 0;
};

}  // namespace kvwb::sessions::report
