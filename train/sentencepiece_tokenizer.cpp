#include "attnlab/train/sentencepiece_tokenizer.hpp"

#include <fmt/format.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/base64.hpp"
#include "attnlab/train/utf8.hpp"

namespace attnlab {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // "▁", SentencePiece's space
constexpr size_t kEncodeChunk = 4096;  // text is encoded in runs of about this many bytes

// ---- A minimal protobuf reader ----
// Enough to read the model type and the normalizer's settings out of a
// ModelProto (sentencepiece_model.proto), whose generated classes the Debian
// package does not ship: ModelProto { trainer_spec = 2; normalizer_spec = 3 },
// TrainerSpec { model_type = 3 }, NormalizerSpec { name = 1;
// add_dummy_prefix = 3; remove_extra_whitespaces = 4; escape_whitespaces = 5 }.

struct ProtoField {
  uint32_t number = 0;
  uint64_t varint = 0;     // wire type 0
  std::string_view bytes;  // wire type 2
};

uint64_t read_varint(std::string_view& in, std::string_view what) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    ATTN_CHECK(!in.empty(), "{}: not a SentencePiece model (truncated protobuf)", what);
    const auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= uint64_t{b & 0x7Fu} << shift;
    if (!(b & 0x80)) return v;
  }
  throw Error(fmt::format("{}: not a SentencePiece model (malformed protobuf varint)", what));
}

// The fields of one message, in order (only varints and length-delimited ones
// keep their values; fixed-width ones are skipped).
std::vector<ProtoField> read_message(std::string_view in, std::string_view what) {
  std::vector<ProtoField> fields;
  while (!in.empty()) {
    const uint64_t key = read_varint(in, what);
    ProtoField f;
    f.number = static_cast<uint32_t>(key >> 3);
    const auto wire = static_cast<uint32_t>(key & 7);
    if (wire == 0) {
      f.varint = read_varint(in, what);
    } else if (wire == 2) {
      const uint64_t n = read_varint(in, what);
      ATTN_CHECK(n <= in.size(), "{}: not a SentencePiece model (truncated protobuf)", what);
      f.bytes = in.substr(0, n);
      in.remove_prefix(n);
    } else if (wire == 1 || wire == 5) {
      const size_t n = wire == 1 ? 8 : 4;
      ATTN_CHECK(n <= in.size(), "{}: not a SentencePiece model (truncated protobuf)", what);
      in.remove_prefix(n);
    } else {
      throw Error(fmt::format("{}: not a SentencePiece model (protobuf wire type {})", what, wire));
    }
    fields.push_back(f);
  }
  return fields;
}

struct ModelSettings {
  uint64_t model_type = 1;  // TrainerSpec's default: UNIGRAM
  std::string normalizer = "nmt_nfkc";
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

ModelSettings read_settings(std::string_view model, std::string_view what) {
  ModelSettings s;
  for (const ProtoField& top : read_message(model, what)) {
    if (top.number == 2) {
      for (const ProtoField& f : read_message(top.bytes, what))
        if (f.number == 3) s.model_type = f.varint;
    } else if (top.number == 3) {
      for (const ProtoField& f : read_message(top.bytes, what)) {
        if (f.number == 1) s.normalizer = std::string(f.bytes);
        if (f.number == 3) s.add_dummy_prefix = f.varint != 0;
        if (f.number == 4) s.remove_extra_whitespaces = f.varint != 0;
        if (f.number == 5) s.escape_whitespaces = f.varint != 0;
      }
    }
  }
  return s;
}

// Training sentences from a vector.
class VectorSentences : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentences(const std::vector<std::string>& s) : s_(s) {}
  bool done() const override { return i_ >= s_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return s_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& s_;
  size_t i_ = 0;
};

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(std::string model_bytes, std::string_view what)
    : model_bytes_(std::move(model_bytes)),
      processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto status = processor_->LoadFromSerializedProto(model_bytes_);
  ATTN_CHECK(status.ok(), "{}: not a SentencePiece model ({})", what, status.ToString());
  const ModelSettings s = read_settings(model_bytes_, what);
  ATTN_CHECK(s.model_type == 1 || s.model_type == 2,
             "{}: a SentencePiece model of type {} (attnlab takes bpe and unigram models)", what,
             s.model_type == 3   ? "word"
             : s.model_type == 4 ? "char"
                                 : "unknown");
  model_type_ = s.model_type == 2 ? "bpe" : "unigram";
  std::vector<std::string> changes;
  if (s.normalizer != "identity") changes.push_back(fmt::format("normalization {}", s.normalizer));
  if (s.add_dummy_prefix) changes.push_back("add_dummy_prefix");
  if (s.remove_extra_whitespaces) changes.push_back("remove_extra_whitespaces");
  if (!s.escape_whitespaces) changes.push_back("escape_whitespaces=false");
  ATTN_CHECK(changes.empty(),
             "{}: this SentencePiece model changes the text it encodes ({}), so decoding would "
             "not give the text back; train a lossless one with attnlab tokenize",
             what, fmt::join(changes, ", "));
  const int n = processor_->GetPieceSize();
  unk_id_ = processor_->unk_id();
  pieces_.resize(n);
  is_byte_.resize(n);
  int n_bytes = 0;
  for (int id = 0; id < n; ++id) {
    const std::string& p = processor_->IdToPiece(id);
    if (processor_->IsByte(id)) {
      // "<0xE3>"
      const int value = std::stoi(p.substr(3, 2), nullptr, 16);
      pieces_[id] = std::string(1, static_cast<char>(value));
      is_byte_[id] = true;
      byte_ids_[value] = id;
      ++n_bytes;
    } else if (processor_->IsUnknown(id)) {
      pieces_[id] = utf8::encode(utf8::kReplacement);
    } else if (processor_->IsControl(id)) {
      pieces_[id] = "";
    } else {
      std::string text;
      for (size_t at = 0; at < p.size();) {
        if (p.compare(at, kSpaceMark.size(), kSpaceMark) == 0) {
          text += ' ';
          at += kSpaceMark.size();
        } else {
          text += p[at++];
        }
      }
      pieces_[id] = std::move(text);
    }
  }
  byte_fallback_ = n_bytes == 256;
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::shared_ptr<const SentencePieceTokenizer> SentencePieceTokenizer::from_model(
    std::string model_bytes, std::string_view what) {
  return std::make_shared<const SentencePieceTokenizer>(std::move(model_bytes), what);
}

std::shared_ptr<const SentencePieceTokenizer> SentencePieceTokenizer::train(
    const std::vector<std::string>& sentences, const TrainOptions& o) {
  ATTN_CHECK(o.model_type == "bpe" || o.model_type == "unigram",
             "unknown SentencePiece model type '{}' (bpe or unigram)", o.model_type);
  ATTN_CHECK(!sentences.empty(), "no text to learn a tokenizer from");
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "false"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"unk_surface", utf8::encode(utf8::kReplacement)},
      {"max_sentence_length", "16384"},
      {"input_sentence_size", "0"},
      {"num_threads", std::to_string(kTrainerThreads)},
      {"minloglevel", "2"},  // SentencePiece's progress log stays quiet
  };
  VectorSentences it(sentences);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  ATTN_CHECK(status.ok(), "cannot learn a {} tokenizer of {} tokens from this text: {}",
             o.model_type, o.vocab_size, status.error_message());
  return from_model(std::move(model), "the trained tokenizer");
}

Tokenizer::Piece SentencePieceTokenizer::piece(int32_t id) const {
  check_id(id);
  return {pieces_[id], is_byte_[id]};
}

void SentencePieceTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<int> out;
  const auto status = processor_->Encode(text, &out);
  ATTN_CHECK(status.ok(), "SentencePiece cannot encode the text: {}", status.error_message());
  for (const int id : out) {
    ATTN_CHECK(id != unk_id_,
               "cannot encode the text: it holds a character outside this {} tokenizer's "
               "vocabulary of {} tokens, which has no byte fallback",
               model_type_, vocab_size());
    ids.push_back(id);
  }
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  // Invalid UTF-8 is refused as the char tokenizer refuses it.
  for (size_t pos = 0; pos < text.size();) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const utf8::Step step = utf8::decode_at(text, pos);
    ATTN_CHECK(step.status == utf8::Step::Status::kOk, "cannot encode text with {}",
               utf8::invalid_message(text, pos, step));
    pos += step.length;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  while (!text.empty()) {
    // A literal "▁" is spelled in bytes; the text around it goes to
    // SentencePiece in runs that end after a newline (or before a space), where
    // no piece crosses, so the ids are those of the whole text at once.
    const size_t mark = text.find(kSpaceMark);
    if (mark == 0) {
      ATTN_CHECK(byte_fallback_,
                 "cannot encode the character '▁' (U+2581): this tokenizer writes spaces with it "
                 "and has no byte fallback to spell it");
      for (const char b : kSpaceMark) ids.push_back(byte_ids_[static_cast<uint8_t>(b)]);
      text.remove_prefix(kSpaceMark.size());
      continue;
    }
    const std::string_view plain = text.substr(0, mark);  // npos: all of it
    size_t end = plain.size();
    if (end > kEncodeChunk) {
      size_t cut = plain.find('\n', kEncodeChunk);
      if (cut != std::string_view::npos) {
        end = cut + 1;
      } else if ((cut = plain.find(' ', kEncodeChunk)) != std::string_view::npos) {
        end = cut;
      }
    }
    encode_plain(plain.substr(0, end), ids);
    text.remove_prefix(end);
  }
  return ids;
}

// ---- JSON ----

std::string SentencePieceTokenizer::to_json() const {
  nlohmann::ordered_json j;
  j["type"] = "sentencepiece";
  j["model_type"] = model_type_;
  j["vocab_size"] = vocab_size();
  j["byte_fallback"] = byte_fallback_;
  j["model"] = base64::encode(model_bytes_);
  return j.dump();
}

std::shared_ptr<const SentencePieceTokenizer> SentencePieceTokenizer::from_json(
    std::string_view json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("invalid tokenizer JSON: {}", e.what()));
  }
  ATTN_CHECK(j.is_object() && j.contains("model") && j["model"].is_string(),
             "invalid tokenizer JSON: a sentencepiece tokenizer needs \"model\" (the .model "
             "file in base64)");
  auto tok = from_model(base64::decode(j["model"].get<std::string>(), "tokenizer JSON \"model\""),
                        "tokenizer JSON \"model\"");
  // The other keys are for people reading the metadata; they must agree.
  if (j.contains("model_type"))
    ATTN_CHECK(j["model_type"] == tok->kind(),
               "invalid tokenizer JSON: \"model_type\" {} but the model is {}",
               j["model_type"].dump(), tok->kind());
  if (j.contains("vocab_size"))
    ATTN_CHECK(j["vocab_size"] == tok->vocab_size(),
               "invalid tokenizer JSON: \"vocab_size\" {} but the model has {} pieces",
               j["vocab_size"].dump(), tok->vocab_size());
  return tok;
}

}  // namespace attnlab
