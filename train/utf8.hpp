// UTF-8, decoded by hand: one code point at a time, strictly (RFC 3629), with
// the reason and byte offset of the first invalid sequence. The tokenizer works
// on code points, so "é" is one token, not two bytes.
//
// Invalid input is measured in "maximal subparts" (Unicode §3.9, the WHATWG
// decoder, Python's errors="replace"): the longest prefix of a sequence that
// could still have become valid. Lenient decoding replaces each with U+FFFD.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;  // U+FFFD REPLACEMENT CHARACTER
inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

// A Unicode scalar value: at most U+10FFFF and not a UTF-16 surrogate.
constexpr bool is_scalar_value(uint32_t cp) {
  return cp <= kMaxCodePoint && (cp < 0xD800 || cp > 0xDFFF);
}

// Appends the UTF-8 of a scalar value (1 to 4 bytes). cp must be valid.
void append(std::string& out, char32_t cp);
std::string encode(char32_t cp);

// One decoding step at a byte position.
struct Step {
  enum class Status {
    kOk,         // cp is the code point, length its 1-4 bytes
    kInvalid,    // length bytes (>= 1) are a maximal invalid subpart
    kTruncated,  // the input ends inside a sequence that was valid so far (length bytes)
  };
  Status status = Status::kOk;
  char32_t cp = kReplacement;
  int length = 1;
  std::string reason;  // why, for kInvalid and kTruncated ("overlong encoding", ...)
};

// Decodes the sequence that starts at s[pos]; pos < s.size().
Step decode_at(std::string_view s, size_t pos);

// "invalid UTF-8 at byte offset 7 (bytes E0 80 AF): overlong encoding", for a
// step at pos that was not kOk.
std::string invalid_message(std::string_view s, size_t pos, const Step& step);

// The code points of s; throws Error("invalid UTF-8 at byte offset N (bytes ..): reason")
// at the first invalid or truncated sequence.
std::vector<char32_t> decode_strict(std::string_view s);

// A character for a message: its printable form and code, "'é' (U+00E9)";
// control characters are escaped ("'\n' (U+000A)").
std::string describe(char32_t cp);

}  // namespace attnlab::utf8
