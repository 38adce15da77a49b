// A prepared dataset: a DATA_DIR written by `attnlab tokenize`
// (dataset_manifest.hpp), opened for training and evaluation. Its token
// shards are memory-mapped, never read whole: a batch copies its B windows
// out of the maps and gives the pages back to the kernel (MADV_DONTNEED; they
// stay in the page cache), so a run's resident memory does not grow with the
// corpus, whatever its size.
//
// Opening checks everything a corrupt or incomplete DATA_DIR could get wrong:
// the manifest's rules, every file present with the size the manifest says,
// the checksum of every file (read through a small buffer, not the maps), and
// the tokenizer's vocabulary against the manifest's. Every id is checked
// against the vocabulary again as a batch reads it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "attnlab/train/dataset.hpp"
#include "attnlab/train/dataset_manifest.hpp"

namespace attnlab {

// The shards of one split, mapped, as one sequence.
class MappedTokens final : public TokenSequence {
 public:
  MappedTokens(const std::filesystem::path& dir, const SplitInfo& split, int dtype_bytes,
               int64_t vocab_size);
  ~MappedTokens() override;
  MappedTokens(const MappedTokens&) = delete;
  MappedTokens& operator=(const MappedTokens&) = delete;

  int64_t size() const override { return total_; }
  void read(int64_t start, int64_t count, int32_t* out) const override;

 private:
  struct Map {
    std::string path;
    const unsigned char* data = nullptr;
    size_t bytes = 0;
    int64_t first = 0, tokens = 0;  // ids [first, first + tokens) of the split
  };
  std::vector<Map> maps_;
  int dtype_bytes_;
  int64_t vocab_size_, total_ = 0;
};

class PreparedDataset final : public TrainingData {
 public:
  // Refuses (naming the file and the problem) a missing, truncated or corrupt
  // manifest, shard or tokenizer.
  static std::unique_ptr<PreparedDataset> open(const std::filesystem::path& dir);

  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::shared_ptr<const Tokenizer> shared_tokenizer() const override { return tokenizer_; }
  const TokenSequence& split(Split split) const override {
    return *tokens_[split == Split::kTrain ? 0 : 1];
  }
  double bytes_per_token(Split split) const override;
  const DatasetManifest& manifest() const { return manifest_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  DatasetManifest manifest_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<MappedTokens> tokens_[2];
};

// A DATA_DIR (a directory) rather than a corpus file.
bool is_prepared_dataset(const std::filesystem::path& path);

// The FNV-1a hash of a file, read through a buffer (not kept in memory).
std::string file_fnv1a64(const std::filesystem::path& path);

}  // namespace attnlab

namespace attnlab {

// What `--data PATH` names: a DATA_DIR, or a corpus file tokenized in memory by
// characters (with `tokenizer` when given: a checkpoint's). Both splits must
// hold a window of seq_len + 1 tokens. With a DATA_DIR and a tokenizer, the
// two must be the same (a checkpoint trained on another vocabulary is refused).
std::unique_ptr<TrainingData> open_training_data(
    const std::string& path, int64_t seq_len,
    const std::shared_ptr<const Tokenizer>& tokenizer = nullptr);

}  // namespace attnlab
