#include "attnlab/train/utf8.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "attnlab/tensor/error.hpp"

namespace attnlab::utf8 {

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode(char32_t cp) {
  std::string out;
  append(out, cp);
  return out;
}

namespace {

Step invalid(int length, std::string reason) {
  return {Step::Status::kInvalid, kReplacement, length, std::move(reason)};
}

// How many bytes a sequence with this lead byte claims, for showing it in a
// message (1 for bytes that start nothing).
int claimed_length(uint8_t lead) {
  if (lead >= 0xC0 && lead < 0xE0) return 2;
  if (lead >= 0xE0 && lead < 0xF0) return 3;
  if (lead >= 0xF0 && lead < 0xF8) return 4;
  return 1;
}

}  // namespace

Step decode_at(std::string_view s, size_t pos) {
  const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = byte_at(pos);
  if (lead < 0x80) return {Step::Status::kOk, lead, 1, {}};

  // The table of well-formed sequences (Unicode Table 3-7): the second byte's
  // range is narrowed after E0 (overlong), ED (surrogates), F0 (overlong) and
  // F4 (beyond U+10FFFF); every other continuation byte is 80..BF.
  int continuation = 0;
  char32_t cp = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  const char* narrow_reason = "";
  if (lead < 0xC0) {
    return invalid(1, fmt::format("unexpected continuation byte 0x{:02X}", lead));
  } else if (lead < 0xC2) {
    return invalid(1,
                   fmt::format("overlong encoding (lead byte 0x{:02X} only encodes ASCII)", lead));
  } else if (lead < 0xE0) {
    continuation = 1;
    cp = lead & 0x1F;
  } else if (lead < 0xF0) {
    continuation = 2;
    cp = lead & 0x0F;
    if (lead == 0xE0) lo = 0xA0, narrow_reason = "overlong encoding";
    if (lead == 0xED) hi = 0x9F, narrow_reason = "encoded UTF-16 surrogate (U+D800..U+DFFF)";
  } else if (lead < 0xF5) {
    continuation = 3;
    cp = lead & 0x07;
    if (lead == 0xF0) lo = 0x90, narrow_reason = "overlong encoding";
    if (lead == 0xF4) hi = 0x8F, narrow_reason = "code point above U+10FFFF";
  } else if (lead < 0xF8) {
    return invalid(
        1, fmt::format("lead byte 0x{:02X} would encode a code point above U+10FFFF", lead));
  } else {
    return invalid(1, fmt::format("byte 0x{:02X} never appears in UTF-8", lead));
  }

  for (int k = 1; k <= continuation; ++k) {
    if (pos + k >= s.size()) {
      return {Step::Status::kTruncated, kReplacement, k,
              fmt::format("truncated {}-byte sequence at the end of the input", continuation + 1)};
    }
    const uint8_t b = byte_at(pos + k);
    const uint8_t min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) {
      if (k == 1 && b >= 0x80 && b <= 0xBF) return invalid(1, narrow_reason);
      return invalid(k,
                     fmt::format("truncated {}-byte sequence (byte 0x{:02X} is not a continuation)",
                                 continuation + 1, b));
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Step::Status::kOk, cp, continuation + 1, {}};
}

std::string invalid_message(std::string_view s, size_t pos, const Step& step) {
  // Show the whole sequence the lead byte announced, so that the byte that
  // broke it is in the message too.
  const size_t shown =
      std::min(s.size() - pos, static_cast<size_t>(claimed_length(static_cast<uint8_t>(s[pos]))));
  std::string bytes;
  for (size_t i = 0; i < shown; ++i) {
    bytes += fmt::format("{}{:02X}", i ? " " : "", static_cast<uint8_t>(s[pos + i]));
  }
  return fmt::format("invalid UTF-8 at byte offset {} (byte{} {}): {}", pos, shown > 1 ? "s" : "",
                     bytes, step.reason);
}

std::vector<char32_t> decode_strict(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    Step step = decode_at(s, pos);
    if (step.status != Step::Status::kOk) throw Error(invalid_message(s, pos, step));
    out.push_back(step.cp);
    pos += step.length;
  }
  return out;
}

std::string describe(char32_t cp) {
  const auto code = static_cast<uint32_t>(cp);
  if (!is_scalar_value(code)) return fmt::format("U+{:04X}", code);
  std::string printable;
  switch (cp) {
    case '\n':
      printable = "\\n";
      break;
    case '\t':
      printable = "\\t";
      break;
    case '\r':
      printable = "\\r";
      break;
    case '\'':
      printable = "\\'";
      break;
    case '\\':
      printable = "\\\\";
      break;
    default:
      if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
        printable = fmt::format("\\x{{{:X}}}", code);
      } else {
        printable = encode(cp);
      }
  }
  return fmt::format("'{}' (U+{:04X})", printable, code);
}

}  // namespace attnlab::utf8
