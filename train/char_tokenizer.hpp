// A character-level tokenizer, as nanoGPT's shakespeare_char: the vocabulary is
// the distinct Unicode code points of a corpus sorted by code point, and a
// character's id is its index in that list (tiny-shakespeare: V = 65, the same
// ids as nanoGPT's `stoi`).
//
// Byte fallback (off by default, so V stays that of nanoGPT): 256 byte tokens
// follow the characters, ids n_chars + b, and a character outside the
// vocabulary is encoded as its UTF-8 bytes. Decoding reassembles byte tokens
// into characters; a byte sequence that is not valid UTF-8 becomes U+FFFD.
//
// The tokenizer is stored as JSON in every checkpoint's metadata (key
// `tokenizer`), so sampling needs no corpus:
//   {"type":"char","chars":[10,32,33,...],"byte_fallback":false}
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attnlab/train/tokenizer.hpp"

namespace attnlab {

class CharTokenizer final : public Tokenizer {
 public:
  // The distinct code points of a corpus. Refuses an empty corpus and invalid
  // UTF-8 (naming the byte offset of the first bad sequence).
  static CharTokenizer from_corpus(std::string_view utf8, bool byte_fallback = false);
  // From a vocabulary: non-empty, strictly increasing, Unicode scalar values.
  static CharTokenizer from_chars(std::vector<char32_t> chars, bool byte_fallback = false);
  // Parses and validates the JSON of to_json(); every problem is an Error.
  static CharTokenizer from_json(std::string_view json);
  std::string to_json() const override;

  std::string_view kind() const override { return "char"; }
  // Refuses invalid UTF-8, and, without byte fallback, a character outside the
  // vocabulary (naming it, its U+ code and its position).
  std::vector<int32_t> encode(std::string_view utf8) const override;
  // A character's UTF-8, or for a byte token that single raw byte.
  Piece piece(int32_t id) const override;

  int64_t vocab_size() const override { return num_chars() + (byte_fallback_ ? 256 : 0); }
  int64_t num_chars() const { return static_cast<int64_t>(chars_.size()); }
  bool byte_fallback() const override { return byte_fallback_; }
  const std::vector<char32_t>& chars() const { return chars_; }

  // The id of a character in the vocabulary, if it is one.
  std::optional<int32_t> char_id(char32_t cp) const;
  // Byte tokens: ids num_chars() .. num_chars() + 255 when byte_fallback().
  bool is_byte_token(int32_t id) const {
    return byte_fallback_ && id >= num_chars() && id < vocab_size();
  }
  int32_t byte_token(uint8_t byte) const;  // the id of a byte token; needs byte_fallback()

  bool operator==(const CharTokenizer& other) const {
    return chars_ == other.chars_ && byte_fallback_ == other.byte_fallback_;
  }

 private:
  CharTokenizer(std::vector<char32_t> chars, bool byte_fallback);

  std::vector<char32_t> chars_;  // sorted; chars_[id] is the character of id
  bool byte_fallback_ = false;
  std::vector<int32_t> ascii_ids_;   // [128]: the id of each ASCII character, or -1
  std::vector<std::string> pieces_;  // pieces_[id]: the UTF-8 of chars_[id]
};

}  // namespace attnlab
