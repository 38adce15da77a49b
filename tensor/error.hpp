// Errors are values users can read: every check in attnlab throws attnlab::Error
// with one sentence that names the problem (and both shapes, for a mismatch).
// The CLI catches it, prints it, and exits non-zero.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace attnlab {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// ATTN_CHECK(cond, "format {}", args...): throw Error with the formatted message
// when cond is false. The message is only formatted on failure.
#define ATTN_CHECK(cond, ...)                                      \
  do {                                                             \
    if (!(cond)) throw ::attnlab::Error(fmt::format(__VA_ARGS__)); \
  } while (0)

}  // namespace attnlab
