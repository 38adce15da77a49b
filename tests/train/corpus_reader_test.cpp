// The corpus reader's vocabulary scan (CharTokenizer::from_corpus keeps one bit
// per code point in 64-bit words and skips empty words): characters on every
// kind of word and plane boundary, from U+0000 to U+10FFFF, come back sorted
// and once each, and a short corpus costs no walk over all code points.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "attnlab/train/char_tokenizer.hpp"
#include "attnlab/train/utf8.hpp"

using namespace attnlab;

TEST_CASE("from_corpus finds characters on word and plane boundaries, sorted, once each") {
  const std::vector<char32_t> expected = {0x00,    0x3F,    0x40,     0x7F,    0x80,   0xBF,
                                          0xC0,    0x7FF,   0x800,    0xD7FF,  0xE000, 0xFFFF,
                                          0x10000, 0x1F600, 0x10FFC0, 0x10FFFF};
  std::string text;
  for (auto it = expected.rbegin(); it != expected.rend(); ++it) {  // in reverse, twice
    utf8::append(text, *it);
    utf8::append(text, *it);
  }
  const CharTokenizer tok = CharTokenizer::from_corpus(text);
  CHECK(tok.chars() == expected);
  CHECK(tok.decode(tok.encode(text)) == text);
}

TEST_CASE("from_corpus of a short text is fast") {
  // The fuzz target calls it for every input: thousands of times a second.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) CHECK(CharTokenizer::from_corpus("ab\xc3\xa9").vocab_size() == 3);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(s < 2.0);  // ~10 µs each in a release build; generous for sanitizers
}
