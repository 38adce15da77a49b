// `attnlab tokenize`: a corpus of any size into a prepared dataset (a DATA_DIR,
// dataset_manifest.hpp) in bounded memory.
//
//   1. The files: each path is a file or a folder (its .txt files, recursively,
//      in path order). Each file is one document.
//   2. The split, deterministic: with several documents, whole documents go to
//      val, spread through the list, until val holds val_fraction of the bytes;
//      a single document is cut at the first line break past (1 - F) of its
//      bytes, its head to train and its tail to val.
//   3. The tokenizer: characters (every character of the corpus, one pass), or
//      BPE / unigram learned by SentencePiece from a sample of at most
//      sample_bytes (evenly spaced windows of whole lines), or a model file.
//   4. The ids: each file is read in blocks of about 1 MiB that end at a line
//      break, blocks are encoded in parallel, a fixed number at a time, and
//      written in order; every block is checked to decode back to its text.
//      The block boundaries depend on the text alone, never on the threads, so
//      the ids are the same bits on any machine.
//
// Everything is written into a temporary directory beside DATA_DIR and renamed
// into place at the end: an error leaves no partial DATA_DIR. A second
// tokenize into the same DATA_DIR while one runs is refused (OutputLock on
// `.<name>.attnlab.lock` beside it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attnlab/train/dataset_manifest.hpp"

namespace attnlab {

struct TokenizeOptions {
  std::vector<std::string> inputs;  // files, folders of .txt files
  std::string tokenizer = "char";   // char, bpe, unigram
  int64_t vocab_size = 0;           // bpe, unigram: required; char: none
  std::string out_dir;
  double val_fraction = 0.1;
  bool byte_fallback = false;                // char (bpe and unigram always have it)
  std::string tokenizer_model;               // reuse this tokenizer file instead of training one
  int64_t sample_bytes = int64_t{16} << 20;  // the tokenizer's training sample
  bool force = false;                        // replace an existing DATA_DIR
  int64_t shard_tokens = int64_t{1} << 30;   // tokens per shard file before the next one
  int threads = 0;                           // 0: every core
};

// What the caller hears while it runs (the library prints nothing itself).
struct TokenizeProgress {
  std::function<void(const std::string&)> stage;  // "learning a bpe tokenizer ...", once per stage
  std::function<void(int64_t bytes_done, int64_t bytes_total)> encoded;  // after each round
};

DatasetManifest tokenize_corpus(const TokenizeOptions& options,
                                const TokenizeProgress& progress = {});

}  // namespace attnlab
