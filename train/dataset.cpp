#include "attnlab/train/dataset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <system_error>

#include "attnlab/tensor/error.hpp"

namespace attnlab {

namespace fs = std::filesystem;

std::string_view split_name(Split split) {
  return split == Split::kTrain ? "train" : "val";
}

std::string read_text_file(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  ATTN_CHECK(!ec || ec == std::errc::no_such_file_or_directory, "cannot read '{}': {}",
             path.string(), ec.message());
  ATTN_CHECK(fs::exists(status), "cannot read '{}': no such file", path.string());
  ATTN_CHECK(!fs::is_directory(status), "cannot read '{}': it is a directory, not a text file",
             path.string());
  std::ifstream in(path, std::ios::binary);
  ATTN_CHECK(in.is_open(), "cannot read '{}': {}", path.string(), std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) text.append(buffer, in.gcount());
  ATTN_CHECK(in.eof(), "cannot read '{}': read error after {} bytes", path.string(), text.size());
  return text;
}

// ---- TextDataset ----

void SpanTokens::read(int64_t start, int64_t count, int32_t* out) const {
  std::copy_n(ids_.begin() + start, count, out);
}

double bits_per_byte(double loss, double bytes_per_token) {
  return loss / std::log(2.0) / bytes_per_token;
}

TextDataset::TextDataset(std::string_view text, int64_t seq_len,
                         std::shared_ptr<const Tokenizer> tokenizer, const std::string& source)
    : tokenizer_(std::move(tokenizer)), seq_len_(seq_len) {
  const std::string corpus = source.empty() ? "corpus" : fmt::format("corpus '{}'", source);
  std::vector<int32_t> ids;
  try {
    ids = tokenizer_->encode(text);
  } catch (const Error& e) {
    if (source.empty()) throw;
    throw Error(fmt::format("{}: {}", source, e.what()));
  }
  tokens_ = std::make_shared<const std::vector<int32_t>>(std::move(ids));
  const auto n = static_cast<int64_t>(tokens_->size());
  // nanoGPT: n = int(0.9 * len(data)), computed the same way in double.
  n_train_ = static_cast<int64_t>(0.9 * static_cast<double>(n));
  const int64_t n_val = n - n_train_;
  if (n_train_ <= seq_len || n_val <= seq_len) {
    const int64_t longest = std::min(n_train_, n_val) - 1;
    throw Error(fmt::format(
        "{} is too short for --seq-len {}: its {} tokens split into {} for training and {} for "
        "validation, and each split needs at least seq_len + 1 = {} tokens; {}",
        corpus, seq_len, n, n_train_, n_val, static_cast<uint64_t>(seq_len) + 1,
        longest >= 1 ? fmt::format("use --seq-len {} or less, or a longer corpus", longest)
                     : std::string("use a longer corpus")));
  }
  train_ = SpanTokens(tokens(Split::kTrain));
  val_ = SpanTokens(tokens(Split::kVal));
  for (const Split split : {Split::kTrain, Split::kVal}) {
    int64_t bytes = 0;
    for (const int32_t id : tokens(split)) bytes += tokenizer_->piece(id).bytes.size();
    bytes_per_token_[split == Split::kTrain ? 0 : 1] =
        static_cast<double>(bytes) / static_cast<double>(size(split));
  }
}

namespace {

void check_seq_len(int64_t seq_len) {
  ATTN_CHECK(seq_len >= 1, "seq_len must be at least 1, got {}", seq_len);
}

}  // namespace

TextDataset TextDataset::from_file(const fs::path& path, int64_t seq_len, bool byte_fallback) {
  check_seq_len(seq_len);
  const std::string text = read_text_file(path);
  ATTN_CHECK(!text.empty(), "corpus '{}' is empty", path.string());
  auto tokenizer = [&] {
    try {
      return std::make_shared<const CharTokenizer>(CharTokenizer::from_corpus(text, byte_fallback));
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", path.string(), e.what()));
    }
  }();
  return TextDataset(text, seq_len, std::move(tokenizer), path.string());
}

TextDataset TextDataset::from_file(const fs::path& path, int64_t seq_len,
                                   const CharTokenizer& tokenizer) {
  return from_file(path, seq_len, std::make_shared<const CharTokenizer>(tokenizer));
}

TextDataset TextDataset::from_file(const fs::path& path, int64_t seq_len,
                                   std::shared_ptr<const Tokenizer> tokenizer) {
  check_seq_len(seq_len);
  const std::string text = read_text_file(path);
  ATTN_CHECK(!text.empty(), "corpus '{}' is empty", path.string());
  return TextDataset(text, seq_len, tokenizer, path.string());
}

TextDataset TextDataset::from_text(std::string_view text, int64_t seq_len, bool byte_fallback) {
  check_seq_len(seq_len);
  ATTN_CHECK(!text.empty(), "corpus is empty");
  return TextDataset(
      text, seq_len,
      std::make_shared<const CharTokenizer>(CharTokenizer::from_corpus(text, byte_fallback)), "");
}

TextDataset TextDataset::from_text(std::string_view text, int64_t seq_len,
                                   const CharTokenizer& tokenizer) {
  return from_text(text, seq_len, std::make_shared<const CharTokenizer>(tokenizer));
}

TextDataset TextDataset::from_text(std::string_view text, int64_t seq_len,
                                   std::shared_ptr<const Tokenizer> tokenizer) {
  check_seq_len(seq_len);
  ATTN_CHECK(!text.empty(), "corpus is empty");
  return TextDataset(text, seq_len, tokenizer, "");
}

std::span<const int32_t> TextDataset::tokens(Split split) const {
  const std::span<const int32_t> all(*tokens_);
  return split == Split::kTrain ? all.first(n_train_) : all.subspan(n_train_);
}

std::vector<Batch> TrainingData::eval_batches(Split split, int64_t n_batches, int64_t batch_size,
                                              int64_t seq_len, uint64_t seed) const {
  ATTN_CHECK(n_batches >= 1, "the number of evaluation batches must be at least 1, got {}",
             n_batches);
  BatchSampler sampler(*this, split, batch_size, seq_len, seed);
  std::vector<Batch> batches(n_batches);
  for (Batch& batch : batches) sampler.next(batch);
  return batches;
}

// ---- BatchSampler ----

BatchSampler::BatchSampler(const TokenSequence& tokens, int64_t batch_size, int64_t seq_len,
                           uint64_t seed, std::string_view what)
    : tokens_(&tokens), batch_size_(batch_size), seq_len_(seq_len), rng_(seed) {
  ATTN_CHECK(batch_size >= 1, "batch size must be at least 1, got {}", batch_size);
  check_seq_len(seq_len);
  const int64_t n = tokens.size();
  ATTN_CHECK(n > seq_len,
             "{} of {} tokens is too short for seq_len {}: a window needs seq_len + 1 = {} tokens",
             what, n, seq_len, static_cast<uint64_t>(seq_len) + 1);
}

BatchSampler::BatchSampler(const TrainingData& dataset, Split split, int64_t batch_size,
                           int64_t seq_len, uint64_t seed)
    : BatchSampler(dataset.split(split), batch_size, seq_len, seed,
                   fmt::format("the {} split", split_name(split))) {}

void BatchSampler::next(Batch& batch) {
  const int64_t B = batch_size_, T = seq_len_;
  batch.batch_size = B;
  batch.seq_len = T;
  batch.inputs.resize(B * T);
  batch.targets.resize(B * T);
  batch.starts.resize(B);
  // A window of T + 1 tokens starts in [0, n - T - 1]: n - T choices, as
  // nanoGPT's torch.randint(len(data) - block_size, (batch_size,)).
  const auto choices = static_cast<uint64_t>(tokens_->size() - T);
  window_.resize(T + 1);
  for (int64_t b = 0; b < B; ++b) {
    const auto start = static_cast<int64_t>(rng_.below(choices));
    batch.starts[b] = start;
    tokens_->read(start, T + 1, window_.data());
    std::copy(window_.begin(), window_.begin() + T, batch.inputs.begin() + b * T);
    std::copy(window_.begin() + 1, window_.end(), batch.targets.begin() + b * T);
  }
}

Batch BatchSampler::next() {
  Batch batch;
  next(batch);
  return batch;
}

}  // namespace attnlab
