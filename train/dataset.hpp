// The training data, as nanoGPT's shakespeare_char: a corpus is tokenized
// whole, its first 90% of tokens is the train split and the last 10% the val
// split (n = int(0.9 * len(data))), and a batch is B random windows of T + 1
// tokens: inputs are the first T, targets the last T (the next token of each).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attnlab/tensor/random.hpp"
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

class TextDataset {
 public:
  // A corpus file, tokenized with a tokenizer built from it, or with a given
  // one (evaluating a checkpoint on another text uses the checkpoint's).
  // seq_len is the longest window that will be drawn: both splits must hold at
  // least seq_len + 1 tokens.
  static TextDataset from_file(const std::filesystem::path& path, int64_t seq_len,
                               bool byte_fallback = false);
  static TextDataset from_file(const std::filesystem::path& path, int64_t seq_len,
                               const Tokenizer& tokenizer);
  // The same from text in memory.
  static TextDataset from_text(std::string_view text, int64_t seq_len, bool byte_fallback = false);
  static TextDataset from_text(std::string_view text, int64_t seq_len, const Tokenizer& tokenizer);

  const Tokenizer& tokenizer() const { return tokenizer_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t size(Split split) const { return static_cast<int64_t>(tokens(split).size()); }
  // The tokens of a split; they live as long as the dataset (moves included).
  std::span<const int32_t> tokens(Split split) const;

  // A fixed evaluation set: n_batches batches drawn from the split by an Rng of
  // its own seeded with seed, so every call (every eval step, every run) sees
  // the same windows and val losses are comparable.
  static constexpr uint64_t kEvalSeed = 1337;
  std::vector<Batch> eval_batches(Split split, int64_t n_batches, int64_t batch_size,
                                  int64_t seq_len, uint64_t seed = kEvalSeed) const;

 private:
  // source names the corpus in messages: "corpus 'data/x.txt'" or "corpus".
  TextDataset(std::string_view text, int64_t seq_len, Tokenizer tokenizer,
              const std::string& source);

  Tokenizer tokenizer_;
  std::vector<int32_t> tokens_;  // train split first, then val
  int64_t n_train_ = 0;
  int64_t seq_len_ = 0;
};

// Draws batches of random windows from a token sequence with a seeded Rng,
// as nanoGPT's get_batch: each row starts uniformly in [0, n - T - 1]. Its
// whole position is the Rng state, which can be saved and restored exactly,
// so a resumed run draws the same batches as the run it continues.
// The tokens (a dataset's split) must outlive the sampler.
class BatchSampler {
 public:
  BatchSampler(std::span<const int32_t> tokens, int64_t batch_size, int64_t seq_len, uint64_t seed,
               std::string_view what = "token sequence");
  BatchSampler(const TextDataset& dataset, Split split, int64_t batch_size, int64_t seq_len,
               uint64_t seed);

  Batch next();
  void next(Batch& batch);  // fills batch in place, reusing its buffers

  int64_t batch_size() const { return batch_size_; }
  int64_t seq_len() const { return seq_len_; }
  Rng::State state() const { return rng_.state(); }
  void set_state(const Rng::State& state) { rng_.set_state(state); }

 private:
  std::span<const int32_t> tokens_;
  int64_t batch_size_;
  int64_t seq_len_;
  Rng rng_;
};

}  // namespace attnlab
