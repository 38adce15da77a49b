#include "attnlab/train/tokenize_corpus.hpp"

#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/train/char_tokenizer.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/output_lock.hpp"
#include "attnlab/train/sentencepiece_tokenizer.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "attnlab/train/utf8.hpp"

namespace attnlab {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kBlockBytes = int64_t{1} << 20;     // a block: about this much text
constexpr int64_t kMaxLineBlock = int64_t{4} << 20;   // a block without a line break ends here
constexpr int kBlocksPerRound = 8;                    // encoded in parallel, then written in order
constexpr int64_t kSampleWindow = int64_t{64} << 10;  // the tokenizer's sample: windows this size
constexpr size_t kMaxSentence = 4096;                 // longer lines are cut for SentencePiece

struct Document {
  fs::path path;
  int64_t bytes = 0;
};

// ---- the files ----

std::vector<Document> collect_documents(const std::vector<std::string>& inputs) {
  ATTN_CHECK(!inputs.empty(), "no corpus: give --data FILE_OR_FOLDER");
  std::vector<Document> docs;
  std::set<fs::path> seen;
  auto add = [&](const fs::path& p) {
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(p, ec);
    ATTN_CHECK(seen.insert(ec ? p : canonical).second, "{} is given twice", p.string());
    const auto bytes = static_cast<int64_t>(fs::file_size(p, ec));
    ATTN_CHECK(!ec, "cannot read '{}': {}", p.string(), ec.message());
    ATTN_CHECK(bytes > 0, "{} is empty: there is no text to tokenize", p.string());
    docs.push_back({p, bytes});
  };
  for (const std::string& input : inputs) {
    std::error_code ec;
    const fs::file_status status = fs::status(input, ec);
    ATTN_CHECK(fs::exists(status), "cannot read '{}': no such file or folder", input);
    if (!fs::is_directory(status)) {
      add(input);
      continue;
    }
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(input, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_regular_file() && it->path().extension() == ".txt") files.push_back(it->path());
    }
    ATTN_CHECK(!ec, "cannot list the folder '{}': {}", input, ec.message());
    ATTN_CHECK(!files.empty(), "the folder '{}' holds no .txt files", input);
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) add(f);
  }
  return docs;
}

// A valid UTF-8 text of a file, not a binary one. `offset`: where text begins
// in the file, for the message.
void check_text(std::string_view text, const Document& doc, int64_t offset) {
  for (size_t pos = 0; pos < text.size();) {
    const auto b = static_cast<uint8_t>(text[pos]);
    if (b >= 0x80) {
      const utf8::Step step = utf8::decode_at(text, pos);
      ATTN_CHECK(step.status == utf8::Step::Status::kOk,
                 "{} is not UTF-8 text: invalid UTF-8 at byte offset {} ({})", doc.path.string(),
                 offset + static_cast<int64_t>(pos), step.reason);
      pos += step.length;
      continue;
    }
    ATTN_CHECK(b != 0, "{} is a binary file, not text (a NUL byte at byte offset {})",
               doc.path.string(), offset + static_cast<int64_t>(pos));
    ++pos;
  }
}

// The bytes [begin, end) of a document, in blocks of whole lines (of about
// kBlockBytes; a line longer than kMaxLineBlock is cut at a character).
class BlockReader {
 public:
  BlockReader(const Document& doc, int64_t begin, int64_t end)
      : doc_(doc), in_(doc.path, std::ios::binary), at_(begin), end_(end) {
    ATTN_CHECK(in_.is_open(), "cannot read '{}': {}", doc.path.string(), std::strerror(errno));
    in_.seekg(begin);
    block_start_ = begin;
  }

  // The next block (checked to be text), or false at the end.
  bool next(std::string& block, int64_t& offset) {
    while (true) {
      const size_t cut = cut_point(at_ == end_);
      if (cut > 0) {
        block.assign(buffer_, 0, cut);
        buffer_.erase(0, cut);
        offset = block_start_;
        block_start_ += static_cast<int64_t>(cut);
        check_text(block, doc_, offset);
        return true;
      }
      if (at_ == end_) return false;
      const int64_t n = std::min(kBlockBytes, end_ - at_);
      const size_t old = buffer_.size();
      buffer_.resize(old + n);
      in_.read(buffer_.data() + old, n);
      ATTN_CHECK(in_.gcount() == n, "cannot read '{}': it changed or a read failed at byte {}",
                 doc_.path.string(), at_ + in_.gcount());
      at_ += n;
    }
  }

 private:
  // How much of buffer_ makes the next block (0: read more first).
  size_t cut_point(bool at_end) const {
    if (buffer_.empty()) return 0;
    if (at_end && static_cast<int64_t>(buffer_.size()) <= kBlockBytes) return buffer_.size();
    if (static_cast<int64_t>(buffer_.size()) < kBlockBytes && !at_end) return 0;
    const size_t newline = buffer_.rfind('\n', static_cast<size_t>(kBlockBytes) - 1);
    if (newline != std::string::npos) return newline + 1;
    if (static_cast<int64_t>(buffer_.size()) < kMaxLineBlock && !at_end) return 0;
    // No line break in sight: cut at a character boundary.
    size_t cut = std::min<size_t>(buffer_.size(), kMaxLineBlock);
    while (cut > 1 && cut < buffer_.size() && (static_cast<uint8_t>(buffer_[cut]) & 0xC0) == 0x80)
      --cut;
    return cut;
  }

  const Document& doc_;
  std::ifstream in_;
  int64_t at_, end_, block_start_;
  std::string buffer_;
};

// ---- the split ----

struct Part {
  size_t doc = 0;
  int64_t begin = 0, end = 0;
  int split = 0;  // 0 train, 1 val
};

std::vector<Part> split_documents(const std::vector<Document>& docs, double val_fraction) {
  std::vector<Part> parts;
  if (docs.size() == 1) {
    // One document: cut at the first line break past (1 - F) of it.
    const Document& d = docs[0];
    const auto target = static_cast<int64_t>((1.0 - val_fraction) * static_cast<double>(d.bytes));
    std::ifstream in(d.path, std::ios::binary);
    in.seekg(target);
    std::string tail(static_cast<size_t>(std::min(kMaxLineBlock, d.bytes - target)), '\0');
    in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
    tail.resize(static_cast<size_t>(in.gcount()));
    size_t at = tail.find('\n');
    if (at != std::string::npos) {
      ++at;
    } else {  // no line break: at the next character
      at = 0;
      while (at < tail.size() && (static_cast<uint8_t>(tail[at]) & 0xC0) == 0x80) ++at;
    }
    const int64_t cut = target + static_cast<int64_t>(at);
    ATTN_CHECK(cut > 0 && cut < d.bytes,
               "{} is too short to split into train and val (--val-fraction {}): it needs a "
               "line break before its last {:.0f}% ",
               d.path.string(), val_fraction, 100 * val_fraction);
    parts.push_back({0, 0, cut, 0});
    parts.push_back({0, cut, d.bytes, 1});
    return parts;
  }
  // Several: a document goes to val when that brings val closest to its share
  // of the bytes so far (error diffusion), which spreads val through the list.
  int64_t total = 0, val = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    total += docs[i].bytes;
    const double want = val_fraction * static_cast<double>(total);
    const bool to_val = static_cast<double>(val) + 0.5 * static_cast<double>(docs[i].bytes) <= want;
    if (to_val) val += docs[i].bytes;
    parts.push_back({i, 0, docs[i].bytes, to_val ? 1 : 0});
  }
  const bool any_val = val > 0, any_train = val < total;
  if (!any_val) parts.back().split = 1;
  if (!any_train) parts.front().split = 0;
  return parts;
}

// ---- the tokenizer ----

void append_sentences(std::string_view text, std::vector<std::string>& sentences) {
  while (!text.empty()) {
    size_t n = text.find('\n');
    n = n == std::string_view::npos ? text.size() : n + 1;
    if (n > kMaxSentence) {  // a long line in pieces, each whole characters
      n = kMaxSentence;
      while (n > 1 && (static_cast<uint8_t>(text[n]) & 0xC0) == 0x80) --n;
    }
    sentences.emplace_back(text.substr(0, n));
    text.remove_prefix(n);
  }
}

// Whole lines of the corpus, at most about sample_bytes: all of it when it is
// small, else evenly spaced windows.
std::vector<std::string> sample_sentences(const std::vector<Document>& docs, int64_t sample_bytes) {
  std::vector<std::string> sentences;
  int64_t total = 0;
  for (const Document& d : docs) total += d.bytes;
  if (total <= sample_bytes) {
    std::string block;
    int64_t offset = 0;
    for (const Document& d : docs) {
      BlockReader reader(d, 0, d.bytes);
      while (reader.next(block, offset)) append_sentences(block, sentences);
    }
    return sentences;
  }
  const int64_t windows = std::max<int64_t>(1, sample_bytes / kSampleWindow);
  size_t doc = 0;
  int64_t doc_start = 0;  // of docs[doc] in the whole corpus
  for (int64_t w = 0; w < windows; ++w) {
    const int64_t at = (2 * w + 1) * total / (2 * windows);  // the window's middle
    while (doc_start + docs[doc].bytes <= at) doc_start += docs[doc++].bytes;
    const Document& d = docs[doc];
    const int64_t begin = std::max<int64_t>(0, at - doc_start - kSampleWindow / 2);
    const int64_t end = std::min(d.bytes, begin + kSampleWindow);
    std::ifstream in(d.path, std::ios::binary);
    in.seekg(begin);
    std::string text(static_cast<size_t>(end - begin), '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    ATTN_CHECK(in.gcount() == end - begin, "cannot read '{}'", d.path.string());
    // Whole lines only: drop a partial first and last line.
    size_t from = 0, to = text.size();
    if (begin > 0) from = text.find('\n') == std::string::npos ? to : text.find('\n') + 1;
    if (end < d.bytes) to = text.rfind('\n') == std::string::npos ? from : text.rfind('\n') + 1;
    if (to <= from) continue;
    const std::string_view lines = std::string_view(text).substr(from, to - from);
    check_text(lines, d, begin + static_cast<int64_t>(from));
    append_sentences(lines, sentences);
  }
  ATTN_CHECK(!sentences.empty(), "the corpus has no line breaks to sample whole lines from");
  return sentences;
}

std::shared_ptr<const Tokenizer> char_tokenizer(const std::vector<Document>& docs,
                                                bool byte_fallback) {
  std::set<char32_t> chars;
  std::string block;
  int64_t offset = 0;
  for (const Document& d : docs) {
    BlockReader reader(d, 0, d.bytes);
    while (reader.next(block, offset)) {
      const CharTokenizer t = CharTokenizer::from_corpus(block);
      chars.insert(t.chars().begin(), t.chars().end());
    }
  }
  return std::make_shared<const CharTokenizer>(
      CharTokenizer::from_chars(std::vector<char32_t>(chars.begin(), chars.end()), byte_fallback));
}

// ---- the shards ----

class ShardWriter {
 public:
  ShardWriter(fs::path dir, std::string split, int dtype_bytes, int64_t shard_tokens)
      : dir_(std::move(dir)),
        split_(std::move(split)),
        dtype_bytes_(dtype_bytes),
        shard_tokens_(shard_tokens) {}
  ~ShardWriter() {
    if (file_) std::fclose(file_);
  }

  void append(std::span<const int32_t> ids) {
    while (!ids.empty()) {
      if (!file_ || shards_.back().tokens == shard_tokens_) open_next();
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(ids.size()),
                                          shard_tokens_ - shards_.back().tokens);
      bytes_.resize(static_cast<size_t>(n * dtype_bytes_));
      for (int64_t i = 0; i < n; ++i) {
        const auto id = static_cast<uint32_t>(ids[i]);
        for (int k = 0; k < dtype_bytes_; ++k) bytes_[i * dtype_bytes_ + k] = char(id >> (8 * k));
      }
      ATTN_CHECK(std::fwrite(bytes_.data(), 1, bytes_.size(), file_) == bytes_.size(),
                 "cannot write {}: {}", path_, std::strerror(errno));
      hash_.update(bytes_);
      shards_.back().tokens += n;
      ids = ids.subspan(static_cast<size_t>(n));
    }
  }

  std::vector<ShardInfo> finish() {
    if (!file_) open_next();  // an empty split still has its (empty) file
    close();
    return shards_;
  }

 private:
  void open_next() {
    if (file_) close();
    if (shards_.size() == 1) {  // a second shard: the first gets its number
      const std::string numbered = fmt::format("{}-00000.bin", split_);
      fs::rename(dir_ / shards_[0].file, dir_ / numbered);
      shards_[0].file = numbered;
    }
    const std::string name =
        shards_.empty() ? split_ + ".bin" : fmt::format("{}-{:05d}.bin", split_, shards_.size());
    path_ = (dir_ / name).string();
    file_ = std::fopen(path_.c_str(), "wb");
    ATTN_CHECK(file_, "cannot create {}: {}", path_, std::strerror(errno));
    shards_.push_back({name, 0, ""});
    hash_ = Fnv1a64();
  }
  void close() {
    const bool ok = std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
    std::fclose(file_);
    file_ = nullptr;
    ATTN_CHECK(ok, "cannot write {}: {}", path_, std::strerror(errno));
    shards_.back().fnv1a64 = hash_.hex();
  }

  fs::path dir_;
  std::string split_;
  int dtype_bytes_;
  int64_t shard_tokens_;
  std::FILE* file_ = nullptr;
  std::string path_, bytes_;
  Fnv1a64 hash_;
  std::vector<ShardInfo> shards_;
};

// Removes a temporary directory unless it was kept.
struct TempDir {
  fs::path path;
  bool keep = false;
  ~TempDir() {
    std::error_code ec;
    if (!keep) fs::remove_all(path, ec);
  }
};

fs::path normal_dir(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p;
}

// The tokenizer that the options ask for.
std::shared_ptr<const Tokenizer> make_tokenizer(const TokenizeOptions& o,
                                                const std::vector<Document>& docs,
                                                const TokenizeProgress& progress) {
  auto say = [&](const std::string& s) {
    if (progress.stage) progress.stage(s);
  };
  if (!o.tokenizer_model.empty()) {
    auto tok = tokenizer_from_file(o.tokenizer_model);
    ATTN_CHECK(o.vocab_size == 0 || o.vocab_size == tok->vocab_size(),
               "--vocab {} differs from the {} tokens of --tokenizer-model {}", o.vocab_size,
               tok->vocab_size(), o.tokenizer_model);
    say(fmt::format("tokenizer {} ({})", o.tokenizer_model, tok->describe()));
    return tok;
  }
  if (o.tokenizer == "char") {
    ATTN_CHECK(o.vocab_size == 0,
               "--vocab is for bpe and unigram: the char tokenizer's vocabulary is the corpus's "
               "characters");
    say("collecting the characters of the corpus");
    return char_tokenizer(docs, o.byte_fallback);
  }
  ATTN_CHECK(o.tokenizer == "bpe" || o.tokenizer == "unigram",
             "--tokenizer must be char, bpe or unigram, got '{}'", o.tokenizer);
  ATTN_CHECK(o.vocab_size > 0, "--tokenizer {} needs --vocab N (the number of tokens)",
             o.tokenizer);
  ATTN_CHECK(o.sample_bytes >= kSampleWindow, "--sample-bytes must be at least {}, got {}",
             kSampleWindow, o.sample_bytes);
  const std::vector<std::string> sentences = sample_sentences(docs, o.sample_bytes);
  int64_t sample = 0;
  for (const std::string& s : sentences) sample += static_cast<int64_t>(s.size());
  say(
      fmt::format("learning a {} tokenizer of {} tokens from {} lines ({:.1f} MB) with "
                  "SentencePiece",
                  o.tokenizer, o.vocab_size, sentences.size(), static_cast<double>(sample) / 1e6));
  return SentencePieceTokenizer::train(sentences,
                                       {.model_type = o.tokenizer, .vocab_size = o.vocab_size});
}

}  // namespace

DatasetManifest tokenize_corpus(const TokenizeOptions& o, const TokenizeProgress& progress) {
  ATTN_CHECK(o.val_fraction > 0 && o.val_fraction < 1, "--val-fraction must be in (0, 1), got {}",
             o.val_fraction);
  ATTN_CHECK(o.shard_tokens >= 1, "the shard size must be at least 1 token");
  ATTN_CHECK(!o.out_dir.empty(), "tokenize needs --out DATA_DIR");
  const fs::path out = normal_dir(o.out_dir);
  // One writer per DATA_DIR: the lock is a file beside it, since the
  // directory itself is renamed into place at the end.
  const OutputLock lock = OutputLock::file(out.string());
  std::error_code ec;
  if (fs::exists(out, ec)) {
    ATTN_CHECK(o.force, "{} already exists: choose another --out, or give --force to replace it",
               out.string());
    ATTN_CHECK(fs::is_directory(out) && (fs::exists(out / "dataset.json") || fs::is_empty(out)),
               "{} exists and is not a prepared dataset (no dataset.json): --force replaces only "
               "a DATA_DIR of attnlab tokenize",
               out.string());
  }
  const std::vector<Document> docs = collect_documents(o.inputs);
  for (const Document& d : docs) {
    const fs::path doc = fs::weakly_canonical(d.path, ec);
    const fs::path dir = fs::weakly_canonical(out, ec);
    const auto [a, b] = std::mismatch(dir.begin(), dir.end(), doc.begin(), doc.end());
    ATTN_CHECK(a != dir.end(), "--out {} holds the input {}: choose another --out", out.string(),
               d.path.string());
  }
  const std::vector<Part> parts = split_documents(docs, o.val_fraction);
  const std::shared_ptr<const Tokenizer> tok = make_tokenizer(o, docs, progress);

  TempDir tmp{out.parent_path() / fmt::format(".{}.tmp.{}", out.filename().string(), ::getpid())};
  fs::remove_all(tmp.path, ec);
  fs::create_directories(tmp.path, ec);
  ATTN_CHECK(!ec, "cannot create {}: {}", tmp.path.string(), ec.message());

  DatasetManifest m;
  m.tokenizer_kind = std::string(tok->kind());
  m.vocab_size = tok->vocab_size();
  m.byte_fallback = tok->byte_fallback();
  const auto* spm = dynamic_cast<const SentencePieceTokenizer*>(tok.get());
  m.tokenizer_file = spm ? "tokenizer.model" : "tokenizer.json";
  const std::string tokenizer_bytes = spm ? spm->model_bytes() : tok->to_json();
  Fnv1a64 tokenizer_hash;
  tokenizer_hash.update(tokenizer_bytes);
  m.tokenizer_fnv1a64 = tokenizer_hash.hex();
  write_file_atomically((tmp.path / m.tokenizer_file).string(), tokenizer_bytes);
  m.dtype = token_dtype(m.vocab_size);
  m.val_fraction = o.val_fraction;

  if (progress.stage)
    progress.stage(fmt::format("encoding {} file(s) with {} threads", docs.size(),
                               o.threads > 0 ? o.threads : omp_get_num_procs()));
  ShardWriter writers[2] = {ShardWriter(tmp.path, "train", m.dtype_bytes(), o.shard_tokens),
                            ShardWriter(tmp.path, "val", m.dtype_bytes(), o.shard_tokens)};
  std::vector<Fnv1a64> doc_hashes(docs.size());
  int64_t total_bytes = 0, done_bytes = 0;
  for (const Document& d : docs) total_bytes += d.bytes;
  const int threads = o.threads > 0 ? o.threads : omp_get_num_procs();
  std::vector<std::string> blocks(kBlocksPerRound);
  std::vector<int64_t> offsets(kBlocksPerRound);
  std::vector<std::vector<int32_t>> ids(kBlocksPerRound);
  std::vector<std::string> errors(kBlocksPerRound);
  for (const Part& part : parts) {
    const Document& doc = docs[part.doc];
    SplitInfo& split = m.splits[part.split];
    ++split.documents;  // a file, or one of the two parts of the only file
    BlockReader reader(doc, part.begin, part.end);
    while (true) {
      int n = 0;
      while (n < kBlocksPerRound && reader.next(blocks[n], offsets[n])) ++n;
      if (n == 0) break;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
      for (int b = 0; b < n; ++b) {
        errors[b].clear();
        try {
          ids[b] = tok->encode(blocks[b]);
          // Lossless, or refused: the text must come back from its ids.
          if (tok->decode(ids[b]) != blocks[b])
            errors[b] = fmt::format(
                "the tokenizer does not give the text of {} back (in the block at byte {}): it "
                "is not lossless",
                doc.path.string(), offsets[b]);
        } catch (const Error& e) {
          errors[b] =
              fmt::format("{} (block at byte {}): {}", doc.path.string(), offsets[b], e.what());
        } catch (const std::exception& e) {
          errors[b] = fmt::format("{}: {}", doc.path.string(), e.what());
        }
      }
      for (int b = 0; b < n; ++b) {
        if (!errors[b].empty()) throw Error(errors[b]);
        writers[part.split].append(ids[b]);
        split.tokens += static_cast<int64_t>(ids[b].size());
        split.bytes += static_cast<int64_t>(blocks[b].size());
        doc_hashes[part.doc].update(blocks[b]);
        done_bytes += static_cast<int64_t>(blocks[b].size());
      }
      if (progress.encoded) progress.encoded(done_bytes, total_bytes);
    }
  }
  for (int s = 0; s < 2; ++s) m.splits[s].shards = writers[s].finish();
  for (int s = 0; s < 2; ++s)
    ATTN_CHECK(m.splits[s].tokens > 0, "the {} split is empty: the corpus is too short",
               s == 0 ? "train" : "val");
  for (size_t i = 0; i < docs.size(); ++i)
    m.sources.push_back({docs[i].path.string(), docs[i].bytes, doc_hashes[i].hex()});
  write_file_atomically((tmp.path / "dataset.json").string(), m.to_json());

  // Into place: the old DATA_DIR (--force) moves aside first, so that a
  // failure at any point leaves either the old dataset or the new one.
  const fs::path old =
      out.parent_path() / fmt::format(".{}.old.{}", out.filename().string(), ::getpid());
  const bool replace = fs::exists(out, ec);
  if (replace) {
    fs::rename(out, old, ec);
    ATTN_CHECK(!ec, "cannot move the old {} aside: {}", out.string(), ec.message());
  }
  fs::rename(tmp.path, out, ec);
  if (ec) {
    std::error_code ignored;
    if (replace) fs::rename(old, out, ignored);
    throw Error(
        fmt::format("cannot rename {} to {}: {}", tmp.path.string(), out.string(), ec.message()));
  }
  tmp.keep = true;
  if (replace) fs::remove_all(old, ec);
  return m;
}

}  // namespace attnlab
