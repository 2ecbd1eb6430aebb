#pragma once
// SentencePiece-style tokenizer with llama2.c's `encode` (data/real/README.md "Sequences"):
// a space is prepended, spaces become "▁" (U+2581), each UTF-8 character becomes its piece (or
// its bytes as <0xNN> byte pieces), then the adjacent pair whose merged piece scores highest is
// merged, repeatedly, leftmost first on ties. No BOS is added.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kvwb::model {

struct Piece {
  std::string text;   // UTF-8, spaces as "▁"
  float score = 0;
  int type = 0;       // 0 normal or byte, 1 unknown, 2 control
};

class Tokenizer {
 public:
  /// Vocabulary pieces indexed by id. Throws InvalidArgument when empty.
  explicit Tokenizer(std::vector<Piece> pieces, const std::string& source);

  /// tokens.json (an array of {"id", "piece", "score", "type"}, ids 0..n-1 in any order).
  static Tokenizer from_tokens_json(const std::string& path);
  /// llama2.c tokenizer.bin: i32 max_token_length, then per token f32 score, i32 length, bytes
  /// (spaces stored as ' '); `vocab_size` pieces. Ids 0, 1, 2 are <unk>, <s>, </s>.
  static Tokenizer from_llama2c(const std::string& path, int vocab_size);

  /// Token ids of `text` (no BOS).
  std::vector<int32_t> encode(std::string_view text) const;
  /// The text of one piece ("▁" shown as space, byte pieces as their byte).
  std::string decode_piece(int32_t id) const;
  size_t size() const noexcept { return pieces_.size(); }
  const Piece& piece(int32_t id) const { return pieces_.at(static_cast<size_t>(id)); }

 private:
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int32_t> lookup_;  // normal pieces only
  int32_t byte_id_[256];
  int32_t unk_id_ = 0;
};

/// Reads a UTF-8 text file and turns CRLF into LF (no other normalisation). Throws IoError.
std::string read_text_file(const std::string& path);

}  // namespace kvwb::model
