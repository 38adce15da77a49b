// The training data: a tokenizer and two token sequences, the train and the
// val split, from which a batch is B random windows of T + 1 tokens: inputs
// are the first T, targets the last T (the next token of each).
//
// Two kinds: TextDataset (here), a corpus file tokenized whole in memory, as
// nanoGPT's shakespeare_char (its first 90% of tokens is the train split, the
// last 10% the val split: n = int(0.9 * len(data))); and PreparedDataset
// (prepared_dataset.hpp), a directory written by `attnlab tokenize` whose
// token shards are read through memory maps, for corpora larger than memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attnlab/tensor/random.hpp"
#include "attnlab/train/char_tokenizer.hpp"
#include "attnlab/train/tokenizer.hpp"

namespace attnlab {

enum class Split { kTrain, kVal };
std::string_view split_name(Split split);  // "train", "val"

// The whole content of a file. Refuses, naming the path, a missing file, a
// directory, and a file that cannot be read.
std::string read_text_file(const std::filesystem::path& path);

// B windows of T tokens, row-major [B, T]: targets[b, t] is the token after
// inputs[b, t] in the split, so targets are inputs shifted left by one.
struct Batch {
  int64_t batch_size = 0;        // B
  int64_t seq_len = 0;           // T
  std::vector<int32_t> inputs;   // [B, T]
  std::vector<int32_t> targets;  // [B, T]
  std::vector<int64_t> starts;   // [B]: where each row's window begins in the split
};

// A sequence of token ids that may be larger than memory.
class TokenSequence {
 public:
  virtual ~TokenSequence() = default;
  virtual int64_t size() const = 0;
  // Copies the ids [start, start + count) into out; 0 <= start, start + count <= size().
  virtual void read(int64_t start, int64_t count, int32_t* out) const = 0;
};

// Ids in memory.
class SpanTokens final : public TokenSequence {
 public:
  explicit SpanTokens(std::span<const int32_t> ids = {}) : ids_(ids) {}
  int64_t size() const override { return static_cast<int64_t>(ids_.size()); }
  void read(int64_t start, int64_t count, int32_t* out) const override;

 private:
  std::span<const int32_t> ids_;
};

// What a Trainer reads.
class TrainingData {
 public:
  virtual ~TrainingData() = default;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual std::shared_ptr<const Tokenizer> shared_tokenizer() const = 0;
  virtual const TokenSequence& split(Split split) const = 0;
  // UTF-8 bytes of text per token in a split: bits per byte = loss / ln 2 / this.
  virtual double bytes_per_token(Split split) const = 0;
  int64_t size(Split s) const { return split(s).size(); }

  // A fixed evaluation set: n_batches batches drawn from the split by an Rng of
  // its own seeded with seed, so every call (every eval step, every run) sees
  // the same windows and val losses are comparable.
  static constexpr uint64_t kEvalSeed = 1337;
  std::vector<Batch> eval_batches(Split split, int64_t n_batches, int64_t batch_size,
                                  int64_t seq_len, uint64_t seed = kEvalSeed) const;
};

// Bits per byte of UTF-8 text from a mean loss in nats per token:
// loss · tokens / (ln 2 · bytes), one scale for a character and a BPE model.
double bits_per_byte(double loss, double bytes_per_token);

class TextDataset final : public TrainingData {
 public:
  // A corpus file, tokenized with a tokenizer built from it, or with a given
  // one (evaluating a checkpoint on another text uses the checkpoint's).
  // seq_len is the longest window that will be drawn: both splits must hold at
  // least seq_len + 1 tokens.
  static TextDataset from_file(const std::filesystem::path& path, int64_t seq_len,
                               bool byte_fallback = false);
  static TextDataset from_file(const std::filesystem::path& path, int64_t seq_len,
                               std::shared_ptr<const Tokenizer> tokenizer);
  static TextDataset from_file(const std::filesystem::path& path, int64_t seq_len,
                               const CharTokenizer& tokenizer);
  // The same from text in memory.
  static TextDataset from_text(std::string_view text, int64_t seq_len, bool byte_fallback = false);
  static TextDataset from_text(std::string_view text, int64_t seq_len,
                               std::shared_ptr<const Tokenizer> tokenizer);
  static TextDataset from_text(std::string_view text, int64_t seq_len,
                               const CharTokenizer& tokenizer);

  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::shared_ptr<const Tokenizer> shared_tokenizer() const override { return tokenizer_; }
  const TokenSequence& split(Split split) const override {
    return split == Split::kTrain ? train_ : val_;
  }
  double bytes_per_token(Split split) const override {
    return bytes_per_token_[split == Split::kTrain ? 0 : 1];
  }
  int64_t seq_len() const { return seq_len_; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_->size()); }
  // The tokens of a split; they live as long as the dataset or a copy of it.
  std::span<const int32_t> tokens(Split split) const;

 private:
  // source names the corpus in messages: "corpus 'data/x.txt'" or "corpus".
  TextDataset(std::string_view text, int64_t seq_len, std::shared_ptr<const Tokenizer> tokenizer,
              const std::string& source);

  std::shared_ptr<const Tokenizer> tokenizer_;
  std::shared_ptr<const std::vector<int32_t>> tokens_;  // train split first, then val
  int64_t n_train_ = 0;
  int64_t seq_len_ = 0;
  SpanTokens train_, val_;  // views of *tokens_, shared by copies
  double bytes_per_token_[2] = {1, 1};
};

// Draws batches of random windows from a token sequence with a seeded Rng,
// as nanoGPT's get_batch: each row starts uniformly in [0, n - T - 1]. Its
// whole position is the Rng state, which can be saved and restored exactly,
// so a resumed run draws the same batches as the run it continues.
// The tokens (a dataset's split) must outlive the sampler.
class BatchSampler {
 public:
  BatchSampler(const TokenSequence& tokens, int64_t batch_size, int64_t seq_len, uint64_t seed,
               std::string_view what = "token sequence");
  BatchSampler(const TrainingData& dataset, Split split, int64_t batch_size, int64_t seq_len,
               uint64_t seed);

  Batch next();
  void next(Batch& batch);  // fills batch in place, reusing its buffers

  int64_t batch_size() const { return batch_size_; }
  int64_t seq_len() const { return seq_len_; }
  Rng::State state() const { return rng_.state(); }
  void set_state(const Rng::State& state) { rng_.set_state(state); }

 private:
  const TokenSequence* tokens_;
  std::vector<int32_t> window_;  // T + 1 ids
  int64_t batch_size_;
  int64_t seq_len_;
  Rng rng_;
};

}  // namespace attnlab
