#include "attnlab/train/dataset_manifest.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "attnlab/tensor/error.hpp"

namespace attnlab {

void Fnv1a64::update(std::string_view bytes) {
  uint64_t h = h_;
  for (const char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  h_ = h;
}

std::string Fnv1a64::hex() const {
  return fmt::format("{:016x}", h_);
}

std::string token_dtype(int64_t vocab_size) {
  return vocab_size <= 65536 ? "uint16" : "uint32";
}

void decode_token_ids(const unsigned char* bytes, int64_t count, int dtype_bytes,
                      int64_t vocab_size, int32_t* out, std::string_view what,
                      int64_t first_index) {
  for (int64_t i = 0; i < count; ++i) {
    const unsigned char* p = bytes + i * dtype_bytes;
    uint32_t id = p[0] | uint32_t{p[1]} << 8;
    if (dtype_bytes == 4) id |= uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    ATTN_CHECK(id < static_cast<uint64_t>(vocab_size),
               "{} is corrupt: token {} is id {}, outside the vocabulary of {}", what,
               first_index + i, id, vocab_size);
    out[i] = static_cast<int32_t>(id);
  }
}

namespace {

using Json = nlohmann::ordered_json;

struct Reader {
  std::string_view what;

  [[noreturn]] void fail(const std::string& message) const {
    throw Error(fmt::format("{}: invalid dataset manifest: {}", what, message));
  }
  const nlohmann::json& get(const nlohmann::json& j, const char* key, const std::string& at) const {
    if (!j.is_object()) fail(fmt::format("{} must be an object", at));
    const auto it = j.find(key);
    if (it == j.end()) fail(fmt::format("{} has no \"{}\"", at, key));
    return *it;
  }
  int64_t count(const nlohmann::json& j, const char* key, const std::string& at) const {
    const auto& v = get(j, key, at);
    if (!v.is_number_unsigned() || v.get<uint64_t>() > (uint64_t{1} << 62))
      fail(fmt::format("{}.{} must be a whole number ≥ 0, got {}", at, key, v.dump()));
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  std::string text(const nlohmann::json& j, const char* key, const std::string& at) const {
    const auto& v = get(j, key, at);
    if (!v.is_string()) fail(fmt::format("{}.{} must be a string, got {}", at, key, v.dump()));
    return v.get<std::string>();
  }
  std::string checksum(const nlohmann::json& j, const std::string& at) const {
    std::string h = text(j, "fnv1a64", at);
    if (h.size() != 16 || h.find_first_not_of("0123456789abcdef") != std::string::npos)
      fail(fmt::format("{}.fnv1a64 must be 16 lowercase hex digits, got \"{}\"", at, h));
    return h;
  }
  // A plain file name: the reader opens it inside the DATA_DIR and nowhere else.
  std::string file_name(const nlohmann::json& j, const std::string& at) const {
    std::string f = text(j, "file", at);
    if (f.empty() || f == "." || f == ".." || f.find('/') != std::string::npos ||
        f.find('\0') != std::string::npos)
      fail(fmt::format("{}.file \"{}\" is not a plain file name", at, f));
    return f;
  }
};

}  // namespace

std::string DatasetManifest::to_json() const {
  Json j;
  j["format"] = "attnlab-dataset";
  j["version"] = kVersion;
  j["tokenizer"] = {{"kind", tokenizer_kind},
                    {"vocab_size", vocab_size},
                    {"byte_fallback", byte_fallback},
                    {"file", tokenizer_file},
                    {"fnv1a64", tokenizer_fnv1a64}};
  j["dtype"] = dtype;
  j["val_fraction"] = val_fraction;
  Json splits_json = Json::object();
  for (size_t s = 0; s < 2; ++s) {
    const SplitInfo& split = splits[s];
    Json shards = Json::array();
    for (const ShardInfo& shard : split.shards)
      shards.push_back(
          {{"file", shard.file}, {"tokens", shard.tokens}, {"fnv1a64", shard.fnv1a64}});
    splits_json[s == 0 ? "train" : "val"] = {{"tokens", split.tokens},
                                             {"bytes", split.bytes},
                                             {"documents", split.documents},
                                             {"shards", shards}};
  }
  j["splits"] = splits_json;
  Json sources_json = Json::array();
  for (const SourceInfo& s : sources)
    sources_json.push_back({{"path", s.path}, {"bytes", s.bytes}, {"fnv1a64", s.fnv1a64}});
  j["sources"] = sources_json;
  return j.dump(2) + "\n";
}

DatasetManifest DatasetManifest::from_json(std::string_view json, std::string_view what) {
  const Reader r{what};
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    r.fail(fmt::format("not JSON ({})", e.what()));
  }
  if (!j.is_object()) r.fail("expected an object");
  if (r.text(j, "format", "the manifest") != "attnlab-dataset")
    r.fail("\"format\" is not \"attnlab-dataset\"");
  const auto& version = r.get(j, "version", "the manifest");
  if (version != kVersion)
    r.fail(fmt::format("version {} is not supported (this attnlab reads version {})",
                       version.dump(), kVersion));
  DatasetManifest m;
  const auto& tok = r.get(j, "tokenizer", "the manifest");
  m.tokenizer_kind = r.text(tok, "kind", "tokenizer");
  if (m.tokenizer_kind != "char" && m.tokenizer_kind != "bpe" && m.tokenizer_kind != "unigram")
    r.fail(fmt::format("tokenizer.kind \"{}\" is not char, bpe or unigram", m.tokenizer_kind));
  m.vocab_size = r.count(tok, "vocab_size", "tokenizer");
  if (m.vocab_size < 1 || m.vocab_size > (int64_t{1} << 31))
    r.fail(fmt::format("tokenizer.vocab_size {} is out of range", m.vocab_size));
  const auto& fallback = r.get(tok, "byte_fallback", "tokenizer");
  if (!fallback.is_boolean()) r.fail("tokenizer.byte_fallback must be true or false");
  m.byte_fallback = fallback.get<bool>();
  m.tokenizer_file = r.file_name(tok, "tokenizer");
  m.tokenizer_fnv1a64 = r.checksum(tok, "tokenizer");
  m.dtype = r.text(j, "dtype", "the manifest");
  if (m.dtype != token_dtype(m.vocab_size))
    r.fail(fmt::format("dtype \"{}\" does not fit a vocabulary of {} (it is {})", m.dtype,
                       m.vocab_size, token_dtype(m.vocab_size)));
  const auto& fraction = r.get(j, "val_fraction", "the manifest");
  if (!fraction.is_number() || !(fraction.get<double>() > 0 && fraction.get<double>() < 1))
    r.fail(fmt::format("val_fraction must be a number in (0, 1), got {}", fraction.dump()));
  m.val_fraction = fraction.get<double>();
  const auto& splits = r.get(j, "splits", "the manifest");
  std::vector<std::string> files = {m.tokenizer_file, "dataset.json"};
  for (size_t s = 0; s < 2; ++s) {
    const std::string name = s == 0 ? "train" : "val";
    const auto& sj = r.get(splits, name.c_str(), "splits");
    const std::string at = "splits." + name;
    SplitInfo& split = m.splits[s];
    split.tokens = r.count(sj, "tokens", at);
    split.bytes = r.count(sj, "bytes", at);
    split.documents = r.count(sj, "documents", at);
    const auto& shards = r.get(sj, "shards", at);
    if (!shards.is_array()) r.fail(fmt::format("{}.shards must be an array", at));
    int64_t sum = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string sat = fmt::format("{}.shards[{}]", at, i);
      ShardInfo shard{r.file_name(shards[i], sat), r.count(shards[i], "tokens", sat),
                      r.checksum(shards[i], sat)};
      for (const std::string& f : files)
        if (f == shard.file) r.fail(fmt::format("{}.file \"{}\" is named twice", sat, f));
      files.push_back(shard.file);
      sum += shard.tokens;
      split.shards.push_back(std::move(shard));
    }
    if (sum != split.tokens)
      r.fail(fmt::format("{}.tokens is {} but its shards hold {}", at, split.tokens, sum));
  }
  if (j.contains("sources")) {
    const auto& sources = j["sources"];
    if (!sources.is_array()) r.fail("sources must be an array");
    for (size_t i = 0; i < sources.size(); ++i) {
      const std::string at = fmt::format("sources[{}]", i);
      m.sources.push_back({r.text(sources[i], "path", at), r.count(sources[i], "bytes", at),
                           r.checksum(sources[i], at)});
    }
  }
  return m;
}

}  // namespace attnlab
