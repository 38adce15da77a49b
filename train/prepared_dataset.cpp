#include "attnlab/train/prepared_dataset.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/tokenizer_loader.hpp"

namespace attnlab {
namespace fs = std::filesystem;

bool is_prepared_dataset(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

std::string file_fnv1a64(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  ATTN_CHECK(in.is_open(), "cannot read '{}': {}", path.string(), std::strerror(errno));
  Fnv1a64 h;
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
    h.update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
  ATTN_CHECK(in.eof(), "cannot read '{}': read error", path.string());
  return h.hex();
}

namespace {

constexpr uintptr_t kReleaseAlign = 2 << 20;

// Present, of the right size, with the right checksum.
void check_file(const fs::path& path, int64_t expected_bytes, const std::string& checksum,
                const std::string& what) {
  std::error_code ec;
  ATTN_CHECK(fs::is_regular_file(path, ec), "{}: {} is missing", what, path.string());
  const auto bytes = static_cast<int64_t>(fs::file_size(path, ec));
  ATTN_CHECK(!ec, "{}: cannot read {}: {}", what, path.string(), ec.message());
  if (expected_bytes >= 0)
    ATTN_CHECK(bytes == expected_bytes, "{}: {} is {} bytes but the manifest says {} ({})", what,
               path.string(), bytes, expected_bytes,
               bytes < expected_bytes ? "truncated" : "too long");
  ATTN_CHECK(file_fnv1a64(path) == checksum,
             "{}: {} is corrupt: its checksum differs from the manifest's", what, path.string());
}

}  // namespace

MappedTokens::MappedTokens(const fs::path& dir, const SplitInfo& split, int dtype_bytes,
                           int64_t vocab_size)
    : dtype_bytes_(dtype_bytes), vocab_size_(vocab_size) {
  for (const ShardInfo& shard : split.shards) {
    if (shard.tokens == 0) continue;
    Map m;
    m.path = (dir / shard.file).string();
    m.bytes = static_cast<size_t>(shard.tokens) * static_cast<size_t>(dtype_bytes);
    m.first = total_;
    m.tokens = shard.tokens;
    const int fd = ::open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
    ATTN_CHECK(fd >= 0, "cannot open {}: {}", m.path, std::strerror(errno));
    void* p = ::mmap(nullptr, m.bytes, PROT_READ, MAP_SHARED, fd, 0);
    const int err = errno;
    ::close(fd);
    ATTN_CHECK(p != MAP_FAILED, "cannot map {}: {}", m.path, std::strerror(err));
    ::madvise(p, m.bytes, MADV_RANDOM);  // batches read windows here and there
    m.data = static_cast<const unsigned char*>(p);
    total_ += shard.tokens;
    maps_.push_back(m);
  }
}

MappedTokens::~MappedTokens() {
  for (const Map& m : maps_) ::munmap(const_cast<unsigned char*>(m.data), m.bytes);
}

void MappedTokens::read(int64_t start, int64_t count, int32_t* out) const {
  // The shard holding `start`: the last one whose first id is ≤ start.
  auto it = std::upper_bound(maps_.begin(), maps_.end(), start,
                             [](int64_t s, const Map& m) { return s < m.first; });
  --it;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  while (count > 0) {
    const int64_t offset = start - it->first;
    const int64_t n = std::min(count, it->tokens - offset);
    const unsigned char* bytes = it->data + offset * dtype_bytes_;
    decode_token_ids(bytes, n, dtype_bytes_, vocab_size_, out, it->path, offset);
    // Give the pages back: resident memory stays that of one batch. A fault
    // maps the cached pages around the one read too (the kernel's fault-around:
    // 64 KiB by default, whole large folios where the page cache keeps them;
    // 256 KiB alignment still let 15 MB stay after 36,000 windows here), so
    // all of an aligned 2 MiB around the window is given back, within the map.
    const auto base = reinterpret_cast<uintptr_t>(it->data);
    const uintptr_t begin =
        std::max(base, (reinterpret_cast<uintptr_t>(bytes) & ~(kReleaseAlign - 1)));
    const uintptr_t end =
        std::min(base + (it->bytes + page - 1) / page * page,
                 (reinterpret_cast<uintptr_t>(bytes + n * dtype_bytes_) + kReleaseAlign - 1) &
                     ~(kReleaseAlign - 1));
    ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    out += n;
    start += n;
    count -= n;
    ++it;
  }
}

std::unique_ptr<PreparedDataset> PreparedDataset::open(const fs::path& dir) {
  auto d = std::unique_ptr<PreparedDataset>(new PreparedDataset());
  d->dir_ = dir;
  const fs::path manifest_path = dir / "dataset.json";
  const std::string what = manifest_path.string();
  std::error_code ec;
  ATTN_CHECK(fs::is_regular_file(manifest_path, ec),
             "{} is not a prepared dataset: it has no dataset.json (write one with attnlab "
             "tokenize)",
             dir.string());
  d->manifest_ = DatasetManifest::from_json(read_text_file(manifest_path), what);
  const DatasetManifest& m = d->manifest_;
  const fs::path tokenizer_path = dir / m.tokenizer_file;
  check_file(tokenizer_path, -1, m.tokenizer_fnv1a64, what);
  d->tokenizer_ = tokenizer_from_file(tokenizer_path);
  ATTN_CHECK(
      d->tokenizer_->vocab_size() == m.vocab_size && d->tokenizer_->kind() == m.tokenizer_kind,
      "{}: the tokenizer {} is {}, but the manifest says {} of {} tokens", what,
      tokenizer_path.string(), d->tokenizer_->describe(), m.tokenizer_kind, m.vocab_size);
  for (size_t s = 0; s < 2; ++s) {
    for (const ShardInfo& shard : m.splits[s].shards)
      check_file(dir / shard.file, shard.tokens * m.dtype_bytes(), shard.fnv1a64, what);
    d->tokens_[s] = std::make_unique<MappedTokens>(dir, m.splits[s], m.dtype_bytes(), m.vocab_size);
  }
  return d;
}

double PreparedDataset::bytes_per_token(Split split) const {
  const SplitInfo& s = manifest_.splits[split == Split::kTrain ? 0 : 1];
  return s.tokens > 0 ? static_cast<double>(s.bytes) / static_cast<double>(s.tokens) : 1.0;
}

}  // namespace attnlab

namespace attnlab {

std::unique_ptr<TrainingData> open_training_data(
    const std::string& path, int64_t seq_len, const std::shared_ptr<const Tokenizer>& tokenizer) {
  if (!is_prepared_dataset(path)) {
    if (tokenizer)
      return std::make_unique<TextDataset>(TextDataset::from_file(path, seq_len, tokenizer));
    return std::make_unique<TextDataset>(TextDataset::from_file(path, seq_len));
  }
  auto data = PreparedDataset::open(path);
  if (tokenizer)
    ATTN_CHECK(tokenizer->same_as(data->tokenizer()),
               "the checkpoint's tokenizer ({}) is not the dataset's ({} in {}): a model reads "
               "only the ids of its own vocabulary",
               tokenizer->describe(), data->tokenizer().describe(), path);
  for (const Split split : {Split::kTrain, Split::kVal}) {
    const int64_t n = data->size(split);
    ATTN_CHECK(n > seq_len,
               "the dataset {} is too short for --seq-len {}: its {} split holds {} tokens and "
               "needs at least seq_len + 1 = {}",
               path, seq_len, split_name(split), n, seq_len + 1);
  }
  return data;
}

}  // namespace attnlab
