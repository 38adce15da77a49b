// Validators for number flags whose messages read well ("--lr: must be a
// positive number, got -1"): CLI11's own PositiveNumber and NonNegativeNumber
// print their upper bound, the largest double, with all of its 309 digits.
// kSeed: CLI11 (2.1) reads "-1" into a uint64_t as 2^64 - 1 without a word,
// so an unsigned flag takes digits only.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace attnlab::cli {

namespace detail {
// "" when text is a finite number passing `ok`; otherwise the message.
template <typename Ok>
std::string check_number(const std::string& text, Ok ok, const char* wanted) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    return "'" + text + "' is not a number";
  return ok(v) ? std::string() : std::string("must be ") + wanted + ", got " + text;
}
}  // namespace detail

inline const CLI::Validator kPositiveNumber(
    [](std::string& text) {
      return detail::check_number(
          text, [](double v) { return v > 0; }, "a positive number");
    },
    "POSITIVE");

inline const CLI::Validator kNonNegativeNumber(
    [](std::string& text) {
      return detail::check_number(
          text, [](double v) { return v >= 0; }, "≥ 0");
    },
    "NONNEGATIVE");

// A share that must keep something: top-p 0 would keep no token.
inline const CLI::Validator kShareAboveZero(
    [](std::string& text) {
      return detail::check_number(
          text, [](double v) { return v > 0 && v <= 1; }, "in (0, 1]");
    },
    "SHARE");

inline const CLI::Validator kSeed(
    [](std::string& text) {
      errno = 0;
      const bool digits =
          !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
      if (digits) std::strtoull(text.c_str(), nullptr, 10);
      return digits && errno != ERANGE ? std::string()
                                       : "must be a whole number in [0, 2^64 - 1], got " + text;
    },
    "SEED");

}  // namespace attnlab::cli
