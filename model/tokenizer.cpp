#include "model/tokenizer.h"

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <queue>

#include "base/errors.h"
#include "io/atomic_file.h"

namespace kvwb::model {

namespace {

constexpr const char* kSpacePiece = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

/// "<0xNN>" -> NN, or -1.
int byte_piece_value(const std::string& s) {
  if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int a = hex(s[3]), b = hex(s[4]);
  return (a < 0 || b < 0) ? -1 : a * 16 + b;
}

/// Length of the UTF-8 sequence starting with byte c (1 for a stray continuation byte).
size_t utf8_len(unsigned char c) {
  if (c >= 0xF0 && c < 0xF8) return 4;
  if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
  if (c >= 0xC0) return 2;
  return 1;
}

}  // namespace

Tokenizer::Tokenizer(std::vector<Piece> pieces, const std::string& source) : pieces_(std::move(pieces)) {
  if (pieces_.empty()) throw InvalidArgument(source + ": the tokenizer has no pieces");
  std::fill(std::begin(byte_id_), std::end(byte_id_), -1);
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    const int id = static_cast<int>(i);
    if (p.type == 1) {
      unk_id_ = id;
      continue;
    }
    if (p.type == 2) continue;
    const int b = byte_piece_value(p.text);
    if (b >= 0) {
      if (byte_id_[b] < 0) byte_id_[b] = id;
      continue;
    }
    lookup_.emplace(p.text, id);  // the first id wins for a duplicated piece
  }
}

Tokenizer Tokenizer::from_tokens_json(const std::string& path) {
  const auto bytes = io::read_file(path);
  const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_array())
    throw FormatError(path + ": expected a JSON array of {\"id\", \"piece\", \"score\", \"type\"} objects");
  std::vector<Piece> pieces(j.size());
  std::vector<bool> seen(j.size(), false);
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    const std::string where = path + ": entry " + std::to_string(i);
    if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer() || !e.contains("piece") ||
        !e["piece"].is_string())
      throw FormatError(where + ": expected an object with an integer \"id\" and a string \"piece\"");
    const int64_t id = e["id"].get<int64_t>();
    if (id < 0 || static_cast<size_t>(id) >= j.size() || seen[static_cast<size_t>(id)])
      throw FormatError(where + ": id " + std::to_string(id) + " is out of range 0.." + std::to_string(j.size() - 1) +
                        " or repeated");
    seen[static_cast<size_t>(id)] = true;
    Piece& p = pieces[static_cast<size_t>(id)];
    p.text = e["piece"].get<std::string>();
    if (e.contains("score")) {
      if (!e["score"].is_number()) throw FormatError(where + ": \"score\" must be a number");
      p.score = e["score"].get<float>();
    }
    if (e.contains("type")) {
      if (!e["type"].is_number_integer()) throw FormatError(where + ": \"type\" must be an integer");
      p.type = e["type"].get<int>();
    }
  }
  return Tokenizer(std::move(pieces), path);
}

Tokenizer Tokenizer::from_llama2c(const std::string& path, int vocab_size) {
  const auto b = io::read_file(path);
  size_t off = 0;
  auto take = [&](void* dst, size_t n, const std::string& what) {
    if (b.size() - off < n)
      throw FormatError(path + ": truncated at byte " + std::to_string(off) + " while reading " + what);
    std::memcpy(dst, b.data() + off, n);
    off += n;
  };
  if (vocab_size <= 0) throw InvalidArgument(path + ": vocab_size must be > 0");
  int32_t max_len = 0;
  take(&max_len, 4, "max_token_length");
  std::vector<Piece> pieces(static_cast<size_t>(vocab_size));
  for (int i = 0; i < vocab_size; ++i) {
    Piece& p = pieces[static_cast<size_t>(i)];
    int32_t len = 0;
    take(&p.score, 4, "the score of token " + std::to_string(i));
    take(&len, 4, "the length of token " + std::to_string(i));
    if (len < 0 || len > 1 << 20) throw FormatError(path + ": token " + std::to_string(i) + " has length " + std::to_string(len));
    std::string s(static_cast<size_t>(len), '\0');
    take(s.data(), s.size(), "token " + std::to_string(i));
    std::string t;
    for (char c : s) {
      if (c == ' ') t += kSpacePiece;
      else t.push_back(c);
    }
    p.text = t;
    p.type = i == 0 ? 1 : (i <= 2 ? 2 : 0);
  }
  return Tokenizer(std::move(pieces), path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  struct Node {
    std::string text;
    int32_t id;
    int prev, next;
    uint32_t ver;
    bool alive;
  };
  std::vector<Node> nodes;
  if (text.empty()) return {};
  nodes.reserve(text.size() + 1);
  auto push_piece = [&](std::string s) {
    auto it = lookup_.find(s);
    if (it != lookup_.end()) {
      nodes.push_back({std::move(s), it->second, 0, 0, 0, true});
      return;
    }
    for (unsigned char c : s) {  // byte fallback
      const int32_t id = byte_id_[c] >= 0 ? byte_id_[c] : unk_id_;
      nodes.push_back({id == unk_id_ ? std::string() : pieces_[static_cast<size_t>(id)].text, id, 0, 0, 0, true});
    }
  };
  push_piece(kSpacePiece);  // the dummy prefix
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min(utf8_len(static_cast<unsigned char>(text[i])), text.size() - i);
    std::string ch(text.substr(i, n));
    if (ch == " ") ch = kSpacePiece;
    push_piece(std::move(ch));
    i += n;
  }
  const int count = static_cast<int>(nodes.size());
  for (int i = 0; i < count; ++i) {
    nodes[static_cast<size_t>(i)].prev = i - 1;
    nodes[static_cast<size_t>(i)].next = i + 1 < count ? i + 1 : -1;
  }
  // Candidate merges, best score first, leftmost on ties; stale entries are skipped by version.
  struct Cand {
    float score;
    int left, right;
    uint32_t vl, vr;
    int32_t id;
  };
  auto worse = [](const Cand& a, const Cand& b) {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> heap(worse);
  auto consider = [&](int l) {
    if (l < 0) return;
    const Node& a = nodes[static_cast<size_t>(l)];
    if (a.next < 0) return;
    const Node& b = nodes[static_cast<size_t>(a.next)];
    if (a.text.empty() || b.text.empty()) return;
    auto it = lookup_.find(a.text + b.text);
    if (it == lookup_.end()) return;
    heap.push({pieces_[static_cast<size_t>(it->second)].score, l, a.next, a.ver, b.ver, it->second});
  };
  for (int i = 0; i < count; ++i) consider(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Node& a = nodes[static_cast<size_t>(c.left)];
    Node& b = nodes[static_cast<size_t>(c.right)];
    if (!a.alive || !b.alive || a.next != c.right || a.ver != c.vl || b.ver != c.vr) continue;
    a.text += b.text;
    a.id = c.id;
    ++a.ver;
    b.alive = false;
    a.next = b.next;
    if (b.next >= 0) nodes[static_cast<size_t>(b.next)].prev = c.left;
    consider(a.prev);
    consider(c.left);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0; i = nodes[static_cast<size_t>(i)].next) out.push_back(nodes[static_cast<size_t>(i)].id);
  return out;
}

std::string Tokenizer::decode_piece(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) return "<?>";
  const std::string& t = pieces_[static_cast<size_t>(id)].text;
  const int b = byte_piece_value(t);
  if (b >= 0) return std::string(1, static_cast<char>(b));
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 3, kSpacePiece) == 0) {
      out.push_back(' ');
      i += 3;
    } else {
      out.push_back(t[i++]);
    }
  }
  return out;
}

std::string read_text_file(const std::string& path) {
  const auto b = io::read_file(path);
  std::string out;
  out.reserve(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] == '\r' && i + 1 < b.size() && b[i + 1] == '\n') continue;
    out.push_back(static_cast<char>(b[i]));
  }
  return out;
}

}  // namespace kvwb::model
