// Tokenizer: nanoGPT's char-level ids, UTF-8 code points, byte fallback,
// streaming decode, JSON, and every refusal with its message.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/char_tokenizer.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/utf8.hpp"

using namespace attnlab;

namespace {

std::string shakespeare() {
  return read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt");
}

// The message of the Error that f throws ("" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("tiny-shakespeare: V = 65 and nanoGPT's ids") {
  const std::string text = shakespeare();
  REQUIRE(text.size() == 1115394);
  const CharTokenizer tok = CharTokenizer::from_corpus(text);
  CHECK(tok.vocab_size() == 65);
  CHECK(tok.num_chars() == 65);
  CHECK(!tok.byte_fallback());

  // nanoGPT: chars = sorted(list(set(data))); stoi = {ch: i for i, ch in enumerate(chars)}.
  // The corpus is ASCII, so the set of its bytes is the set of its characters.
  const std::set<char> set(text.begin(), text.end());
  const std::vector<char> chars(set.begin(), set.end());
  REQUIRE(chars.size() == 65);
  std::vector<int32_t> expected;
  for (const char c : std::string("First Citizen")) {
    expected.push_back(
        static_cast<int32_t>(std::find(chars.begin(), chars.end(), c) - chars.begin()));
  }
  CHECK(tok.encode("First Citizen") == expected);
  // The literal values, as printed by nanoGPT's prepare.py for this corpus.
  CHECK(expected == std::vector<int32_t>{18, 47, 56, 57, 58, 1, 15, 47, 58, 47, 64, 43, 52});
  CHECK(tok.chars().front() == U'\n');
  CHECK(tok.chars()[1] == U' ');

  const std::vector<int32_t> ids = tok.encode(text);
  CHECK(ids.size() == text.size());
  CHECK(ids[0] == 18);
  CHECK(tok.decode(ids) == text);
}

TEST_CASE("multi-byte UTF-8 characters are single tokens") {
  const std::string text = "caf\u00e9 \u6f22\u5b57 \U0001F600!";  // café 漢字 😀!
  const CharTokenizer tok = CharTokenizer::from_corpus(text);
  // Distinct: ' ', '!', 'a', 'c', 'f', é, 漢, 字, 😀, sorted by code point.
  CHECK(tok.chars() ==
        std::vector<char32_t>{U' ', U'!', U'a', U'c', U'f', 0xE9, 0x5B57, 0x6F22, 0x1F600});
  const std::vector<int32_t> ids = tok.encode(text);
  CHECK(ids.size() == 10);  // 10 characters, 18 bytes
  CHECK(ids == std::vector<int32_t>{3, 2, 4, 5, 0, 7, 6, 0, 8, 1});
  CHECK(tok.decode(ids) == text);
  CHECK(tok.decode_one(8) == "\U0001F600");
  CHECK(tok.decode_one(5) == "\u00e9");
  CHECK(tok.char_id(0x1F600) == 8);
  CHECK(!tok.char_id(U'z').has_value());
  CHECK(tok.encode("") == std::vector<int32_t>{});
  CHECK(tok.decode(std::vector<int32_t>{}) == "");
}

TEST_CASE("byte fallback round-trips unseen text, emoji included") {
  const CharTokenizer tok = CharTokenizer::from_corpus("hello world", /*byte_fallback=*/true);
  CHECK(tok.num_chars() == 8);  // ' ', d, e, h, l, o, r, w
  CHECK(tok.vocab_size() == 8 + 256);
  CHECK(tok.is_byte_token(8));
  CHECK(tok.is_byte_token(8 + 255));
  CHECK(!tok.is_byte_token(7));
  CHECK(tok.byte_token(0xF0) == 8 + 0xF0);

  const std::string unseen = "hello, W\u00f6rld \U0001F600\n\u6f22";
  const std::vector<int32_t> ids = tok.encode(unseen);
  CHECK(tok.decode(ids) == unseen);
  // "hello" uses character tokens; the emoji is its 4 UTF-8 bytes.
  CHECK(tok.decode_one(ids[0]) == "h");
  const std::vector<int32_t> emoji = tok.encode("\U0001F600");
  CHECK(emoji == std::vector<int32_t>{8 + 0xF0, 8 + 0x9F, 8 + 0x98, 8 + 0x80});
  // A character in the vocabulary is never spelled in bytes.
  CHECK(tok.encode("o") == std::vector<int32_t>{5});

  // decode_one gives the raw bytes; concatenated they are the text.
  std::string pieces;
  for (const int32_t id : ids) pieces += tok.decode_one(id);
  CHECK(pieces == unseen);
}

TEST_CASE("byte tokens that are not valid UTF-8 decode to U+FFFD") {
  const CharTokenizer tok = CharTokenizer::from_corpus("ab", true);
  const auto bytes = [&](std::initializer_list<int> bs) {
    std::vector<int32_t> ids;
    for (const int b : bs) ids.push_back(tok.byte_token(static_cast<uint8_t>(b)));
    return ids;
  };
  const std::string fffd = "\uFFFD";
  CHECK(tok.decode(bytes({0x80})) == fffd);                            // lone continuation
  CHECK(tok.decode(bytes({0xC3})) == fffd);                            // truncated at the end
  CHECK(tok.decode(bytes({0xC0, 0xAF})) == fffd + fffd);               // overlong: two subparts
  CHECK(tok.decode(bytes({0xED, 0xA0, 0x80})) == fffd + fffd + fffd);  // surrogate
  CHECK(tok.decode(bytes({0xE6, 0xBC})) == fffd);                      // one truncated subpart
  CHECK(tok.decode(bytes({0xFF, 0x41})) == fffd + "A");                // 0xFF, then ASCII byte 'A'
  // A character token ends a byte run: its unfinished character is U+FFFD.
  std::vector<int32_t> ids = bytes({0xE6, 0xBC});
  ids.push_back(0);  // 'a'
  CHECK(tok.decode(ids) == fffd + "a");
  std::vector<int32_t> ok = bytes({0xC3, 0xA9});
  CHECK(tok.decode(ok) == "\u00e9");
}

TEST_CASE("StreamDecoder pieces concatenate to decode()") {
  const CharTokenizer tok = CharTokenizer::from_corpus("abc", true);
  const std::string text = "a\U0001F600b\u00e9c";
  const std::vector<int32_t> ids = tok.encode(text);
  REQUIRE(ids.size() == 9);
  StreamDecoder stream(tok);
  std::vector<std::string> pieces;
  for (const int32_t id : ids) pieces.push_back(stream.push(id));
  pieces.push_back(stream.finish());
  // The emoji appears whole with its fourth byte, not before.
  CHECK(pieces ==
        std::vector<std::string>{"a", "", "", "", "\U0001F600", "b", "", "\u00e9", "c", ""});

  // With invalid runs too: pieces always concatenate to decode().
  std::vector<int32_t> messy = {tok.byte_token(0xE6), tok.byte_token(0xBC), 0, tok.byte_token(0xF0),
                                tok.byte_token(0x9F)};
  StreamDecoder s2(tok);
  std::string joined;
  for (const int32_t id : messy) joined += s2.push(id);
  joined += s2.finish();
  CHECK(joined == tok.decode(messy));
  CHECK(joined == "\uFFFDa\uFFFD");
}

TEST_CASE("without byte fallback an unknown character is refused, named") {
  const CharTokenizer tok = CharTokenizer::from_corpus("abc \n");
  CHECK(error_of([&] { tok.encode("ab \u00e9"); }) ==
        "cannot encode character '\u00e9' (U+00E9) at character 3 (byte offset 3): it is not in "
        "the tokenizer's vocabulary of 5 characters (a tokenizer with byte fallback encodes any "
        "text)");
  CHECK(error_of([&] { tok.encode("a\U0001F600"); })
            .starts_with("cannot encode character '\U0001F600' (U+1F600) at character 1 (byte "
                         "offset 1)"));
  CHECK(error_of([&] {
          tok.encode("ab\t");
        }).starts_with("cannot encode character '\\t' (U+0009) at character 2"));
  CHECK_THROWS_WITH_AS(tok.decode(std::vector<int32_t>{5}),
                       "token id 5 is out of range for a vocabulary of 5 tokens (ids 0..4)", Error);
  CHECK_THROWS_AS(tok.decode_one(-1), Error);
  CHECK_THROWS_WITH_AS(tok.byte_token(0),
                       "this tokenizer has no byte tokens (byte_fallback is off)", Error);
}

TEST_CASE("invalid UTF-8 corpora are refused with their byte offset") {
  struct Case {
    std::string corpus;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"ab\xC0\xAF",
       "corpus has invalid UTF-8 at byte offset 2 (bytes C0 AF): overlong encoding "
       "(lead byte 0xC0 only encodes ASCII)"},
      {"abc\xE0\x80\xAF",
       "corpus has invalid UTF-8 at byte offset 3 (bytes E0 80 AF): overlong "
       "encoding"},
      {"x\xF0\x80\x80\xAF",
       "corpus has invalid UTF-8 at byte offset 1 (bytes F0 80 80 AF): "
       "overlong encoding"},
      {"\xED\xA0\x80",
       "corpus has invalid UTF-8 at byte offset 0 (bytes ED A0 80): encoded UTF-16 "
       "surrogate (U+D800..U+DFFF)"},
      {"\xF4\x90\x80\x80",
       "corpus has invalid UTF-8 at byte offset 0 (bytes F4 90 80 80): code "
       "point above U+10FFFF"},
      {"hello \xE6\xBC",
       "corpus has invalid UTF-8 at byte offset 6 (bytes E6 BC): truncated "
       "3-byte sequence at the end of the input"},
      {"a\xC3(b",
       "corpus has invalid UTF-8 at byte offset 1 (bytes C3 28): truncated 2-byte "
       "sequence (byte 0x28 is not a continuation)"},
      {"ok\x80",
       "corpus has invalid UTF-8 at byte offset 2 (byte 80): unexpected continuation "
       "byte 0x80"},
      {"\xF8\x88\x80\x80\x80",
       "corpus has invalid UTF-8 at byte offset 0 (byte F8): byte 0xF8 "
       "never appears in UTF-8"},
      {"\xFF",
       "corpus has invalid UTF-8 at byte offset 0 (byte FF): byte 0xFF never appears in "
       "UTF-8"},
      {"\xF5\x80\x80\x80",
       "corpus has invalid UTF-8 at byte offset 0 (bytes F5 80 80 80): lead "
       "byte 0xF5 would encode a code point above U+10FFFF"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    CHECK(error_of([&] { CharTokenizer::from_corpus(c.corpus); }) == c.message);
  }
  CHECK_THROWS_WITH_AS(CharTokenizer::from_corpus(""),
                       "corpus is empty: a tokenizer needs at least one character", Error);
  // The boundaries of each range are accepted.
  const std::string edges =
      "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80"
      "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF";
  const CharTokenizer tok = CharTokenizer::from_corpus(edges);
  CHECK(tok.chars() ==
        std::vector<char32_t>{0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0x10000, 0x10FFFF});
  CHECK(tok.decode(tok.encode(edges)) == edges);
  // Encoding refuses invalid UTF-8 too, even with byte fallback.
  const CharTokenizer fb = CharTokenizer::from_corpus("a", true);
  CHECK(error_of([&] { fb.encode("a\xC3"); }) ==
        "cannot encode text with invalid UTF-8 at byte offset 1 (byte C3): truncated 2-byte "
        "sequence at the end of the input");
}

TEST_CASE("utf8 helpers") {
  for (const char32_t cp :
       {0x0u, 0x41u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFDu, 0x10000u, 0x10FFFFu}) {
    const std::string bytes = utf8::encode(cp);
    const utf8::Step step = utf8::decode_at(bytes, 0);
    CHECK(step.status == utf8::Step::Status::kOk);
    CHECK(step.cp == cp);
    CHECK(static_cast<size_t>(step.length) == bytes.size());
  }
  CHECK(utf8::decode_strict("a\u00e9") == std::vector<char32_t>{U'a', 0xE9});
  CHECK(utf8::describe(U'A') == "'A' (U+0041)");
  CHECK(utf8::describe(U'\n') == "'\\n' (U+000A)");
  CHECK(utf8::describe(0x1) == "'\\x{1}' (U+0001)");
  CHECK(utf8::describe(0x6F22) == "'\u6f22' (U+6F22)");
  CHECK(!utf8::is_scalar_value(0xD800));
  CHECK(!utf8::is_scalar_value(0x110000));
  CHECK(utf8::is_scalar_value(0x10FFFF));
}

TEST_CASE("JSON round trip") {
  const CharTokenizer tok = CharTokenizer::from_corpus("Hi \u00e9\U0001F600");
  CHECK(tok.to_json() == R"({"type":"char","chars":[32,72,105,233,128512],"byte_fallback":false})");
  CHECK(CharTokenizer::from_json(tok.to_json()) == tok);
  const CharTokenizer fb = CharTokenizer::from_corpus("xyz", true);
  const CharTokenizer back = CharTokenizer::from_json(fb.to_json());
  CHECK(back == fb);
  CHECK(back.vocab_size() == 3 + 256);
  CHECK(back.encode("x\u00e9") == fb.encode("x\u00e9"));
  CHECK(!(back == tok));
  const CharTokenizer shakes = CharTokenizer::from_corpus(shakespeare());
  CHECK(CharTokenizer::from_json(shakes.to_json()) == shakes);
  // Whitespace and key order do not matter.
  CHECK(
      CharTokenizer::from_json(R"( { "byte_fallback": false, "chars": [97, 98], "type": "char" } )")
          .encode("ab") == std::vector<int32_t>{0, 1});
}

TEST_CASE("malformed tokenizer JSON is refused") {
  const auto refuse = [](const std::string& json) {
    return error_of([&] { CharTokenizer::from_json(json); });
  };
  CHECK(refuse("{\"type\":\"char\",")
            .starts_with("invalid tokenizer JSON: [json.exception.parse_error"));
  CHECK(refuse("") != "");
  CHECK(refuse("[1,2]") == "invalid tokenizer JSON: expected an object, got array");
  CHECK(refuse(R"({"type":"char","chars":[97]})") ==
        "invalid tokenizer JSON: missing key \"byte_fallback\"");
  CHECK(refuse(R"({"chars":[97],"byte_fallback":false})") ==
        "invalid tokenizer JSON: missing key \"type\"");
  CHECK(refuse(R"({"type":"char","chars":[97],"byte_fallback":false,"extra":1})") ==
        "invalid tokenizer JSON: unknown key \"extra\" (expected type, chars, byte_fallback)");
  CHECK(refuse(R"({"type":"bpe","chars":[97],"byte_fallback":false})") ==
        "invalid tokenizer JSON: tokenizer type \"bpe\" is not supported (only \"char\")");
  CHECK(refuse(R"({"type":3,"chars":[97],"byte_fallback":false})") ==
        "invalid tokenizer JSON: \"type\" must be a string, got number");
  CHECK(refuse(R"({"type":"char","chars":[97],"byte_fallback":0})") ==
        "invalid tokenizer JSON: \"byte_fallback\" must be true or false, got number");
  CHECK(refuse(R"({"type":"char","chars":"abc","byte_fallback":false})") ==
        "invalid tokenizer JSON: \"chars\" must be an array, got string");
  CHECK(refuse(R"({"type":"char","chars":[97,"b"],"byte_fallback":false})") ==
        "invalid tokenizer JSON: chars[1] must be an integer code point, got string \"b\"");
  CHECK(refuse(R"({"type":"char","chars":[97,98.0],"byte_fallback":false})") ==
        "invalid tokenizer JSON: chars[1] must be an integer code point, got number 98.0");
  CHECK(refuse(R"({"type":"char","chars":[true],"byte_fallback":false})") ==
        "invalid tokenizer JSON: chars[0] must be an integer code point, got boolean true");
  CHECK(refuse(R"({"type":"char","chars":[-1],"byte_fallback":false})") ==
        "invalid tokenizer JSON: chars[0] = -1 is negative, not a code point");
  CHECK(refuse(R"({"type":"char","chars":[97,1114112],"byte_fallback":false})") ==
        "invalid tokenizer JSON: chars[1] = 1114112 is above U+10FFFF, not a code point");
  CHECK(refuse(R"({"type":"char","chars":[97,18446744073709551615],"byte_fallback":false})") ==
        "invalid tokenizer JSON: chars[1] = 18446744073709551615 is above U+10FFFF, not a code "
        "point");
  CHECK(refuse(R"({"type":"char","chars":[97,55296],"byte_fallback":false})") ==
        "invalid tokenizer vocabulary: chars[1] = U+D800 is a UTF-16 surrogate, not a character");
  CHECK(refuse(R"({"type":"char","chars":[97,98,98],"byte_fallback":false})") ==
        "invalid tokenizer vocabulary: U+0062 appears twice (chars[1], chars[2])");
  CHECK(refuse(R"({"type":"char","chars":[98,97],"byte_fallback":false})") ==
        "invalid tokenizer vocabulary: chars must be sorted by code point, but chars[1] = U+0061 "
        "follows chars[0] = U+0062");
  CHECK(refuse(R"({"type":"char","chars":[],"byte_fallback":true})") ==
        "invalid tokenizer vocabulary: it holds no characters");
  CHECK_THROWS_AS(CharTokenizer::from_chars({0x110000}), Error);
}
