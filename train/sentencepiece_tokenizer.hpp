// Subword tokenizers learned from the user's corpus by SentencePiece (Kudo &
// Richardson 2018): BPE (Sennrich et al. 2016) or unigram (Kudo 2018). attnlab
// does not train or apply subwords itself; this class sets SentencePiece up so
// that it is lossless, which its defaults are not:
//
//   normalization_rule_name=identity   no NFKC (it folds "ﬁ" into "fi")
//   add_dummy_prefix=false             no space added in front of the text
//   remove_extra_whitespaces=false     leading, trailing and repeated spaces kept
//   byte_fallback=true                 a character outside the vocabulary is
//                                      spelled in 256 byte tokens <0x00>..<0xFF>
//   character_coverage=1.0             every character of the sample is a piece
//   allow_whitespace_only_pieces=true  runs of spaces (indentation) are pieces
//   bos_id=-1, eos_id=-1               ids are text only (no <s>, </s>)
//
// Training sentences are lines with their newline, so "\n" is a character of
// the vocabulary and pieces such as ":\n" are learned. SentencePiece writes a
// space as "▁" (U+2581) inside pieces; a literal "▁" in the text would decode
// as a space, so encode() spells it in byte tokens instead. The ids are
// SentencePiece's own (unk = 0, then the byte tokens, then the pieces), and
// model_bytes() is a model file that SentencePiece's tools (spm_encode,
// sentencepiece.SentencePieceProcessor) load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attnlab/train/tokenizer.hpp"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace attnlab {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  struct TrainOptions {
    std::string model_type = "bpe";  // "bpe" or "unigram"
    int64_t vocab_size = 512;
  };
  // SentencePiece's trainer splits its work by its thread count, which the
  // model file records too: a fixed count keeps the model the same bits on
  // every machine.
  static constexpr int kTrainerThreads = 2;
  // Learns a vocabulary from sentences (lines of the corpus, each with its
  // newline, at most a few kB each). Refuses, with SentencePiece's reason, a
  // vocabulary the sample cannot fill or that cannot hold its characters.
  static std::shared_ptr<const SentencePieceTokenizer> train(
      const std::vector<std::string>& sentences, const TrainOptions& options);
  // A serialized SentencePiece model (a .model file). Refuses, naming `what`,
  // a file that is not one, a model that is neither BPE nor unigram, and one
  // whose normalizer changes text (decode(encode(text)) would differ).
  static std::shared_ptr<const SentencePieceTokenizer> from_model(std::string model_bytes,
                                                                  std::string_view what);
  // The checkpoint form: {"type":"sentencepiece","model_type":"bpe",
  // "vocab_size":512,"byte_fallback":true,"model":"<the .model file, base64>"}.
  static std::shared_ptr<const SentencePieceTokenizer> from_json(std::string_view json);
  std::string to_json() const override;

  std::string_view kind() const override { return model_type_; }
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  bool byte_fallback() const override { return byte_fallback_; }
  std::vector<int32_t> encode(std::string_view utf8) const override;
  Piece piece(int32_t id) const override;
  const std::string& model_bytes() const { return model_bytes_; }

  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(std::string model_bytes, std::string_view what);  // from_model's work

 private:
  // Appends the ids of text that holds no literal "▁" (at most a few kB).
  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const;

  std::string model_bytes_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::string model_type_;
  bool byte_fallback_ = false;
  int32_t unk_id_ = 0;
  std::vector<std::string> pieces_;  // what each id decodes to ("▁" turned back into " ")
  std::vector<bool> is_byte_;        // byte tokens <0x00>..<0xFF>
  int32_t byte_ids_[256] = {};       // the id of each byte token (with byte fallback)
};

}  // namespace attnlab
