#include "attnlab/train/char_tokenizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/utf8.hpp"

namespace attnlab {

CharTokenizer::CharTokenizer(std::vector<char32_t> chars, bool byte_fallback)
    : chars_(std::move(chars)), byte_fallback_(byte_fallback), ascii_ids_(128, -1) {
  for (size_t id = 0; id < chars_.size() && chars_[id] < 128; ++id) {
    ascii_ids_[chars_[id]] = static_cast<int32_t>(id);
  }
  pieces_.reserve(chars_.size());
  for (const char32_t cp : chars_) pieces_.push_back(utf8::encode(cp));
}

CharTokenizer CharTokenizer::from_chars(std::vector<char32_t> chars, bool byte_fallback) {
  ATTN_CHECK(!chars.empty(), "invalid tokenizer vocabulary: it holds no characters");
  for (size_t i = 0; i < chars.size(); ++i) {
    const auto cp = static_cast<uint32_t>(chars[i]);
    ATTN_CHECK(cp <= utf8::kMaxCodePoint,
               "invalid tokenizer vocabulary: chars[{}] = {} is above U+10FFFF, not a code point",
               i, cp);
    ATTN_CHECK(utf8::is_scalar_value(cp),
               "invalid tokenizer vocabulary: chars[{}] = U+{:04X} is a UTF-16 surrogate, not a "
               "character",
               i, cp);
    if (i > 0) {
      const auto prev = static_cast<uint32_t>(chars[i - 1]);
      ATTN_CHECK(cp != prev,
                 "invalid tokenizer vocabulary: U+{:04X} appears twice (chars[{}], chars[{}])", cp,
                 i - 1, i);
      ATTN_CHECK(
          cp > prev,
          "invalid tokenizer vocabulary: chars must be sorted by code point, but chars[{}] = "
          "U+{:04X} follows chars[{}] = U+{:04X}",
          i, cp, i - 1, prev);
    }
  }
  return CharTokenizer(std::move(chars), byte_fallback);
}

CharTokenizer CharTokenizer::from_corpus(std::string_view utf8, bool byte_fallback) {
  ATTN_CHECK(!utf8.empty(), "corpus is empty: a tokenizer needs at least one character");
  // One bit per code point, in 64-bit words: the scan below skips empty words,
  // so a short corpus costs microseconds, not a walk over all 1.1M code points.
  std::vector<uint64_t> seen((utf8::kMaxCodePoint + 64) / 64, 0);
  auto mark = [&](char32_t cp) { seen[cp / 64] |= uint64_t{1} << (cp % 64); };
  for (size_t pos = 0; pos < utf8.size();) {
    const auto lead = static_cast<uint8_t>(utf8[pos]);
    if (lead < 0x80) {  // ASCII fast path: most corpora are mostly ASCII
      mark(lead);
      ++pos;
      continue;
    }
    const utf8::Step step = utf8::decode_at(utf8, pos);
    ATTN_CHECK(step.status == utf8::Step::Status::kOk, "corpus has {}",
               utf8::invalid_message(utf8, pos, step));
    mark(step.cp);
    pos += step.length;
  }
  std::vector<char32_t> chars;
  for (size_t w = 0; w < seen.size(); ++w) {
    for (uint64_t bits = seen[w]; bits != 0; bits &= bits - 1)
      chars.push_back(static_cast<char32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
  }
  return CharTokenizer(std::move(chars), byte_fallback);
}

std::optional<int32_t> CharTokenizer::char_id(char32_t cp) const {
  if (cp < 128) {
    const int32_t id = ascii_ids_[cp];
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
  }
  const auto it = std::lower_bound(chars_.begin(), chars_.end(), cp);
  if (it == chars_.end() || *it != cp) return std::nullopt;
  return static_cast<int32_t>(it - chars_.begin());
}

int32_t CharTokenizer::byte_token(uint8_t byte) const {
  ATTN_CHECK(byte_fallback_, "this tokenizer has no byte tokens (byte_fallback is off)");
  return static_cast<int32_t>(num_chars() + byte);
}

std::vector<int32_t> CharTokenizer::encode(std::string_view utf8) const {
  std::vector<int32_t> ids;
  ids.reserve(utf8.size());
  int64_t char_index = 0;
  for (size_t pos = 0; pos < utf8.size(); ++char_index) {
    const auto lead = static_cast<uint8_t>(utf8[pos]);
    char32_t cp = lead;
    int length = 1;
    if (lead >= 0x80) {
      const utf8::Step step = utf8::decode_at(utf8, pos);
      ATTN_CHECK(step.status == utf8::Step::Status::kOk, "cannot encode text with {}",
                 utf8::invalid_message(utf8, pos, step));
      cp = step.cp;
      length = step.length;
    }
    if (const auto id = char_id(cp)) {
      ids.push_back(*id);
    } else {
      ATTN_CHECK(byte_fallback_,
                 "cannot encode character {} at character {} (byte offset {}): it is not in the "
                 "tokenizer's vocabulary of {} characters (a tokenizer with byte fallback encodes "
                 "any text)",
                 utf8::describe(cp), char_index, pos, num_chars());
      for (int k = 0; k < length; ++k) {
        ids.push_back(static_cast<int32_t>(num_chars() + static_cast<uint8_t>(utf8[pos + k])));
      }
    }
    pos += length;
  }
  return ids;
}

namespace {

// One string per byte value: the pieces of the byte tokens.
const std::array<char, 256>& byte_values() {
  static const std::array<char, 256> bytes = [] {
    std::array<char, 256> b{};
    for (int i = 0; i < 256; ++i) b[i] = static_cast<char>(i);
    return b;
  }();
  return bytes;
}

}  // namespace

Tokenizer::Piece CharTokenizer::piece(int32_t id) const {
  check_id(id);
  if (id < num_chars()) return {pieces_[id], false};
  return {std::string_view(&byte_values()[id - num_chars()], 1), true};
}

// ---- JSON ----

std::string CharTokenizer::to_json() const {
  nlohmann::ordered_json j;
  j["type"] = "char";
  auto& chars = j["chars"] = nlohmann::ordered_json::array();
  for (const char32_t cp : chars_) chars.push_back(static_cast<uint32_t>(cp));
  j["byte_fallback"] = byte_fallback_;
  return j.dump();
}

CharTokenizer CharTokenizer::from_json(std::string_view json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("invalid tokenizer JSON: {}", e.what()));
  }
  ATTN_CHECK(j.is_object(), "invalid tokenizer JSON: expected an object, got {}", j.type_name());
  for (const auto& [key, value] : j.items()) {
    ATTN_CHECK(key == "type" || key == "chars" || key == "byte_fallback",
               "invalid tokenizer JSON: unknown key \"{}\" (expected type, chars, byte_fallback)",
               key);
  }
  for (const char* key : {"type", "chars", "byte_fallback"}) {
    ATTN_CHECK(j.contains(key), "invalid tokenizer JSON: missing key \"{}\"", key);
  }
  const auto& type = j["type"];
  ATTN_CHECK(type.is_string(), "invalid tokenizer JSON: \"type\" must be a string, got {}",
             type.type_name());
  ATTN_CHECK(type.get<std::string>() == "char",
             "invalid tokenizer JSON: tokenizer type \"{}\" is not supported (only \"char\")",
             type.get<std::string>());
  const auto& byte_fallback = j["byte_fallback"];
  ATTN_CHECK(byte_fallback.is_boolean(),
             "invalid tokenizer JSON: \"byte_fallback\" must be true or false, got {}",
             byte_fallback.type_name());
  const auto& list = j["chars"];
  ATTN_CHECK(list.is_array(), "invalid tokenizer JSON: \"chars\" must be an array, got {}",
             list.type_name());
  std::vector<char32_t> chars;
  chars.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& v = list[i];
    // nlohmann stores non-negative integers as unsigned, negative ones as signed.
    ATTN_CHECK(v.is_number_integer(),
               "invalid tokenizer JSON: chars[{}] must be an integer code point, got {} {}", i,
               v.type_name(), v.dump());
    ATTN_CHECK(v.is_number_unsigned(),
               "invalid tokenizer JSON: chars[{}] = {} is negative, not a code point", i, v.dump());
    const auto cp = v.get<uint64_t>();
    ATTN_CHECK(cp <= utf8::kMaxCodePoint,
               "invalid tokenizer JSON: chars[{}] = {} is above U+10FFFF, not a code point", i, cp);
    chars.push_back(static_cast<char32_t>(cp));
  }
  return from_chars(std::move(chars), byte_fallback.get<bool>());
}

}  // namespace attnlab
