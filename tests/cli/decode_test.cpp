// `attnlab inspect --decode`: the logits of the KV-cached decoder, fed the
// inputs one token at a time, against the independent PyTorch reference of
// tests/data/reference (every variant case), and against attnlab's own
// training forward (`inspect` without --decode) on random models, from both
// checkpoint forms, in f32 and f64.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::reference_cases;
using testing::run_attnlab;
using testing::TempDir;

// max|a − b| / max|b| over one tensor of two files, read as f64.
double relative_error(const SafetensorsFile& actual, const SafetensorsFile& expected,
                      const std::string& name) {
  const Tensor a = to_tensor(actual.at(name), DType::F64);
  const Tensor e = to_tensor(expected.at(name), DType::F64);
  REQUIRE(a.shape() == e.shape());
  const double* x = a.data<double>();
  const double* y = e.data<double>();
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < e.numel(); ++i) {
    const double d = std::abs(x[i] - y[i]);
    diff = std::isnan(d) ? INFINITY : std::max(diff, d);
    scale = std::max(scale, std::abs(y[i]));
  }
  return diff / std::max(scale, 1e-30);
}

void write_batch(const std::string& path, int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  Int64Array inputs{{B, T}, {}}, targets{{B, T}, {}};
  for (int32_t id : test::random_ids(B * T, vocab, seed)) inputs.values.push_back(id);
  for (int32_t id : test::random_ids(B * T, vocab, seed + 1)) targets.values.push_back(id);
  write_safetensors_values(path, {{"inputs", inputs}, {"targets", targets}});
}

TEST_CASE("inspect --decode matches the PyTorch reference on every case of tests/data/reference") {
  const std::vector<fs::path> cases = reference_cases();
  REQUIRE_MESSAGE(!cases.empty(), "no case directories under tests/data/reference");
  TempDir tmp("attnlab-decode-ref");
  for (const fs::path& dir : cases) {
    const std::string name = dir.filename().string();
    const SafetensorsFile expected = read_safetensors((dir / "expected.safetensors").string());
    for (const auto& [dtype, rtol] : {std::pair{"f32", 1e-4}, std::pair{"f64", 1e-9}}) {
      INFO("case " << name << ", --dtype " << dtype);
      const std::string out = tmp.file(name + "." + dtype + ".safetensors");
      const CommandResult r = run_attnlab(
          {"inspect", "--decode", "--checkpoint", (dir / "model.safetensors").string(), "--batch",
           (dir / "batch.safetensors").string(), "--out", out, "--dtype", dtype});
      REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
      CHECK(r.out.rfind("decoded token by token: loss ", 0) == 0);
      const SafetensorsFile actual = read_safetensors(out);
      CHECK(actual.entries.size() == 4);  // logits, loss, ce, aux: no gradients
      CHECK(actual.metadata.at("mode") == "decode");
      for (const char* tensor : {"logits", "loss", "ce", "aux"}) {
        INFO(tensor);
        CHECK(actual.at(tensor).dtype == (std::string(dtype) == "f32" ? "F32" : "F64"));
        CHECK(relative_error(actual, expected, tensor) <= rtol);
      }
    }
  }
}

TEST_CASE("inspect --decode gives the training forward's logits, from either checkpoint form") {
  TempDir tmp("attnlab-decode");
  struct Case {
    test::Variant variant;
    int64_t batch;
  };
  const std::vector<Case> cases{
      {{.attention = "mha", .moe = true}, 2},
      {{.attention = "gqa", .rope_fraction = 0.5}, 3},
      {{.attention = "mqa", .moe = true, .top_k = 1}, 1},
      {{.attention = "mla", .moe = true, .ffn = "relu", .tied = true}, 2},
  };
  for (const Case& c : cases) {
    INFO(c.variant.name());
    const ModelConfig config = test::small_config(c.variant);
    const auto model = test::random_model(config, DType::F32, 21);
    const std::string train = tmp.file("train.safetensors"), dec = tmp.file("dec.safetensors");
    const std::string batch = tmp.file("batch.safetensors");
    write_checkpoint(train, *model);
    write_batch(batch, c.batch, config.max_seq_len, config.vocab_size, 3);
    REQUIRE(run_attnlab({"convert", "--checkpoint", train, "--out", dec, "--quiet"}).exit_code ==
            0);
    for (const auto& [dtype, rtol] : {std::pair{"f32", 1e-5}, std::pair{"f64", 1e-10}}) {
      INFO(dtype);
      const std::string ref = tmp.file("ref.safetensors");
      const CommandResult r = run_attnlab(
          {"inspect", "--checkpoint", train, "--batch", batch, "--out", ref, "--dtype", dtype});
      REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
      const SafetensorsFile expected = read_safetensors(ref);
      // The training form decodes exactly; the decoder form holds the
      // absorbed mla products rounded to f32, so f64 agrees to f32 rounding.
      for (const std::string& ck : {train, dec}) {
        INFO(ck);
        const double tol = ck == dec && std::string(dtype) == "f64" ? 1e-5 : rtol;
        const std::string out = tmp.file("out.safetensors");
        const CommandResult d = run_attnlab({"inspect", "--decode", "--checkpoint", ck, "--batch",
                                             batch, "--out", out, "--dtype", dtype});
        REQUIRE_MESSAGE(d.exit_code == 0, d.describe());
        const SafetensorsFile actual = read_safetensors(out);
        for (const char* tensor : {"logits", "loss", "ce", "aux"}) {
          INFO(tensor);
          CHECK(relative_error(actual, expected, tensor) <= tol);
        }
      }
    }
  }
}

TEST_CASE("inspect --decode refuses a batch longer than max_seq_len; inspect refuses a decoder") {
  TempDir tmp("attnlab-decode-refuse");
  const ModelConfig config = test::small_config({.attention = "gqa", .max_seq_len = 6});
  const auto model = test::random_model(config, DType::F32, 1);
  const std::string train = tmp.file("train.safetensors"), dec = tmp.file("dec.safetensors");
  write_checkpoint(train, *model);
  REQUIRE(run_attnlab({"convert", "--checkpoint", train, "--out", dec, "--quiet"}).exit_code == 0);
  const std::string batch = tmp.file("batch.safetensors");
  write_batch(batch, 1, 7, config.vocab_size, 1);
  const CommandResult r = run_attnlab(
      {"inspect", "--decode", "--checkpoint", dec, "--batch", batch, "--out", tmp.file("o")});
  CHECK(r.exit_code == 1);
  CHECK(r.err ==
        "attnlab: error: step: the context is full: 6 cached tokens + 1 new would need position "
        "6, but positions must stay below the model's max_seq_len 6 (start again with reset(), "
        "or slide the window: attnlab sample --slide)\n");
  CHECK(!fs::exists(tmp.file("o")));

  // Gradients need the training form: plain inspect refuses the decoder file.
  write_batch(batch, 1, 6, config.vocab_size, 1);
  const CommandResult t =
      run_attnlab({"inspect", "--checkpoint", dec, "--batch", batch, "--out", tmp.file("o")});
  CHECK(t.exit_code == 1);
  CHECK(t.err == "attnlab: error: " + dec +
                     ": is a decoder checkpoint; this command needs a training checkpoint "
                     "(attnlab convert writes decoder checkpoints from training ones, not back)\n");
}

}  // namespace
}  // namespace attnlab
