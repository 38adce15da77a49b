// Whole training runs on a small corpus: the loss falls, resume is bit-exact,
// accumulation equals a bigger batch, the NaN guard stops cleanly, a stop
// request saves and resumes, and metrics.csv has its columns and survives a
// row cut short.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/metrics.hpp"
#include "attnlab/train/training_run.hpp"
#include "tests/models/checkpoint_values.hpp"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

// A fresh temporary directory per test, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / fs::path("attnlab-train-" + std::to_string(::getpid()) +
                                                "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The first n characters of tiny-shakespeare, as a corpus file.
std::string small_corpus(const TempDir& dir, size_t n = 20000) {
  std::string text = read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, n);
  const std::string path = dir.file("corpus.txt");
  std::ofstream(path) << text;
  return path;
}

ModelConfig tiny_config(int64_t vocab, const std::string& attention = "mha") {
  return config_from_json(
      R"({"vocab_size": )" + std::to_string(vocab) +
      R"(, "d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 16, )" + R"("attention": ")" +
      attention + R"(", "n_kv_heads": )" +
      (attention == "gqa"   ? "1"
       : attention == "mqa" ? "1"
                            : "2") +
      (attention == "mla" ? R"(, "q_lora_rank": 8, "kv_lora_rank": 8, "rope_head_dim": 4})" : "}"));
}

TrainSettings tiny_settings(const std::string& corpus) {
  TrainSettings s;
  s.data_path = corpus;
  s.steps = 20;
  s.batch_size = 4;
  s.seq_len = 16;
  s.lr = 1e-2;
  s.min_lr = 1e-3;
  s.warmup = 2;
  s.eval_every = 10;
  s.eval_batches = 3;
  s.threads = 1;
  return s;
}

}  // namespace

TEST_CASE("loss falls on a small overfit run, and metrics.csv has its columns") {
  TempDir dir;
  const std::string corpus = small_corpus(dir, 3000);
  TrainSettings s = tiny_settings(corpus);
  s.steps = 120;
  s.eval_every = 40;
  const RunSummary r =
      start_run({tiny_config(corpus_vocab_size(corpus)), s, dir.file("run")}, {.quiet = true});
  CHECK(r.steps == 120);
  const MetricsLog log = MetricsLog::read(dir.file("run/metrics.csv"), 1 << 30);
  REQUIRE(log.rows().size() == 120);
  CHECK(log.rows().front().train_loss > 3.0);  // ≈ ln(V) at the start
  CHECK(log.rows().back().train_loss < log.rows().front().train_loss - 1.0);
  int evals = 0;
  for (const MetricsRow& row : log.rows()) evals += row.val_loss.has_value();
  CHECK(evals == 3);  // steps 40, 80, 120
  std::ifstream in(dir.file("run/metrics.csv"));
  std::string header;
  std::getline(in, header);
  CHECK(header == "step,train_loss,val_loss,lr,grad_norm,aux_loss,tokens_per_s,elapsed_s");
  CHECK(fs::exists(dir.file("run/best.safetensors")));
  // The checkpoints carry the tokenizer and the config, and load.
  const Checkpoint ck = read_checkpoint(dir.file("run/last.safetensors"));
  CHECK(ck.metadata.count("tokenizer") == 1);
  CHECK(ck.optimizer.size() == 2 * ck.parameters.size());
  CHECK(read_checkpoint(dir.file("run/best.safetensors")).optimizer.empty());
}

TEST_CASE("resume is bit-exact: 2N steps == N steps resumed to 2N") {
  for (const std::string attention : {"mha", "mla"}) {
    CAPTURE(attention);
    TempDir dir;
    const std::string corpus = small_corpus(dir);
    const ModelConfig config = tiny_config(corpus_vocab_size(corpus), attention);
    TrainSettings s = tiny_settings(corpus);
    s.decay_steps = 20;                          // the schedule is part of the run: fix it for both
    s.dropout = attention == "mla" ? 0.1 : 0.0;  // the dropout stream resumes too
    start_run({config, s, dir.file("whole")}, {.quiet = true});
    s.steps = 10;
    start_run({config, s, dir.file("halves")}, {.quiet = true});
    resume_run(dir.file("halves"), {.steps = 20}, {.quiet = true});
    const Checkpoint a = read_checkpoint(dir.file("whole/last.safetensors"));
    const Checkpoint b = read_checkpoint(dir.file("halves/last.safetensors"));
    CHECK(a.meta("train.step") == "20");
    CHECK(b.meta("train.step") == "20");
    CHECK(test::checkpoint_values(a) ==
          test::checkpoint_values(b));  // every weight and moment, to the bit
    CHECK(a.meta("train.sampler_state") == b.meta("train.sampler_state"));
    const auto rows_a = MetricsLog::read(dir.file("whole/metrics.csv"), 1 << 30).rows();
    const auto rows_b = MetricsLog::read(dir.file("halves/metrics.csv"), 1 << 30).rows();
    REQUIRE(rows_a.size() == rows_b.size());
    for (size_t i = 0; i < rows_a.size(); ++i) CHECK(rows_a[i].train_loss == rows_b[i].train_loss);
  }
}

TEST_CASE("gradient accumulation of k micro-batches equals one batch k times larger") {
  const ModelConfig config = tiny_config(20);
  LanguageModel big(config, DType::F64, 3), small(config, DType::F64, 3);
  Rng rng(5);
  std::vector<int32_t> ids(4 * 8), targets(4 * 8);
  for (auto& v : ids) v = static_cast<int32_t>(rng.below(20));
  for (auto& v : targets) v = static_cast<int32_t>(rng.below(20));
  big.loss(ids, targets, 4, 8).loss.backward();
  const std::span<const int32_t> all_ids(ids), all_targets(targets);
  for (int micro = 0; micro < 2; ++micro) {
    auto l = small.loss(all_ids.subspan(micro * 16, 16), all_targets.subspan(micro * 16, 16), 2, 8);
    l.loss.backward(Tensor::full({}, 0.5, DType::F64));
  }
  const auto pb = big.named_parameters(), ps = small.named_parameters();
  for (size_t i = 0; i < pb.size(); ++i) {
    const auto gb = pb[i].second.grad().to_vector(), gs = ps[i].second.grad().to_vector();
    for (size_t j = 0; j < gb.size(); ++j) CHECK(gs[j] == doctest::Approx(gb[j]).epsilon(1e-10));
  }
}

TEST_CASE("the NaN guard stops with a message and keeps the last good checkpoint") {
  TempDir dir;
  const std::string corpus = small_corpus(dir);
  TrainSettings s = tiny_settings(corpus);
  s.steps = 200;
  s.eval_every = 1;
  s.lr = 1e6;  // AdamW moves every weight by ~lr per step: the loss overflows quickly
  s.min_lr = 1e6;
  s.clip = 0;
  const std::string run = dir.file("run");
  try {
    start_run({tiny_config(corpus_vocab_size(corpus)), s, run}, {.quiet = true});
    FAIL("training with lr 1e6 should have stopped");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("became") != std::string::npos);
    CHECK(msg.find("training stopped") != std::string::npos);
    CHECK(msg.find("the last good checkpoint is") != std::string::npos);
  }
  const Checkpoint ck = read_checkpoint(run + "/last.safetensors");
  for (double v : test::checkpoint_values(ck)) REQUIRE(std::isfinite(v));
}

TEST_CASE("bad runs are refused with their messages") {
  TempDir dir;
  const std::string corpus = small_corpus(dir);
  TrainSettings s = tiny_settings(corpus);
  const ModelConfig config = tiny_config(corpus_vocab_size(corpus));
  start_run({config, s, dir.file("run")}, {.quiet = true});
  CHECK_THROWS_WITH_AS(start_run({config, s, dir.file("run")}, {.quiet = true}),
                       doctest::Contains("already holds a run: continue it with --resume"), Error);
  CHECK_THROWS_WITH_AS(resume_run(dir.file("nothing"), {}, {.quiet = true}),
                       doctest::Contains("no such run directory"), Error);
  CHECK_THROWS_WITH_AS(resume_run(dir.file("run"), {.steps = 5}, {.quiet = true}),
                       doctest::Contains("--steps 5 is below the run's step 20"), Error);
  std::ofstream(dir.file("empty.txt")).flush();
  s.data_path = dir.file("empty.txt");
  CHECK_THROWS_WITH_AS(start_run({config, s, dir.file("r2")}, {.quiet = true}),
                       doctest::Contains("empty"), Error);
  std::ofstream(dir.file("short.txt")) << "To be or not";
  s.data_path = dir.file("short.txt");
  CHECK_THROWS_WITH_AS(start_run({tiny_config(40), s, dir.file("r3")}, {.quiet = true}),
                       doctest::Contains("too short"), Error);
  s.data_path = corpus;
  CHECK_THROWS_WITH_AS(
      start_run({tiny_config(5), s, dir.file("r4")}, {.quiet = true}),
      doctest::Contains("tokens (char, 58 tokens) but the model's vocab_size is 5"), Error);
  s.seq_len = 17;
  CHECK_THROWS_WITH_AS(start_run({config, s, dir.file("r5")}, {.quiet = true}),
                       "--seq-len 17 exceeds the model's max_seq_len 16", Error);
  CHECK(!fs::exists(dir.file("r2")));
  CHECK(!fs::exists(dir.file("r5")));
}

TEST_CASE("RunControl::stop ends the run after the step in progress, saved, and it resumes") {
  TempDir dir;
  const std::string corpus = small_corpus(dir);
  const ModelConfig config = tiny_config(corpus_vocab_size(corpus));
  TrainSettings s = tiny_settings(corpus);
  const std::atomic<bool> stop{true};  // asked before the first step: one step is done
  const RunSummary r =
      start_run({config, s, dir.file("run")}, {.quiet = true}, nullptr, {.stop = &stop});
  CHECK(r.stopped);
  CHECK(r.steps == 1);
  CHECK(read_checkpoint(dir.file("run/last.safetensors")).meta("train.step") == "1");
  CHECK(MetricsLog::read(dir.file("run/metrics.csv"), 1 << 30).rows().size() == 1);
  const RunSummary rest = resume_run(dir.file("run"), {}, {.quiet = true});
  CHECK(!rest.stopped);
  CHECK(rest.steps == s.steps);
  CHECK(MetricsLog::read(dir.file("run/metrics.csv"), 1 << 30).rows().size() ==
        static_cast<size_t>(s.steps));
}

TEST_CASE("metrics.csv: rows are appended as steps end; a line cut short by a kill is no row") {
  TempDir dir;
  const std::string path = dir.file("metrics.csv");
  for (int64_t step = 1; step <= 3; ++step) {
    MetricsRow row;
    row.step = step;
    MetricsLog::append(path, row);
  }
  CHECK(MetricsLog::read(path, 100).rows().size() == 3);
  CHECK(MetricsLog::read(path, 2).rows().size() == 2);
  std::ofstream(path, std::ios::app) << "4,1.0";  // a kill in the middle of the fourth row
  const auto rows = MetricsLog::read(path, 100).rows();
  REQUIRE(rows.size() == 3);
  CHECK(rows.back().step == 3);
}
