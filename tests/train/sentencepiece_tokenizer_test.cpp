// SentencePiece BPE and unigram tokenizers: lossless on every UTF-8 text
// (spaces, tabs, newlines, leading and repeated spaces, the literal "▁", NUL,
// random code points), byte fallback, the checkpoint JSON, and refusals.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/sentencepiece_tokenizer.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "attnlab/train/utf8.hpp"

using namespace attnlab;

namespace {

// The lines of the first n bytes of tiny-shakespeare, each with its newline.
std::vector<std::string> shakespeare_lines(size_t n) {
  const std::string text =
      read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, n);
  std::vector<std::string> lines;
  for (size_t at = 0; at < text.size();) {
    const size_t end = std::min(text.find('\n', at), text.size() - 1) + 1;
    lines.push_back(text.substr(at, end - at));
    at = end;
  }
  return lines;
}

// Trained once per kind: SentencePiece takes a second or so.
const SentencePieceTokenizer& trained(const std::string& kind) {
  static const auto bpe = SentencePieceTokenizer::train(shakespeare_lines(200000),
                                                        {.model_type = "bpe", .vocab_size = 400});
  static const auto unigram = SentencePieceTokenizer::train(
      shakespeare_lines(200000), {.model_type = "unigram", .vocab_size = 400});
  return kind == "bpe" ? *bpe : *unigram;
}

// A random string of valid UTF-8: ASCII (controls and spaces included),
// 2-, 3- and 4-byte characters, and the "▁" SentencePiece writes spaces with.
std::string random_utf8(std::mt19937& rng, int n_chars) {
  std::string s;
  for (int i = 0; i < n_chars; ++i) {
    const int kind = static_cast<int>(rng() % 8);
    char32_t cp;
    if (kind == 0)
      cp = U'▁';
    else if (kind <= 3)
      cp = static_cast<char32_t>(rng() % 128);
    else if (kind == 4)
      cp = static_cast<char32_t>(0x80 + rng() % 0x780);
    else if (kind == 5)
      cp = static_cast<char32_t>(0x800 + rng() % 0xF800);
    else if (kind == 6)
      cp = static_cast<char32_t>(0x10000 + rng() % 0x100000);
    else
      cp = U" \t\n"[rng() % 3];
    if (!utf8::is_scalar_value(cp)) cp = U'x';
    utf8::append(s, cp);
  }
  return s;
}

}  // namespace

TEST_CASE("SentencePiece tokenizers are lossless on every UTF-8 text") {
  for (const std::string kind : {"bpe", "unigram"}) {
    CAPTURE(kind);
    const SentencePieceTokenizer& tok = trained(kind);
    CHECK(tok.kind() == kind);
    CHECK(tok.vocab_size() == 400);
    CHECK(tok.byte_fallback());
    for (const std::string& text :
         {std::string("First Citizen:\nBefore we proceed any further, hear me speak.\n"),
          std::string("  leading spaces,\ttabs,   runs of spaces  \n\n\nand trailing  "),
          std::string("Wherefore, ñandú? 日本語 😀 \r\n"), std::string("▁ a literal ▁▁ mark"),
          std::string("nul\0byte", 8), std::string(" "), std::string("\n"), std::string("")}) {
      const std::vector<int32_t> ids = tok.encode(text);
      CHECK(tok.decode(ids) == text);
      StreamDecoder stream(tok);
      std::string pieces;
      for (const int32_t id : ids) pieces += stream.push(id);
      pieces += stream.finish();
      CHECK(pieces == text);
    }
    std::mt19937 rng(kind == "bpe" ? 1 : 2);
    for (int i = 0; i < 300; ++i) {
      const std::string text = random_utf8(rng, 1 + static_cast<int>(rng() % 60));
      CHECK(tok.decode(tok.encode(text)) == text);
    }
    // Long text goes to SentencePiece in runs; the ids are those of the lines.
    std::string long_text;
    for (int i = 0; i < 400; ++i) long_text += "Whither away so fast? " + std::to_string(i) + "\n";
    std::vector<int32_t> by_line;
    for (size_t at = 0; at < long_text.size();) {
      const size_t end = long_text.find('\n', at) + 1;
      const auto ids = tok.encode(long_text.substr(at, end - at));
      by_line.insert(by_line.end(), ids.begin(), ids.end());
      at = end;
    }
    CHECK(tok.encode(long_text) == by_line);
    CHECK(tok.decode(by_line) == long_text);
  }
}

TEST_CASE("subwords: common words are single pieces, the rest falls back to bytes") {
  const SentencePieceTokenizer& tok = trained("bpe");
  CHECK(tok.encode(" the").size() == 1);
  // 'ñ' is not in the corpus: two byte tokens, which decode to the character.
  const std::vector<int32_t> ids = tok.encode("ñ");
  REQUIRE(ids.size() == 2);
  CHECK(tok.piece(ids[0]).is_byte);
  CHECK(tok.decode_one(ids[0]) == "\xC3");
  CHECK(tok.decode(ids) == "ñ");
  CHECK_THROWS_WITH_AS(tok.piece(400),
                       "token id 400 is out of range for a vocabulary of 400 tokens (ids 0..399)",
                       Error);
  CHECK_THROWS_WITH_AS(tok.encode("ab\xff"),
                       doctest::Contains("cannot encode text with invalid UTF-8 at byte offset 2"),
                       Error);
}

TEST_CASE("a SentencePiece tokenizer survives the checkpoint JSON and its model file") {
  const SentencePieceTokenizer& tok = trained("unigram");
  const auto back = tokenizer_from_json(tok.to_json());
  CHECK(back->kind() == "unigram");
  CHECK(back->same_as(tok));
  const std::string text = "O Romeo, Romeo! wherefore art thou Romeo?\n";
  CHECK(back->encode(text) == tok.encode(text));
  const auto from_file = SentencePieceTokenizer::from_model(tok.model_bytes(), "m");
  CHECK(from_file->same_as(tok));
  CHECK(back->describe() == "unigram, 400 tokens, byte fallback");

  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::from_model("not a model", "x.model"),
                       doctest::Contains("x.model: not a SentencePiece model"), Error);
  CHECK_THROWS_WITH_AS(tokenizer_from_json(R"({"type":"sentencepiece","model":"@@@@"})"),
                       doctest::Contains("invalid base64"), Error);
  CHECK_THROWS_WITH_AS(tokenizer_from_json(R"({"type":"wordpiece"})"),
                       doctest::Contains("tokenizer type \"wordpiece\" is not supported"), Error);
}

TEST_CASE("a vocabulary the text cannot fill is refused with SentencePiece's reason") {
  CHECK_THROWS_WITH_AS(
      SentencePieceTokenizer::train({"abc abc\n", "cab\n"},
                                    {.model_type = "bpe", .vocab_size = 5000}),
      doctest::Contains("cannot learn a bpe tokenizer of 5000 tokens from this text"), Error);
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::train({}, {.model_type = "bpe", .vocab_size = 300}),
                       "no text to learn a tokenizer from", Error);
}
