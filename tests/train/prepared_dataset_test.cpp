// Prepared datasets: tokenize_corpus writes them (the same bits with any number
// of threads; split by document; shards; uint32 ids past 65,536 tokens; the
// text comes back from the ids), PreparedDataset reads them through memory
// maps (batches as from the same ids in memory, resident memory that does not
// grow with the corpus), and a training run on one resumes exactly.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/config.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/train/char_tokenizer.hpp"
#include "attnlab/train/prepared_dataset.hpp"
#include "attnlab/train/tokenize_corpus.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "attnlab/train/training_run.hpp"
#include "attnlab/train/utf8.hpp"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("attnlab-prepared-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    fs::create_directories((path / name).parent_path());
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string shakespeare(size_t n) {
  return read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, n);
}

TokenizeOptions options(std::vector<std::string> inputs, std::string out) {
  TokenizeOptions o;
  o.inputs = std::move(inputs);
  o.out_dir = std::move(out);
  return o;
}

// Every id of a split.
std::vector<int32_t> all_ids(const TrainingData& d, Split s) {
  std::vector<int32_t> ids(static_cast<size_t>(d.size(s)));
  d.split(s).read(0, d.size(s), ids.data());
  return ids;
}

int64_t resident_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

}  // namespace

TEST_CASE("tokenize: the text comes back from the ids, the same bits with 1 or 2 threads") {
  const TempDir tmp;
  const std::string text = shakespeare(150000) + "Wherefore, ñandú?\n";
  const std::string corpus = tmp.write("corpus.txt", text);
  for (const std::string kind : {"char", "bpe", "unigram"}) {
    CAPTURE(kind);
    std::string manifests[2];
    for (int threads : {1, 2}) {
      TokenizeOptions o = options({corpus}, tmp / (kind + std::to_string(threads)));
      o.tokenizer = kind;
      o.vocab_size = kind == "char" ? 0 : 400;
      o.threads = threads;
      const DatasetManifest m = tokenize_corpus(o);
      manifests[threads - 1] = m.to_json();
      CHECK(m.tokenizer_kind == kind);
      CHECK(m.dtype == "uint16");
      CHECK(m.splits[0].bytes + m.splits[1].bytes == static_cast<int64_t>(text.size()));
      // The val split begins at a line, about 10% from the end.
      CHECK(std::abs(static_cast<double>(m.splits[1].bytes) / text.size() - 0.1) < 0.01);
      const auto data = PreparedDataset::open(o.out_dir);
      const Tokenizer& tok = data->tokenizer();
      const std::string train = tok.decode(all_ids(*data, Split::kTrain));
      const std::string val = tok.decode(all_ids(*data, Split::kVal));
      CHECK(train + val == text);
      CHECK(val.front() != '\n');
      CHECK(train.back() == '\n');
      CHECK(data->bytes_per_token(Split::kVal) ==
            doctest::Approx(static_cast<double>(val.size()) / data->size(Split::kVal)));
    }
    CHECK(manifests[0] == manifests[1]);
    for (const char* file : {"train.bin", "val.bin"})
      CHECK(read_text_file(tmp / (kind + "1/" + file)) ==
            read_text_file(tmp / (kind + "2/" + file)));
  }
  // SentencePiece's own loader reads tokenizer.model: from_model is its loader.
  CHECK(tokenizer_from_file(tmp / "bpe1/tokenizer.model")->kind() == "bpe");
}

TEST_CASE("tokenize: a folder of documents is split by whole documents, spread through it") {
  const TempDir tmp;
  const std::string text = shakespeare(60000);
  std::string all;
  for (int i = 0; i < 20; ++i) {
    const std::string doc = text.substr(i * 3000, 3000);
    tmp.write("docs/" + std::string(i < 10 ? "a/" : "b/") + std::to_string(100 + i) + ".txt", doc);
    all += doc;
  }
  tmp.write("docs/readme.md", "not a .txt: not read\n");
  const DatasetManifest m = tokenize_corpus(options({tmp / "docs"}, tmp / "D"));
  CHECK(m.splits[0].documents == 18);
  CHECK(m.splits[1].documents == 2);
  CHECK(m.sources.size() == 20);
  CHECK(m.splits[0].bytes + m.splits[1].bytes == static_cast<int64_t>(all.size()));
  // Val documents are whole and spread: the 5th and the 15th.
  const auto data = PreparedDataset::open(tmp / "D");
  CHECK(data->tokenizer().decode(all_ids(*data, Split::kVal)) ==
        text.substr(4 * 3000, 3000) + text.substr(14 * 3000, 3000));
}

TEST_CASE("tokenize: shards past the limit, read back as one sequence") {
  const TempDir tmp;
  const std::string corpus = tmp.write("corpus.txt", shakespeare(50000));
  TokenizeOptions o = options({corpus}, tmp / "one");
  tokenize_corpus(o);
  o.out_dir = tmp / "many";
  o.shard_tokens = 7000;
  const DatasetManifest m = tokenize_corpus(o);
  REQUIRE(m.splits[0].shards.size() == 7);  // 45,0xx tokens
  CHECK(m.splits[0].shards[0].file == "train-00000.bin");
  CHECK(m.splits[0].shards[6].file == "train-00006.bin");
  CHECK(m.splits[1].shards.size() == 1);
  CHECK(m.splits[1].shards[0].file == "val.bin");
  CHECK(!fs::exists(tmp / "many/train.bin"));
  const auto one = PreparedDataset::open(tmp / "one");
  const auto many = PreparedDataset::open(tmp / "many");
  CHECK(all_ids(*one, Split::kTrain) == all_ids(*many, Split::kTrain));
  // Windows across shard boundaries: the same batches as from the ids in memory.
  const std::vector<int32_t> ids = all_ids(*one, Split::kTrain);
  const SpanTokens in_memory(ids);
  BatchSampler a(many->split(Split::kTrain), 8, 64, 5), b(in_memory, 8, 64, 5);
  for (int i = 0; i < 50; ++i) {
    const Batch x = a.next(), y = b.next();
    CHECK(x.inputs == y.inputs);
    CHECK(x.targets == y.targets);
  }
}

TEST_CASE("tokenize: ids are uint32 past 65,536 tokens") {
  const TempDir tmp;
  std::vector<char32_t> chars;
  for (char32_t c = 0x4E00; c < 0x4E00 + 70000; ++c)
    if (utf8::is_scalar_value(c)) chars.push_back(c);
  chars.insert(chars.begin(), U'\n');
  const CharTokenizer tok = CharTokenizer::from_chars(chars);
  const std::string model = tmp.write("big.json", tok.to_json());
  std::string text;
  std::mt19937 rng(3);
  for (int line = 0; line < 200; ++line) {
    for (int i = 0; i < 30; ++i) utf8::append(text, chars[1 + rng() % (chars.size() - 1)]);
    text += '\n';
  }
  TokenizeOptions o = options({tmp.write("corpus.txt", text)}, tmp / "D");
  o.tokenizer_model = model;
  const DatasetManifest m = tokenize_corpus(o);
  CHECK(m.dtype == "uint32");
  CHECK(m.vocab_size == static_cast<int64_t>(chars.size()));
  const auto data = PreparedDataset::open(tmp / "D");
  CHECK(data->tokenizer().decode(all_ids(*data, Split::kTrain)) +
            data->tokenizer().decode(all_ids(*data, Split::kVal)) ==
        text);
  CHECK(fs::file_size(tmp / "D/train.bin") == 4 * static_cast<uint64_t>(m.splits[0].tokens));
}

TEST_CASE("tokenize: an error leaves no DATA_DIR and no temporary; --force replaces a dataset") {
  const TempDir tmp;
  const std::string good = tmp.write("good.txt", shakespeare(20000));
  const std::string bad = tmp.write("bad.txt", shakespeare(20000) + "\xC3(\n");
  CHECK_THROWS_WITH_AS(
      tokenize_corpus(options({good, bad}, tmp / "D")),
      doctest::Contains("bad.txt is not UTF-8 text: invalid UTF-8 at byte offset 20000"), Error);
  CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()) == 2);
  tokenize_corpus(options({good}, tmp / "D"));
  CHECK_THROWS_WITH_AS(tokenize_corpus(options({good}, tmp / "D")),
                       doctest::Contains("already exists"), Error);
  TokenizeOptions o = options({good}, tmp / "D");
  o.force = true;
  o.byte_fallback = true;
  CHECK(tokenize_corpus(o).byte_fallback);
  CHECK(PreparedDataset::open(tmp / "D")->tokenizer().byte_fallback());
  CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()) == 3);
}

TEST_CASE("reading batches from the maps does not grow resident memory with the corpus") {
  const TempDir tmp;
  // About 24 MB of text: 48 MB of uint16 ids in train.bin.
  const std::string piece = shakespeare(1000000);
  {
    std::ofstream out(tmp / "big.txt", std::ios::binary);
    for (int i = 0; i < 24; ++i) out << piece;
  }
  TokenizeOptions o = options({tmp / "big.txt"}, tmp / "D");
  tokenize_corpus(o);
  const auto data = PreparedDataset::open(tmp / "D");
  REQUIRE(data->size(Split::kTrain) > 20'000'000);
  BatchSampler sampler(*data, Split::kTrain, 12, 256, 1);
  Batch batch;
  sampler.next(batch);
  const int64_t before = resident_kib();
  // 3000 batches of 12 windows: 36,000 pages touched, 140 MB if they stayed.
  for (int i = 0; i < 3000; ++i) sampler.next(batch);
  const int64_t grown = resident_kib() - before;
  CHECK(grown < 8 * 1024);
}

TEST_CASE("a run on a prepared dataset resumes exactly, and carries the dataset's tokenizer") {
  const TempDir tmp;
  TokenizeOptions o = options({tmp.write("corpus.txt", shakespeare(40000))}, tmp / "D");
  o.tokenizer = "bpe";
  o.vocab_size = 400;
  tokenize_corpus(o);
  CHECK(corpus_vocab_size(tmp / "D") == 400);
  const ModelConfig config = config_from_json(
      R"({"vocab_size": 400, "d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 16})");
  TrainSettings s;
  s.data_path = tmp / "D";
  s.steps = 6;
  s.decay_steps = 6;  // the schedule is part of the run: the same for both
  s.batch_size = 2;
  s.eval_every = 3;
  s.eval_batches = 2;
  s.warmup = 2;
  s.threads = 1;
  start_run({config, s, tmp / "straight"}, {.quiet = true});
  s.steps = 3;
  start_run({config, s, tmp / "resumed"}, {.quiet = true});
  const RunSummary r = resume_run(tmp / "resumed", {.steps = 6}, {.quiet = true});
  CHECK(r.steps == 6);
  CHECK(r.val_bits_per_byte > 0);
  const SafetensorsFile a = read_safetensors(tmp / "straight/last.safetensors");
  const SafetensorsFile b = read_safetensors(tmp / "resumed/last.safetensors");
  REQUIRE(a.entries.size() == b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {  // every weight and moment, to the bit
    CHECK(a.entries[i].name == b.entries[i].name);
    CHECK(std::equal(a.entries[i].bytes.begin(), a.entries[i].bytes.end(),
                     b.entries[i].bytes.begin(), b.entries[i].bytes.end()));
  }
  CHECK(a.metadata.at("train.sampler_state") == b.metadata.at("train.sampler_state"));
  const Checkpoint ck = read_checkpoint(tmp / "resumed/best.safetensors");
  CHECK(tokenizer_from_json(ck.meta("tokenizer"))
            ->same_as(PreparedDataset::open(tmp / "D")->tokenizer()));
}
