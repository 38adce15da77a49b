// Fuzz target: a prepared dataset's manifest and a token shard
// (train/dataset_manifest.hpp: DatasetManifest::from_json, decode_token_ids),
// what `attnlab train --data DATA_DIR` reads from a directory it did not write.
// The input is "<dataset.json>\0<shard bytes>": the manifest is parsed and
// checked (types, counts that must add up, file names that must stay inside the
// directory, dtype against vocabulary); an accepted one must survive to_json →
// from_json, and the rest, read as that manifest's ids, must give ids inside
// the vocabulary or be refused as corrupt.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnlab/train/dataset_manifest.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* begin = reinterpret_cast<const char*>(data);
  const char* nul = static_cast<const char*>(std::memchr(begin, 0, size));
  const std::string_view json(begin, nul ? static_cast<size_t>(nul - begin) : size);
  const std::string_view shard =
      nul ? std::string_view(nul + 1, size - json.size() - 1) : std::string_view();

  std::optional<DatasetManifest> m;
  if (!fuzz::refuse_or_run([&] { m = DatasetManifest::from_json(json, "dataset.json"); })) return 0;
  const std::string again = m->to_json();
  FUZZ_EXPECT(DatasetManifest::from_json(again, "again").to_json() == again);
  for (const SplitInfo& split : m->splits)
    for (const ShardInfo& s : split.shards)
      FUZZ_EXPECT(!s.file.empty() && s.file.find('/') == std::string::npos && s.file != "..");

  const int width = m->dtype_bytes();
  const int64_t count = static_cast<int64_t>(shard.size()) / width;
  std::vector<int32_t> ids(static_cast<size_t>(count));
  if (!fuzz::refuse_or_run([&] {
        decode_token_ids(reinterpret_cast<const unsigned char*>(shard.data()), count, width,
                         m->vocab_size, ids.data(), "shard");
      }))
    return 0;
  for (const int32_t id : ids) FUZZ_EXPECT(id >= 0 && id < m->vocab_size);
  Fnv1a64 h;
  h.update(shard);
  FUZZ_EXPECT(h.hex().size() == 16);
  return 0;
}
