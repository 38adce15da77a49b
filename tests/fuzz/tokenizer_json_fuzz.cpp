// Fuzz target: the tokenizer a checkpoint carries in its metadata
// (train/char_tokenizer.hpp, CharTokenizer::from_json), then that tokenizer at work.
// The input is "<tokenizer JSON>\0<rest>": the JSON is parsed and validated
// (types, unknown keys, unsorted or duplicate or out-of-range code points);
// an accepted tokenizer must survive to_json → from_json, encode the rest as
// text (which must decode back to it when accepted), and decode the rest read
// as 16-bit token ids (invalid ones included), with StreamDecoder's pieces
// adding up to exactly decode()'s text.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnlab/train/char_tokenizer.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* begin = reinterpret_cast<const char*>(data);
  const char* nul = static_cast<const char*>(std::memchr(begin, 0, size));
  const std::string_view json(begin, nul ? static_cast<size_t>(nul - begin) : size);
  const std::string_view rest =
      nul ? std::string_view(nul + 1, size - json.size() - 1) : std::string_view();

  std::optional<CharTokenizer> tok;
  if (!fuzz::refuse_or_run([&] { tok = CharTokenizer::from_json(json); })) return 0;
  FUZZ_EXPECT(tok->num_chars() > 0);
  FUZZ_EXPECT(CharTokenizer::from_json(tok->to_json()) == *tok);

  std::vector<int32_t> ids;
  if (fuzz::refuse_or_run([&] { ids = tok->encode(rest); })) {
    FUZZ_EXPECT(tok->decode(ids) == rest);
  }

  // The rest as little-endian 16-bit ids, shifted so that -1 and ids past
  // the vocabulary occur too.
  ids.clear();
  for (size_t i = 0; i + 1 < rest.size(); i += 2) {
    const auto raw = static_cast<uint16_t>(static_cast<uint8_t>(rest[i]) |
                                           (static_cast<uint8_t>(rest[i + 1]) << 8));
    ids.push_back(static_cast<int32_t>(raw % (tok->vocab_size() + 2)) - 1);
  }
  std::string whole;
  if (!fuzz::refuse_or_run([&] { whole = tok->decode(ids); })) return 0;
  StreamDecoder stream(*tok);
  std::string pieces;
  for (int32_t id : ids) pieces += stream.push(id);
  pieces += stream.finish();
  FUZZ_EXPECT(pieces == whole);
  std::string one_by_one;
  for (int32_t id : ids) one_by_one += tok->decode_one(id);
  (void)one_by_one;
  return 0;
}
