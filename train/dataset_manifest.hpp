// dataset.json, the manifest of a prepared dataset (a DATA_DIR written by
// `attnlab tokenize`), and the checksum of its files. A DATA_DIR holds:
//
//   dataset.json    this manifest
//   tokenizer.model the SentencePiece model (bpe, unigram), or tokenizer.json
//                   (char: attnlab's JSON, as in a checkpoint)
//   train.bin       the train split's token ids, little-endian uint16 (uint32
//   val.bin         when the vocabulary exceeds 65,536), one after the other;
//                   past the shard limit numbered: train-00000.bin, ...
//
//   {"format": "attnlab-dataset", "version": 1,
//    "tokenizer": {"kind": "bpe", "vocab_size": 512, "byte_fallback": true,
//                  "file": "tokenizer.model", "fnv1a64": "…"},
//    "dtype": "uint16", "val_fraction": 0.1,
//    "splits": {"train": {"tokens": …, "bytes": …, "documents": …,
//                         "shards": [{"file": "train.bin", "tokens": …, "fnv1a64": "…"}]},
//               "val": {…}},
//    "sources": [{"path": "data/x.txt", "bytes": …, "fnv1a64": "…"}]}
//
// "bytes" counts the UTF-8 bytes of text a split's tokens decode to (bits per
// byte need it); "documents" the files that went into it (a file is one
// document; a single file is cut in two at a line, its head in train). Every
// file carries the 64-bit FNV-1a hash of its bytes, in 16 hex digits.
//
// This reader needs only the JSON library (the fuzz build compiles it).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab {

// FNV-1a, 64 bits: offset basis 0xcbf29ce484222325, prime 0x100000001b3.
class Fnv1a64 {
 public:
  void update(std::string_view bytes);
  uint64_t value() const { return h_; }
  std::string hex() const;  // 16 lowercase hex digits

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

struct ShardInfo {
  std::string file;  // a plain file name inside the DATA_DIR
  int64_t tokens = 0;
  std::string fnv1a64;
};

struct SplitInfo {
  int64_t tokens = 0, bytes = 0, documents = 0;
  std::vector<ShardInfo> shards;
};

struct SourceInfo {
  std::string path;
  int64_t bytes = 0;
  std::string fnv1a64;
};

struct DatasetManifest {
  static constexpr int kVersion = 1;
  std::string tokenizer_kind;  // "char", "bpe", "unigram"
  int64_t vocab_size = 0;
  bool byte_fallback = false;
  std::string tokenizer_file, tokenizer_fnv1a64;
  std::string dtype;  // "uint16" or "uint32"
  double val_fraction = 0.1;
  std::array<SplitInfo, 2> splits;  // train, val
  std::vector<SourceInfo> sources;

  int dtype_bytes() const { return dtype == "uint16" ? 2 : 4; }
  std::string to_json() const;
  // Parses and checks every rule above; `what` names the file in messages.
  static DatasetManifest from_json(std::string_view json, std::string_view what);
};

// The dtype of a vocabulary: uint16 up to 65,536 tokens, uint32 above.
std::string token_dtype(int64_t vocab_size);

// Little-endian ids to int32, each checked against the vocabulary (an id out
// of range is a corrupt shard, refused naming `what` and the id's index).
void decode_token_ids(const unsigned char* bytes, int64_t count, int dtype_bytes,
                      int64_t vocab_size, int32_t* out, std::string_view what,
                      int64_t first_index = 0);

}  // namespace attnlab
