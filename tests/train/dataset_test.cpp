// TextDataset and BatchSampler: nanoGPT's 90/10 split, windows and their
// targets, reproducible and resumable batches, the fixed eval set, refusals.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/dataset.hpp"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

const char* const kShakespeare = ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt";

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A file in a fresh temporary directory, removed with it at the end of the test.
struct TempDir {
  fs::path dir;
  explicit TempDir(const std::string& name)
      : dir(fs::temp_directory_path() / ("attnlab_dataset_test_" + name)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
  fs::path write(const std::string& file, const std::string& content) const {
    const fs::path path = dir / file;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
};

// Text of n distinct-enough characters: "abcdefghij" repeated.
std::string letters(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>('a' + i % 10);
  return s;
}

void check_batch_against_split(const Batch& batch, std::span<const int32_t> split) {
  const int64_t B = batch.batch_size, T = batch.seq_len;
  REQUIRE(batch.inputs.size() == static_cast<size_t>(B * T));
  REQUIRE(batch.targets.size() == static_cast<size_t>(B * T));
  REQUIRE(batch.starts.size() == static_cast<size_t>(B));
  const auto n = static_cast<int64_t>(split.size());
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = batch.starts[b];
    REQUIRE(start >= 0);
    REQUIRE(start <= n - T - 1);  // the whole window of T + 1 tokens is inside the split
    for (int64_t t = 0; t < T; ++t) {
      CHECK(batch.inputs[b * T + t] == split[start + t]);
      CHECK(batch.targets[b * T + t] == split[start + t + 1]);
      if (t + 1 < T) CHECK(batch.targets[b * T + t] == batch.inputs[b * T + t + 1]);
    }
  }
}

}  // namespace

TEST_CASE("tiny-shakespeare splits 90/10 as nanoGPT") {
  const TextDataset data = TextDataset::from_file(kShakespeare, 256);
  CHECK(data.tokenizer().vocab_size() == 65);
  CHECK(data.num_tokens() == 1115394);
  CHECK(data.size(Split::kTrain) == 1003854);  // nanoGPT's train.bin
  CHECK(data.size(Split::kVal) == 111540);     // nanoGPT's val.bin
  CHECK(data.seq_len() == 256);
  const std::string text = read_text_file(kShakespeare);
  const std::vector<int32_t> all = data.tokenizer().encode(text);
  const auto train = data.tokens(Split::kTrain), val = data.tokens(Split::kVal);
  CHECK(std::equal(train.begin(), train.end(), all.begin()));
  CHECK(std::equal(val.begin(), val.end(), all.begin() + 1003854));
  CHECK(train.data() + train.size() == val.data());  // one buffer, no copy
}

TEST_CASE("split sizes are exactly int(0.9 * n) and the rest") {
  for (const size_t n : {20u, 22u, 37u, 100u, 1001u, 12345u}) {
    CAPTURE(n);
    const TextDataset data = TextDataset::from_text(letters(n), 1);
    CHECK(data.size(Split::kTrain) == static_cast<int64_t>(0.9 * static_cast<double>(n)));
    CHECK(data.size(Split::kTrain) == static_cast<int64_t>(n * 9 / 10));
    CHECK(data.size(Split::kTrain) + data.size(Split::kVal) == static_cast<int64_t>(n));
  }
  // Tokens, not bytes: 100 two-byte characters are 100 tokens.
  std::string wide;
  for (int i = 0; i < 100; ++i) wide += i % 2 ? "\u00e9" : "\u00fc";
  const TextDataset data = TextDataset::from_text(wide, 5);
  CHECK(data.num_tokens() == 100);
  CHECK(data.size(Split::kTrain) == 90);
  CHECK(data.size(Split::kVal) == 10);
}

TEST_CASE("windows are in bounds and targets are inputs shifted by one") {
  const TextDataset data = TextDataset::from_file(kShakespeare, 64);
  for (const Split split : {Split::kTrain, Split::kVal}) {
    BatchSampler sampler(data, split, 8, 64, 7);
    for (int i = 0; i < 20; ++i) check_batch_against_split(sampler.next(), data.tokens(split));
  }
  // A split with only 3 possible starts: all of them, and nothing else, are drawn.
  const TextDataset small = TextDataset::from_text(letters(60), 3);  // train 54, val 6
  REQUIRE(small.size(Split::kVal) == 6);
  BatchSampler sampler(small, Split::kVal, 4, 3, 1);
  std::set<int64_t> starts;
  for (int i = 0; i < 50; ++i) {
    const Batch batch = sampler.next();
    check_batch_against_split(batch, small.tokens(Split::kVal));
    starts.insert(batch.starts.begin(), batch.starts.end());
  }
  CHECK(starts == std::set<int64_t>{0, 1, 2});
  // T = n - 1: the single window is the whole split.
  BatchSampler whole(small, Split::kVal, 2, 5, 1);
  const Batch b = whole.next();
  CHECK(b.starts == std::vector<int64_t>{0, 0});
  check_batch_against_split(b, small.tokens(Split::kVal));
}

TEST_CASE("the same seed gives the same batches") {
  const TextDataset data = TextDataset::from_file(kShakespeare, 32);
  BatchSampler a(data, Split::kTrain, 4, 32, 42), b(data, Split::kTrain, 4, 32, 42),
      c(data, Split::kTrain, 4, 32, 43);
  bool differs = false;
  for (int i = 0; i < 10; ++i) {
    const Batch x = a.next(), y = b.next(), z = c.next();
    CHECK(x.inputs == y.inputs);
    CHECK(x.targets == y.targets);
    CHECK(x.starts == y.starts);
    differs = differs || x.starts != z.starts;
  }
  CHECK(differs);
  // next(Batch&) reuses the buffers and draws the same stream.
  BatchSampler d(data, Split::kTrain, 4, 32, 42), e(data, Split::kTrain, 4, 32, 42);
  Batch reused;
  for (int i = 0; i < 5; ++i) {
    d.next(reused);
    const int32_t* buffer = reused.inputs.data();
    CHECK(reused.inputs == e.next().inputs);
    if (i > 0) CHECK(reused.inputs.data() == buffer);
  }
}

TEST_CASE("saving and restoring the sampler state continues the identical stream") {
  const TextDataset data = TextDataset::from_file(kShakespeare, 16);
  BatchSampler run(data, Split::kTrain, 3, 16, 2024);
  for (int i = 0; i < 7; ++i) run.next();
  const Rng::State saved = run.state();
  std::vector<Batch> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(run.next());

  // A resumed run: a fresh sampler (any seed) given the saved state.
  BatchSampler resumed(data, Split::kTrain, 3, 16, 0);
  resumed.set_state(saved);
  for (int i = 0; i < 5; ++i) {
    const Batch batch = resumed.next();
    CHECK(batch.starts == expected[i].starts);
    CHECK(batch.inputs == expected[i].inputs);
    CHECK(batch.targets == expected[i].targets);
  }
  CHECK(resumed.state() == run.state());
}

TEST_CASE("eval batches are the same windows on every call") {
  const TextDataset data = TextDataset::from_file(kShakespeare, 32);
  const std::vector<Batch> first = data.eval_batches(Split::kVal, 5, 4, 32);
  const std::vector<Batch> second = data.eval_batches(Split::kVal, 5, 4, 32);
  REQUIRE(first.size() == 5);
  for (size_t i = 0; i < first.size(); ++i) {
    CHECK(first[i].starts == second[i].starts);
    CHECK(first[i].inputs == second[i].inputs);
    CHECK(first[i].targets == second[i].targets);
    check_batch_against_split(first[i], data.tokens(Split::kVal));
  }
  // Batches within the set differ from one another, and another seed differs.
  CHECK(first[0].starts != first[1].starts);
  CHECK(data.eval_batches(Split::kVal, 1, 4, 32, 99)[0].starts != first[0].starts);
  // Drawing training batches in between changes nothing.
  BatchSampler train(data, Split::kTrain, 4, 32, TextDataset::kEvalSeed);
  train.next();
  CHECK(data.eval_batches(Split::kVal, 5, 4, 32)[4].inputs == first[4].inputs);
  check_batch_against_split(data.eval_batches(Split::kTrain, 2, 3, 8)[1],
                            data.tokens(Split::kTrain));
}

TEST_CASE("empty and too-short corpora are refused with their sizes") {
  CHECK_THROWS_WITH_AS(TextDataset::from_text("", 8), "corpus is empty", Error);
  const TempDir tmp("short");
  const fs::path empty = tmp.write("empty.txt", "");
  CHECK(error_of([&] { TextDataset::from_file(empty, 8); }) ==
        "corpus '" + empty.string() + "' is empty");

  CHECK(error_of([&] { TextDataset::from_text(letters(100), 10); }) ==
        "corpus is too short for --seq-len 10: its 100 tokens split into 90 for training and 10 "
        "for validation, and each split needs at least seq_len + 1 = 11 tokens; use --seq-len 9 "
        "or less, or a longer corpus");
  CHECK_NOTHROW(TextDataset::from_text(letters(100), 9));
  const fs::path short_file = tmp.write("short.txt", letters(50));
  CHECK(error_of([&] { TextDataset::from_file(short_file, 256); }) ==
        "corpus '" + short_file.string() +
            "' is too short for --seq-len 256: its 50 tokens split into 45 for training and 5 for "
            "validation, and each split needs at least seq_len + 1 = 257 tokens; use --seq-len 4 "
            "or less, or a longer corpus");
  CHECK(error_of([&] { TextDataset::from_text("ab", 1); }) ==
        "corpus is too short for --seq-len 1: its 2 tokens split into 1 for training and 1 for "
        "validation, and each split needs at least seq_len + 1 = 2 tokens; use a longer corpus");
  CHECK_THROWS_WITH_AS(TextDataset::from_text(letters(100), 0), "seq_len must be at least 1, got 0",
                       Error);
}

TEST_CASE("files: missing, directory, invalid UTF-8 are refused naming the path") {
  CHECK_THROWS_WITH_AS(TextDataset::from_file("/nonexistent/attnlab/corpus.txt", 8),
                       "cannot read '/nonexistent/attnlab/corpus.txt': no such file", Error);
  const TempDir tmp("files");
  CHECK(error_of([&] { TextDataset::from_file(tmp.dir, 8); }) ==
        "cannot read '" + tmp.dir.string() + "': it is a directory, not a text file");
  const fs::path bad = tmp.write("bad.txt", letters(40) + "\xC0\xAF" + letters(40));
  CHECK(error_of([&] { TextDataset::from_file(bad, 4); }) ==
        bad.string() +
            ": corpus has invalid UTF-8 at byte offset 40 (bytes C0 AF): overlong encoding (lead "
            "byte 0xC0 only encodes ASCII)");
  const fs::path good = tmp.write("good.txt", letters(100));
  const TextDataset data = TextDataset::from_file(good, 4, /*byte_fallback=*/true);
  CHECK(data.tokenizer().vocab_size() == 10 + 256);
}

TEST_CASE("a given tokenizer tokenizes another text") {
  const TextDataset shakes = TextDataset::from_file(kShakespeare, 8);
  const std::shared_ptr<const Tokenizer> tok_ptr = shakes.shared_tokenizer();
  const Tokenizer& tok = *tok_ptr;
  const std::string other = "To be, or not to be, that is the question.\n" + std::string(40, 'z');
  const TextDataset data = TextDataset::from_text(other, 8, tok_ptr);
  CHECK(data.tokenizer().same_as(tok));
  CHECK(data.tokens(Split::kTrain)[0] == tok.encode("T")[0]);
  CHECK(data.num_tokens() == static_cast<int64_t>(other.size()));

  const TempDir tmp("given");
  const fs::path file = tmp.write("other.txt", other + "\u00e9" + other);
  CHECK(error_of([&] { TextDataset::from_file(file, 8, tok_ptr); })
            .starts_with(file.string() + ": cannot encode character '\u00e9' (U+00E9) at "
                                         "character 83 (byte offset 83)"));
  const CharTokenizer fb =
      CharTokenizer::from_json(R"({"type":"char","chars":[10,32,84,97],"byte_fallback":true})");
  const TextDataset bytes = TextDataset::from_file(file, 8, fb);
  CHECK(bytes.tokenizer().decode(std::vector<int32_t>(bytes.tokens(Split::kTrain).begin(),
                                                      bytes.tokens(Split::kTrain).end())) ==
        (other + "\u00e9" + other).substr(0, bytes.size(Split::kTrain)));
}

TEST_CASE("sampler arguments are checked") {
  const TextDataset data = TextDataset::from_text(letters(200), 8);  // train 180, val 20
  CHECK_THROWS_WITH_AS(BatchSampler(data, Split::kTrain, 0, 8, 1),
                       "batch size must be at least 1, got 0", Error);
  CHECK_THROWS_WITH_AS(BatchSampler(data, Split::kTrain, 2, -3, 1),
                       "seq_len must be at least 1, got -3", Error);
  CHECK_THROWS_WITH_AS(BatchSampler(data, Split::kVal, 2, 20, 1),
                       "the val split of 20 tokens is too short for seq_len 20: a window needs "
                       "seq_len + 1 = 21 tokens",
                       Error);
  CHECK_NOTHROW(BatchSampler(data, Split::kVal, 2, 19, 1));
  CHECK_THROWS_WITH_AS(data.eval_batches(Split::kVal, 0, 2, 4),
                       "the number of evaluation batches must be at least 1, got 0", Error);
}
