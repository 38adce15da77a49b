// Fuzz target: reading a training corpus (train/char_tokenizer.hpp, from_corpus;
// train/dataset.hpp, TextDataset::from_text): arbitrary bytes, invalid UTF-8
// included, as the text of a corpus. The first byte of the input chooses the
// options (bit 0: byte fallback; bits 1-4: seq_len 1 … 16); the rest is the
// text. An accepted corpus must encode and decode back to itself, its
// tokenizer must survive to_json → from_json, and batches drawn from an
// accepted dataset must hold ids of its vocabulary, targets one token ahead.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "attnlab/train/char_tokenizer.hpp"
#include "attnlab/train/dataset.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool byte_fallback = data[0] & 1;
  const int64_t seq_len = 1 + ((data[0] >> 1) & 15);
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  std::optional<CharTokenizer> tok;
  if (!fuzz::refuse_or_run([&] { tok = CharTokenizer::from_corpus(text, byte_fallback); }))
    return 0;
  const std::vector<int32_t> ids = tok->encode(text);  // every character is in the vocabulary
  FUZZ_EXPECT(tok->decode(ids) == text);
  for (int32_t id : ids) FUZZ_EXPECT(id >= 0 && id < tok->num_chars());
  FUZZ_EXPECT(CharTokenizer::from_json(tok->to_json()) == *tok);

  // (TextDataset::from_text(text, seq_len, byte_fallback) is from_corpus and
  // this; the tokenizer is built once per input.)
  std::optional<TextDataset> ds;
  if (!fuzz::refuse_or_run([&] { ds = TextDataset::from_text(text, seq_len, *tok); })) return 0;
  FUZZ_EXPECT(ds->size(Split::kTrain) > seq_len && ds->size(Split::kVal) > seq_len);
  BatchSampler sampler(*ds, Split::kTrain, 3, seq_len, /*seed=*/size);
  const Batch b = sampler.next();
  for (size_t i = 0; i < b.inputs.size(); ++i) {
    FUZZ_EXPECT(b.inputs[i] >= 0 && b.inputs[i] < ds->tokenizer().vocab_size());
    if ((i + 1) % static_cast<size_t>(seq_len) != 0) FUZZ_EXPECT(b.targets[i] == b.inputs[i + 1]);
  }
  const auto val = ds->eval_batches(Split::kVal, 2, 2, seq_len);
  FUZZ_EXPECT(val.size() == 2);
  return 0;
}
