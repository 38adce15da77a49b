#include "attnlab/train/tokenizer.hpp"

#include <fmt/format.h>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/utf8.hpp"

namespace attnlab {

void Tokenizer::check_id(int32_t id) const {
  ATTN_CHECK(id >= 0 && id < vocab_size(),
             "token id {} is out of range for a vocabulary of {} tokens (ids 0..{})", id,
             vocab_size(), vocab_size() - 1);
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  StreamDecoder decoder(*this);
  for (const int32_t id : ids) decoder.push_into(out, id);
  decoder.drain(out, /*at_end=*/true);
  return out;
}

std::string Tokenizer::describe() const {
  return fmt::format("{}, {} tokens{}", kind(), vocab_size(),
                     byte_fallback() ? ", byte fallback" : "");
}

// ---- StreamDecoder ----

void StreamDecoder::push_into(std::string& out, int32_t id) {
  const Tokenizer::Piece piece = tokenizer_->piece(id);
  if (!piece.is_byte) {
    // A piece ends any run of byte tokens: what is left of it can no longer
    // become a character.
    if (!pending_.empty()) drain(out, /*at_end=*/true);
    out += piece.bytes;
  } else {
    pending_ += piece.bytes;
    drain(out, /*at_end=*/false);
  }
}

void StreamDecoder::drain(std::string& out, bool at_end) {
  size_t pos = 0;
  while (pos < pending_.size()) {
    const utf8::Step step = utf8::decode_at(pending_, pos);
    if (step.status == utf8::Step::Status::kOk) {
      out.append(pending_, pos, step.length);
    } else if (step.status == utf8::Step::Status::kTruncated && !at_end) {
      break;  // wait for the rest of the character
    } else {
      utf8::append(out, utf8::kReplacement);  // one U+FFFD per maximal invalid subpart
    }
    pos += step.length;
  }
  pending_.erase(0, pos);
}

std::string StreamDecoder::push(int32_t id) {
  std::string out;
  push_into(out, id);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  drain(out, /*at_end=*/true);
  return out;
}

}  // namespace attnlab
