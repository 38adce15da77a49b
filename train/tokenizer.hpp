// What turns text into token ids and back, whatever the kind of tokenizer:
//
//   char     CharTokenizer (char_tokenizer.hpp): one token per Unicode code
//            point, nanoGPT's shakespeare_char ids; the default on the bundled
//            corpus.
//   bpe      SentencePieceTokenizer (sentencepiece_tokenizer.hpp): subword
//   unigram  pieces learned from the user's corpus by SentencePiece.
//
// Every tokenizer here is lossless: decode(encode(text)) == text for every
// UTF-8 text it encodes (with byte fallback: for every UTF-8 text), spaces,
// tabs and newlines included. A token decodes to a fixed run of bytes (its
// piece), or, for a byte token, to one raw byte that is part of a character;
// decode() concatenates the pieces and replaces a run of byte tokens that is
// not valid UTF-8 by U+FFFD.
//
// A tokenizer is stored in every checkpoint's metadata under the key
// `tokenizer`, as JSON (to_json(); tokenizer_loader.hpp reads any kind back).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // "char", "bpe" or "unigram".
  virtual std::string_view kind() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual bool byte_fallback() const = 0;
  // Text to ids. Refuses invalid UTF-8, and, without byte fallback, a character
  // the vocabulary cannot spell (naming it and its position).
  virtual std::vector<int32_t> encode(std::string_view utf8) const = 0;
  // The checkpoint form (metadata key `tokenizer`).
  virtual std::string to_json() const = 0;

  // What one token decodes to: the bytes of its piece, or (is_byte) one raw
  // byte of a character spelled in byte tokens. Refuses an id outside
  // [0, vocab_size()).
  struct Piece {
    std::string_view bytes;
    bool is_byte = false;
  };
  virtual Piece piece(int32_t id) const = 0;

  // Ids to UTF-8 text. Refuses an id outside [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids) const;
  // The exact bytes of one token, for printing tokens as they are generated (a
  // byte token's single raw byte may be one part of a multi-byte character).
  // Use StreamDecoder to get exactly decode()'s text, piece by piece.
  std::string decode_one(int32_t id) const { return std::string(piece(id).bytes); }
  // "bpe, 512 tokens, byte fallback": for info and logs.
  std::string describe() const;
  // The same tokenizer: same kind, vocabulary and ids (same checkpoint form).
  bool same_as(const Tokenizer& other) const { return to_json() == other.to_json(); }

 protected:
  // The message for an id outside the vocabulary.
  void check_id(int32_t id) const;
};

// Decodes a stream of ids piece by piece, as a model generates them: push()
// returns the text that is complete so far, holding back the bytes of a
// character whose byte tokens have not all arrived; finish() flushes what is
// left. The pieces concatenate to exactly tokenizer.decode(ids), so a byte-level
// emoji prints once it is whole, and an invalid byte run prints as U+FFFD.
// The tokenizer must outlive the decoder.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  std::string push(int32_t id);
  std::string finish();

 private:
  friend class Tokenizer;  // decode() runs the same decoder, appending to one string
  void push_into(std::string& out, int32_t id);
  // Appends the decodable prefix of pending_ to out; with at_end, all of it.
  void drain(std::string& out, bool at_end);

  const Tokenizer* tokenizer_;
  std::string pending_;  // bytes of byte tokens not yet decoded
};

}  // namespace attnlab
