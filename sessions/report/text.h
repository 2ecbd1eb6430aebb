#pragma once
// Text helpers of the report writers: UTF-8 decoding (invalid bytes become U+FFFD), escaping for
// HTML/SVG (every text the report shows passes through xml_escape), and the metrics of the PDF
// base-14 fonts (Helvetica, Helvetica-Bold, Courier with WinAnsiEncoding; Symbol for Greek letters
// and mathematical signs) that both the SVG charts (laid out in the metric-compatible
// Helvetica/Arial/Liberation Sans) and the PDF writer use. No Qt.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvwb::sessions::report {

/// Code points of `utf8`; a malformed or truncated sequence yields one U+FFFD per bad byte.
std::vector<char32_t> decode_utf8(std::string_view utf8);
/// UTF-8 encoding of one code point (surrogates and values > U+10FFFF become U+FFFD).
std::string encode_utf8(char32_t cp);

/// `text` escaped for HTML/XML character data and attribute values (& < > " '), with malformed
/// UTF-8 and the control characters XML 1.0 forbids (all below U+0020 except tab, LF, CR, and
/// U+FFFE/U+FFFF) replaced by U+FFFD. The result is always valid UTF-8.
std::string xml_escape(std::string_view text);

/// Font faces of the report (PDF base-14 names in brackets).
enum class FontFace {
  kSans,      // Helvetica
  kSansBold,  // Helvetica-Bold
  kMono,      // Courier
};

/// A run of text in one PDF font: `font` 0 Helvetica, 1 Helvetica-Bold, 2 Courier (all
/// WinAnsiEncoding), 3 Symbol; `bytes` in that font's encoding; advance width in 1/1000 em.
struct PdfGlyphRun {
  int font = 0;
  std::string bytes;
  double width_em = 0;
};

/// The text as PDF font runs: WinAnsi characters in the face's font, Greek letters and the
/// mathematical signs of the Symbol font (Σ, λ, ≥, →, −, ·…) in Symbol, a few look-alikes
/// substituted (‖ → ||, subscript digits → digits, thin/no-break spaces → space), anything else
/// as '?'. Adjacent characters of the same font share a run.
std::vector<PdfGlyphRun> pdf_glyph_runs(std::string_view utf8, FontFace face);

/// Advance width of `utf8` at `size` (points or pixels) in `face`, as the PDF writer lays it out.
double text_width(std::string_view utf8, double size, FontFace face);

/// `text` broken into lines no wider than `max_width` at `size` in `face`: at spaces, or inside a
/// word that alone is wider than the line. Explicit '\n' starts a new line. Never returns an empty
/// vector (an empty text gives one empty line).
std::vector<std::string> wrap_text(std::string_view text, double size, FontFace face,
                                   double max_width);

/// Preformatted `text` (code, JSON) as lines: every '\n' ends a line, leading spaces are kept, and
/// a line wider than `max_width` continues on the next line, indented like the original.
std::vector<std::string> wrap_code(std::string_view text, double size, FontFace face,
                                   double max_width);

/// `v` in a fixed notation for tables and tick labels: NaN/Inf as "n/a", integers exactly,
/// otherwise `significant` significant digits (%.*g), "-0" as "0".
std::string format_number(double v, int significant = 4);

}  // namespace kvwb::sessions::report
