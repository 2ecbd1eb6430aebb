#include "sessions/report/text.h"

#include <cmath>
#include <cstdio>
#include <utility>

namespace kvwb::sessions::report {

namespace {

#include "sessions/report/pdf_font_metrics.inc"

constexpr char32_t kReplacement = 0xFFFD;

/// WinAnsiEncoding bytes 0x80..0x9F that are not Latin-1 code points.
struct WinAnsiHigh {
  char32_t unicode;
  uint8_t code;
};
constexpr WinAnsiHigh kWinAnsiHigh[] = {
    {0x20AC, 0x80}, {0x201A, 0x82}, {0x0192, 0x83}, {0x201E, 0x84}, {0x2026, 0x85}, {0x2020, 0x86},
    {0x2021, 0x87}, {0x02C6, 0x88}, {0x2030, 0x89}, {0x0160, 0x8A}, {0x2039, 0x8B}, {0x0152, 0x8C},
    {0x017D, 0x8E}, {0x2018, 0x91}, {0x2019, 0x92}, {0x201C, 0x93}, {0x201D, 0x94}, {0x2022, 0x95},
    {0x2013, 0x96}, {0x2014, 0x97}, {0x02DC, 0x98}, {0x2122, 0x99}, {0x0161, 0x9A}, {0x203A, 0x9B},
    {0x0153, 0x9C}, {0x017E, 0x9E}, {0x0178, 0x9F}};

/// WinAnsi byte of a code point, 0 when it has none.
uint8_t winansi_code(char32_t cp) {
  if (cp >= 0x20 && cp <= 0x7E) return static_cast<uint8_t>(cp);
  if (cp >= 0xA0 && cp <= 0xFF) return static_cast<uint8_t>(cp);
  for (const auto& h : kWinAnsiHigh)
    if (h.unicode == cp) return h.code;
  return 0;
}

const SymbolGlyph* symbol_glyph(char32_t cp) {
  for (const auto& g : kSymbolGlyphs)
    if (g.unicode == cp) return &g;
  return nullptr;
}

/// Look-alike substitutions for code points neither WinAnsi nor Symbol has.
std::u32string substitute(char32_t cp) {
  if (cp >= 0x2080 && cp <= 0x2089)
    return std::u32string(1, U'0' + (cp - 0x2080));  // subscript digits
  if (cp >= 0x2074 && cp <= 0x2079)
    return std::u32string(1, U'4' + (cp - 0x2074));  // superscripts 4-9
  if (cp >= 0x0300 && cp <= 0x036F) return U"";      // combining marks: the base letter stays
  switch (cp) {
    case 0x1D40:
      return U"T";
    case 0x2070:
      return U"0";
    case 0x207B:
      return U"-";
    case 0x2016:
      return U"||";
    case 0x2009:
    case 0x200A:
    case 0x202F:
    case 0x2002:
    case 0x2003:
    case 0x2007:
      return U" ";
    case 0x2010:
    case 0x2011:
      return U"-";
    case 0x2032:
      return U"'";
    case 0x2033:
      return U"\"";
    case 0x2713:
    case 0x2714:
      return U"ok";
    case 0x2717:
    case 0x2718:
      return U"x";
    case 0x00A0:
      return U" ";
    case '\t':
      return U" ";
    default:
      return U"?";
  }
}

uint16_t face_width(FontFace face, uint8_t code) {
  if (face == FontFace::kMono) return 600;
  if (code < 32) return 0;
  const uint16_t w =
      face == FontFace::kSansBold ? kHelveticaBoldWidths[code - 32] : kHelveticaWidths[code - 32];
  return w ? w : 556;
}

void append_glyph(std::vector<PdfGlyphRun>& runs, int font, uint8_t code, double width) {
  if (runs.empty() || runs.back().font != font) runs.push_back({font, {}, 0});
  runs.back().bytes.push_back(static_cast<char>(code));
  runs.back().width_em += width;
}

void add_code_point(std::vector<PdfGlyphRun>& runs, char32_t cp, FontFace face, int depth) {
  const int face_font = face == FontFace::kSansBold ? 1 : face == FontFace::kMono ? 2 : 0;
  if (const uint8_t c = winansi_code(cp); c != 0 && cp != 0xA0) {
    append_glyph(runs, face_font, c, face_width(face, c));
    return;
  }
  if (const SymbolGlyph* g = symbol_glyph(cp)) {
    append_glyph(runs, 3, g->code, face == FontFace::kMono ? 600 : g->width);
    return;
  }
  if (depth > 0) {  // a substitution must not recurse
    append_glyph(runs, face_font, '?', face_width(face, '?'));
    return;
  }
  for (char32_t s : substitute(cp)) add_code_point(runs, s, face, depth + 1);
}

/// Calls `f` with each '\n'-separated line of `text` in order (no newline; "" is one empty line).
template <class F>
void for_each_line(std::string_view text, F&& f) {
  size_t start = 0;
  while (true) {
    const size_t nl = text.find('\n', start);
    f(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
}

}  // namespace

std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0, min = 0;
    if ((b0 & 0xE0) == 0xC0) {
      len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    bool ok = i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80)
        ok = false;
      else
        cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string encode_utf8(char32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement;
  std::string o;
  if (cp < 0x80) {
    o.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    o.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    o.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    o.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    o.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    o.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    o.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    o.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    o.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    o.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return o;
}

std::string xml_escape(std::string_view text) {
  std::string o;
  o.reserve(text.size() + 16);
  for (char32_t cp : decode_utf8(text)) {
    switch (cp) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE || cp == 0xFFFF ||
            cp == 0x7F)
          cp = kReplacement;
        o += encode_utf8(cp);
    }
  }
  return o;
}

std::vector<PdfGlyphRun> pdf_glyph_runs(std::string_view utf8, FontFace face) {
  std::vector<PdfGlyphRun> runs;
  for (char32_t cp : decode_utf8(utf8)) {
    if (cp == '\n' || cp == '\r') cp = ' ';
    add_code_point(runs, cp, face, 0);
  }
  return runs;
}

double text_width(std::string_view utf8, double size, FontFace face) {
  double em = 0;
  for (const auto& r : pdf_glyph_runs(utf8, face)) em += r.width_em;
  return em * size / 1000.0;
}

std::vector<std::string> wrap_text(std::string_view text, double size, FontFace face,
                                   double max_width) {
  std::vector<std::string> lines;
  for_each_line(text, [&](std::string_view para) {
    // Greedy fill of one paragraph.
    std::string line;
    size_t i = 0;
    auto flush = [&] {
      lines.push_back(line);
      line.clear();
    };
    while (i < para.size()) {
      size_t j = para.find(' ', i);
      if (j == std::string_view::npos) j = para.size();
      const std::string word(para.substr(i, j - i));
      const std::string candidate = line.empty() ? word : line + " " + word;
      if (text_width(candidate, size, face) <= max_width || (line.empty() && word.empty())) {
        line = candidate;
      } else if (!line.empty() && text_width(word, size, face) <= max_width) {
        flush();
        line = word;
      } else {
        // The word alone is too wide: break it by code points.
        if (!line.empty()) flush();
        std::string piece;
        for (char32_t cp : decode_utf8(word)) {
          const std::string next = piece + encode_utf8(cp);
          if (!piece.empty() && text_width(next, size, face) > max_width) {
            line = piece;
            flush();
            piece = encode_utf8(cp);
          } else {
            piece = next;
          }
        }
        line = piece;
      }
      i = j + 1;
    }
    flush();
  });
  return lines;
}

std::vector<std::string> wrap_code(std::string_view text, double size, FontFace face,
                                   double max_width) {
  std::vector<std::string> lines;
  for_each_line(text, [&](std::string_view line) {
    const size_t indent = std::min(line.find_first_not_of(' '), line.size());
    const std::string pad(std::min<size_t>(indent, 40), ' ');
    std::string cur;
    for (char32_t cp : decode_utf8(line)) {
      const std::string next = cur + encode_utf8(cp);
      if (text_width(next, size, face) > max_width && cur.size() > pad.size()) {
        lines.push_back(cur);
        cur = pad + encode_utf8(cp);
      } else {
        cur = next;
      }
    }
    lines.push_back(cur);
  });
  return lines;
}

std::string format_number(double v, int significant) {
  if (!std::isfinite(v)) return "n/a";
  if (v == 0) return "0";
  if (std::fabs(v) < 1e15 && v == std::floor(v)) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
  }
  char b[64];
  std::snprintf(b, sizeof b, "%.*g", significant, v);
  return b;
}

}  // namespace kvwb::sessions::report
