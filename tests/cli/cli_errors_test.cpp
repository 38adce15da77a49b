// Every bad input to the attnlab program ends in one clear message, a
// non-zero exit, and nothing created or damaged.
//
// A table of command lines, each with the exit status it must end with and a
// part of the message it must print. For every row:
//   - the status is the expected one (cli/README.md's table): 2 for a
//     command line wrong in itself (CLI11's checks: a missing, unknown or
//     out-of-range flag, a file that does not exist; and contradictory flags,
//     a flag out of place, an unknown preset), 1 for what only the files, the
//     data or the machine refuse (a bad file, a config that breaks a rule, a
//     run that would not fit in memory, an output that is not the command's
//     own); never a signal (a crash, a core dump);
//   - stderr is exactly one line "attnlab: error: <message>" naming the
//     problem (it holds the expected text), followed, for status 2 only, by
//     "Run with --help for usage."; nothing from a sanitizer;
//   - stdout is empty (nothing is half-done before the refusal);
//   - no file in the scratch directory is created, removed or changed: the
//     command runs there, its inputs and its would-be outputs are there.
//
// The rows cover every subcommand (train, eval, info, inspect, convert,
// sample, survey and its worker survey-decode) with missing,
// unknown, out-of-range and contradictory flags; missing, empty, truncated,
// corrupt and wrong-kind files (a decoder checkpoint, a checkpoint without a
// tokenizer, a batch file or a text file where a checkpoint is needed, a
// checkpoint where a batch is needed); corpora that are empty, not UTF-8,
// too short or outside the tokenizer; files declaring sizes they do not have
// (a billion layers, a context of 2^34 positions); runs that would not fit in
// memory (train: the model, the batch, the context, a run to resume; sample:
// the KV cache), refused with the estimate; an output that is an input; a
// config breaking each rule of docs/MODEL-SPEC.md, as a --config file (info,
// train) and in a checkpoint's header (both checkpoint readers: info and
// sample); tensors breaking the spec's checkpoint rules (missing, unknown,
// wrong shape, wrong dtype, an optimizer tensor of no parameter, lm_head in a
// tied model); and an output directory another attnlab process is writing to
// (this test holds its lock, train/output_lock.hpp: train, --resume, survey,
// tokenize).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "attnlab/models/config.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/train/output_lock.hpp"
#include "tests/cli/cli_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::read_text_file;
using testing::shell_quote;
using testing::TempDir;

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

// Runs attnlab with `args` in `dir`.
CommandResult run_in(const fs::path& dir, const std::vector<std::string>& args) {
  std::string line = "cd " + shell_quote(dir.string()) + " && " + shell_quote(ATTNLAB_EXE);
  for (const std::string& a : args) {
    line += ' ';
    line += shell_quote(a);
  }
  return testing::run_command(line);
}

// Every file under dir (relative path → contents; directories → "<dir>").
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).string();
    files[rel] = e.is_directory() ? "<dir>" : read_text_file(e.path().string());
  }
  return files;
}

// The configs of docs/MODEL-SPEC.md's rules, one broken per row: the file name,
// its JSON and the text the refusal must hold (the key it names).
struct BadConfig {
  std::string name, json, message;
};

std::vector<BadConfig> bad_configs() {
  const std::string base = R"("vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": 2)";
  auto with = [&](const std::string& extra) { return "{" + base + extra + "}"; };
  return {
      {"not_json.json", "{\"vocab_size\": 65,", "malformed JSON"},
      {"not_object.json", "[1, 2]", "must be a JSON object"},
      {"missing_vocab.json", R"({"d_model": 16, "n_layers": 1, "n_heads": 2})",
       "missing required key 'vocab_size'"},
      {"float_int.json", R"({"vocab_size": 65, "d_model": 16.0, "n_layers": 1, "n_heads": 2})",
       "'d_model' must be an integer"},
      {"zero_layers.json", R"({"vocab_size": 65, "d_model": 16, "n_layers": 0, "n_heads": 2})",
       "'n_layers' must be positive"},
      {"negative_heads.json", R"({"vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": -2})",
       "'n_heads' must be positive"},
      {"string_int.json", R"({"vocab_size": "65", "d_model": 16, "n_layers": 1, "n_heads": 2})",
       "'vocab_size' must be an integer"},
      {"unknown_key.json", with(R"(, "n_layer": 2)"), "unknown key 'n_layer'"},
      {"heads_divide.json", R"({"vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": 3})",
       "'n_heads' (3) must divide 'd_model'"},
      {"attention_name.json", with(R"(, "attention": "xla")"), "'attention' must be"},
      {"mha_kv.json", with(R"(, "n_kv_heads": 1)"), "'n_kv_heads' must equal n_heads"},
      {"mqa_kv.json", with(R"(, "attention": "mqa", "n_kv_heads": 2)"),
       "'n_kv_heads' must be 1 for mqa"},
      {"gqa_no_kv.json", with(R"(, "attention": "gqa")"), "'n_kv_heads' is required for gqa"},
      {"gqa_divide.json",
       R"({"vocab_size": 65, "d_model": 24, "n_layers": 1, "n_heads": 6, "attention": "gqa",
           "n_kv_heads": 4})",
       "'n_kv_heads' (4) must divide n_heads (6)"},
      {"mla_no_rank.json", with(R"(, "attention": "mla", "kv_lora_rank": 4, "rope_head_dim": 2)"),
       "'q_lora_rank' is required for mla"},
      {"mla_odd_rope.json",
       with(R"(, "attention": "mla", "q_lora_rank": 8, "kv_lora_rank": 4, "rope_head_dim": 3)"),
       "'rope_head_dim' must be even"},
      {"rope_fraction.json", with(R"(, "rope_fraction": 1.5)"),
       "'rope_fraction' must lie in [0, 1]"},
      {"rope_theta.json", with(R"(, "rope_theta": -1)"), "'rope_theta' must be a positive number"},
      {"ffn_name.json", with(R"(, "ffn": "gelu")"), "'ffn' must be"},
      {"ffn_hidden.json", with(R"(, "ffn_hidden": 0)"), "'ffn_hidden' must be positive"},
      {"negative_experts.json", with(R"(, "n_experts": -1)"), "'n_experts' must be at least 0"},
      {"top_k.json", with(R"(, "n_experts": 2, "top_k": 3)"), "'top_k' must lie in 1"},
      {"top_k_zero.json", with(R"(, "n_experts": 2, "top_k": 0)"), "'top_k' must be positive"},
      {"shared_dense.json", with(R"(, "n_shared_experts": 1)"), "'n_shared_experts' must be 0"},
      {"aux_coef.json", with(R"(, "aux_loss_coef": -0.5)"), "'aux_loss_coef'"},
      {"norm_eps.json", with(R"(, "norm_eps": 0)"), "'norm_eps' must be a positive number"},
      {"tie.json", with(R"(, "tie_embeddings": "yes")"), "'tie_embeddings' must be true or false"},
      {"max_seq_len.json", with(R"(, "max_seq_len": 0)"), "'max_seq_len' must be positive"},
      {"overflow.json",
       R"({"vocab_size": 65, "d_model": 4611686018427387904, "n_layers": 4, "n_heads": 1})",
       "too large"},
      {"empty_config.json", "", "malformed JSON"},
      {"missing_d_model.json", R"({"vocab_size": 65, "n_layers": 1, "n_heads": 2})",
       "missing required key 'd_model'"},
      {"missing_layers.json", R"({"vocab_size": 65, "d_model": 16, "n_heads": 2})",
       "missing required key 'n_layers'"},
      {"missing_heads.json", R"({"vocab_size": 65, "d_model": 16, "n_layers": 1})",
       "missing required key 'n_heads'"},
      {"zero_vocab.json", R"({"vocab_size": 0, "d_model": 16, "n_layers": 1, "n_heads": 2})",
       "'vocab_size' must be positive"},
      {"zero_d_model.json", R"({"vocab_size": 65, "d_model": 0, "n_layers": 1, "n_heads": 2})",
       "'d_model' must be positive"},
      {"huge_int.json",
       R"({"vocab_size": 18446744073709551615, "d_model": 16, "n_layers": 1, "n_heads": 2})",
       "'vocab_size' is too large"},
      {"zero_head_dim.json", with(R"(, "head_dim": 0)"), "'head_dim' must be positive"},
      {"null_head_dim.json", with(R"(, "head_dim": null)"),
       "'head_dim' must be an integer, got null"},
      {"float_ffn.json", with(R"(, "ffn_hidden": 1e3)"), "'ffn_hidden' must be an integer"},
      {"attention_type.json", with(R"(, "attention": 1)"), "'attention' must be a string"},
      {"gqa_zero_kv.json", with(R"(, "attention": "gqa", "n_kv_heads": 0)"),
       "'n_kv_heads' must be positive"},
      {"mla_no_kv_rank.json", with(R"(, "attention": "mla", "q_lora_rank": 8, "rope_head_dim": 2)"),
       "'kv_lora_rank' is required for mla"},
      {"mla_no_rope_dim.json", with(R"(, "attention": "mla", "q_lora_rank": 8, "kv_lora_rank": 4)"),
       "'rope_head_dim' is required for mla"},
      {"mla_zero_rank.json",
       with(R"(, "attention": "mla", "q_lora_rank": 0, "kv_lora_rank": 4, "rope_head_dim": 2)"),
       "'q_lora_rank' must be positive"},
      {"mla_zero_rope_dim.json",
       with(R"(, "attention": "mla", "q_lora_rank": 8, "kv_lora_rank": 4, "rope_head_dim": 0)"),
       "'rope_head_dim' must be positive"},
      {"negative_rank.json", with(R"(, "kv_lora_rank": -4)"), "'kv_lora_rank' must be at least 0"},
      {"rope_fraction_negative.json", with(R"(, "rope_fraction": -0.25)"),
       "'rope_fraction' must lie in [0, 1]"},
      {"rope_theta_type.json", with(R"(, "rope_theta": "1e4")"), "'rope_theta' must be a number"},
      {"top_k_default.json", with(R"(, "n_experts": 1)"),
       "'top_k' must lie in 1 … n_experts (1), got 2"},
      {"negative_shared.json", with(R"(, "n_experts": 2, "n_shared_experts": -1)"),
       "'n_shared_experts' must be at least 0"},
  };
}

// A checkpoint whose header holds the broken config c (and one tensor: the
// config is refused before the tensors are compared with it).
std::string header_checkpoint(const BadConfig& c) {
  return "hdr_" + c.name.substr(0, c.name.size() - std::string(".json").size()) + ".safetensors";
}

// The scratch directory every row runs in, made once.
struct Fixture {
  TempDir dir{"attnlab-cli-errors"};
  // Locks this test holds, as another writer would: busyrun (a run) and the
  // DATA_DIR busydata (its lock file beside it).
  std::optional<OutputLock> busy_lock, busy_data_lock;
  fs::path path() const { return dir.path(); }

  Fixture() {
    const fs::path d = path();
    const std::string shakespeare =
        read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, 4000);
    write_file(d / "corpus.txt", shakespeare);
    write_file(d / "empty.txt", "");
    write_file(d / "bad_utf8.txt", "To be, or not\xff to be" + shakespeare);
    write_file(d / "short.txt", "abcdefghij");
    write_file(d / "trunc_utf8.txt", shakespeare + "\xe6\x97");  // cut inside a character
    std::string foreign;
    for (int i = 0; i < 200; ++i) foreign += "日本語のテキスト ";
    write_file(d / "foreign.txt", foreign);
    write_file(d / "afile", "not a directory\n");
    const std::string tiny =
        R"({"vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 16})";
    write_file(d / "tiny.json", tiny);
    write_file(
        d / "small_vocab.json",
        R"({"vocab_size": 8, "d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 16})");
    // Valid, but some 90 TiB to train: refused by the memory check.
    write_file(d / "huge.json",
               R"({"vocab_size": 65, "d_model": 65536, "n_layers": 64, "n_heads": 64,
                   "max_seq_len": 64})");
    // Valid and small (some 100 MB of weights), but terabytes to train with
    // --batch-size 1048576, or with the default batch at a context of 2^20.
    write_file(d / "wide.json",
               R"({"vocab_size": 65, "d_model": 1024, "n_layers": 2, "n_heads": 8,
                   "max_seq_len": 64})");
    write_file(d / "wide_context.json",
               R"({"vocab_size": 65, "d_model": 1024, "n_layers": 2, "n_heads": 8,
                   "max_seq_len": 1048576})");
    for (const BadConfig& c : bad_configs()) write_file(d / c.name, c.json);

    // A real run of two steps: run/{last,best}.safetensors, run/metrics.csv.
    const CommandResult train = run_in(
        d, {"train", "--config",     "tiny.json", "--data",       "corpus.txt", "--out",
            "run",   "--steps",      "2",         "--eval-every", "0",          "--eval-batches",
            "1",     "--batch-size", "2",         "--seq-len",    "16",         "--threads",
            "1",     "--quiet"});
    REQUIRE_MESSAGE(train.exit_code == 0, train.describe());
    const std::string last = read_text_file((d / "run" / "last.safetensors").string());
    REQUIRE(last.size() > 1000);
    // A copy of it that another writer (this test) holds the lock of.
    fs::copy(d / "run", d / "busyrun");
    busy_lock.emplace(OutputLock::directory((d / "busyrun").string()));
    busy_data_lock.emplace(OutputLock::file((d / "busydata").string()));

    // Prepared datasets (attnlab tokenize), one of another vocabulary, and
    // broken copies: a shard truncated, a shard with a byte changed, a shard
    // missing, a manifest that is not JSON, one that lies about the tokens.
    for (const auto& [name, corpus] :
         {std::pair{"ds", "corpus.txt"}, {"ds_other", "foreign.txt"}}) {
      const CommandResult made =
          run_in(d, {"tokenize", "--data", corpus, "--out", name, "--quiet", "--threads", "1"});
      REQUIRE_MESSAGE(made.exit_code == 0, made.describe());
    }
    const std::string train_bin = read_text_file((d / "ds" / "train.bin").string());
    const std::string manifest = read_text_file((d / "ds" / "dataset.json").string());
    for (const char* broken : {"ds_trunc", "ds_flipped", "ds_noshard", "ds_badjson", "ds_lying"})
      fs::copy(d / "ds", d / broken);
    write_file(d / "ds_trunc" / "train.bin", train_bin.substr(0, train_bin.size() - 2));
    std::string flipped = train_bin;
    flipped[100] ^= 1;
    write_file(d / "ds_flipped" / "train.bin", flipped);
    fs::remove(d / "ds_noshard" / "val.bin");
    write_file(d / "ds_badjson" / "dataset.json", manifest.substr(0, manifest.size() / 2));
    const size_t tokens_at = manifest.find("\"tokens\": ") + 10;  // train's count, 9 in front
    REQUIRE(tokens_at < manifest.size());
    write_file(d / "ds_lying" / "dataset.json",
               manifest.substr(0, tokens_at) + "9" + manifest.substr(tokens_at));
    std::string binary = shakespeare;
    binary[50] = '\0';
    write_file(d / "binary.txt", binary);
    write_file(d / "one_char.txt", "a");
    fs::create_directories(d / "no_txt");
    write_file(d / "no_txt" / "notes.md", "not a .txt file\n");

    // Broken copies of it.
    write_file(d / "empty.safetensors", "");
    write_file(d / "trunc.safetensors", last.substr(0, last.size() / 2));
    std::string corrupt = last;
    std::fill(corrupt.begin() + 12, corrupt.begin() + 40, '\xff');  // inside the header
    write_file(d / "corrupt.safetensors", corrupt);
    std::string lying = last;  // a header length of 2^60
    lying[7] = '\x10';
    write_file(d / "lying.safetensors", lying);

    // Wrong kinds: the weights without the tokenizer and training state (a
    // plain spec checkpoint), and the same marked as a decoder checkpoint.
    const SafetensorsFile file = read_safetensors((d / "run" / "last.safetensors").string());
    std::vector<std::pair<std::string, Tensor>> weights;
    for (const SafetensorsEntry& e : file.entries)
      if (e.name.rfind("optim.", 0) != 0) weights.emplace_back(e.name, to_tensor(e, DType::F32));
    const std::string config = file.metadata.at("config");
    write_safetensors((d / "plain.safetensors").string(), weights, {{"config", config}});
    write_safetensors((d / "decoder.safetensors").string(), weights,
                      {{"config", config}, {"format", "attnlab.decoder"}});

    // Outside data that declares sizes it does not have: a billion layers in
    // a file of one tensor (training and decoder form), and a real model whose
    // config claims a context of 2^34 positions (a KV cache of terabytes).
    const std::string tokenizer = file.metadata.at("tokenizer");
    const std::string billion =
        R"({"vocab_size": 1, "d_model": 1, "n_layers": 1000000000, "n_heads": 1})";
    write_safetensors((d / "layers.safetensors").string(),
                      {{"tok_emb.weight", Tensor::zeros({1, 1})}}, {{"config", billion}});
    write_safetensors(
        (d / "dec_layers.safetensors").string(), {{"tok_emb.weight", Tensor::zeros({1, 1})}},
        {{"config", billion}, {"format", "attnlab.decoder"}, {"tokenizer", tokenizer}});
    ModelConfig long_context = config_from_json(config);
    long_context.max_seq_len = int64_t{1} << 34;
    write_safetensors((d / "longctx.safetensors").string(), weights,
                      {{"config", config_to_json(long_context)}, {"tokenizer", tokenizer}});

    // Run directories: empty, with a truncated checkpoint, with a checkpoint
    // that holds no training state, with a decoder checkpoint.
    fs::create_directories(d / "emptyrun");
    for (const auto& [run, bytes] :
         {std::pair{"brokenrun", last.substr(0, last.size() / 2)},
          {"plainrun", read_text_file((d / "plain.safetensors").string())},
          {"decoderrun", read_text_file((d / "decoder.safetensors").string())}}) {
      fs::create_directories(d / run);
      write_file(d / run / "last.safetensors", bytes);
    }

    // A config breaking each rule, in a checkpoint's header.
    for (const BadConfig& c : bad_configs())
      write_safetensors((d / header_checkpoint(c)).string(),
                        {{"tok_emb.weight", Tensor::zeros({1, 1})}},
                        {{"config", c.json}, {"tokenizer", tokenizer}});

    // Tensors that break the checkpoint rules of docs/MODEL-SPEC.md: one missing,
    // an unknown one, a wrong shape, a wrong dtype, an optimizer tensor of no
    // parameter, an lm_head.weight in a tied model.
    auto variant = [&](const std::string& name, const std::string& drop,
                       const std::vector<std::pair<std::string, Tensor>>& add,
                       const std::string& with_config) {
      std::vector<std::pair<std::string, Tensor>> tensors;
      for (const auto& w : weights)
        if (w.first != drop) tensors.push_back(w);
      tensors.insert(tensors.end(), add.begin(), add.end());
      write_safetensors((d / name).string(), tensors,
                        {{"config", with_config}, {"tokenizer", tokenizer}});
    };
    variant("missing_tensor.safetensors", "norm.weight", {}, config);
    variant("unknown_tensor.safetensors", "", {{"extra.weight", Tensor::zeros({2})}}, config);
    variant("wrong_shape.safetensors", "norm.weight", {{"norm.weight", Tensor::zeros({17})}},
            config);
    variant("stray_optim.safetensors", "", {{"optim.m.extra.weight", Tensor::zeros({2})}}, config);
    ModelConfig tied = config_from_json(config);
    tied.tie_embeddings = true;
    variant("tied_lm_head.safetensors", "", {}, config_to_json(tied));
    std::vector<std::pair<std::string, SafetensorsValue>> int_norm;
    for (const auto& [name, t] : weights) {
      if (name == "norm.weight")
        int_norm.emplace_back(name, Int64Array{t.shape(), std::vector<int64_t>(t.numel(), 1)});
      else
        int_norm.emplace_back(name, t);
    }
    write_safetensors_values((d / "wrong_dtype.safetensors").string(), int_norm,
                             {{"config", config}, {"tokenizer", tokenizer}});

    // More run directories: a last.safetensors that is a text file, empty,
    // corrupt, of a config that breaks a rule, of a model far too large to
    // train (its settings are the real run's).
    for (const auto& [run, bytes] :
         {std::pair{"textrun", shakespeare},
          {"emptyckrun", std::string()},
          {"corruptrun", corrupt},
          {"badcfgrun", read_text_file((d / "hdr_heads_divide.safetensors").string())}}) {
      fs::create_directories(d / run);
      write_file(d / run / "last.safetensors", bytes);
    }
    std::map<std::string, std::string> huge_metadata = file.metadata;
    huge_metadata["config"] = read_text_file((d / "huge.json").string());
    fs::create_directories(d / "hugerun");
    write_safetensors((d / "hugerun" / "last.safetensors").string(),
                      {{"tok_emb.weight", Tensor::zeros({1, 1})}}, huge_metadata);

    // Batch files for inspect.
    auto batch = [&](const std::string& name, const Shape& in_shape, std::vector<int64_t> in,
                     const Shape& tg_shape, std::vector<int64_t> tg) {
      write_safetensors_values((d / name).string(),
                               {{"inputs", Int64Array{in_shape, std::move(in)}},
                                {"targets", Int64Array{tg_shape, std::move(tg)}}});
    };
    batch("batch.safetensors", {1, 4}, {1, 2, 3, 4}, {1, 4}, {2, 3, 4, 5});
    batch("batch_oov.safetensors", {1, 2}, {1, 99}, {1, 2}, {2, 3});
    batch("batch_negative.safetensors", {1, 2}, {1, 2}, {1, 2}, {-1, 3});
    batch("batch_1d.safetensors", {4}, {1, 2, 3, 4}, {4}, {2, 3, 4, 5});
    batch("batch_mismatch.safetensors", {1, 4}, {1, 2, 3, 4}, {2, 2}, {2, 3, 4, 5});
    batch("batch_empty.safetensors", {0, 4}, {}, {0, 4}, {});
    std::vector<int64_t> long_ids(20, 1);
    batch("batch_long.safetensors", {1, 20}, long_ids, {1, 20}, long_ids);
    write_safetensors((d / "batch_float.safetensors").string(),
                      {{"inputs", Tensor::zeros({1, 2})}, {"targets", Tensor::zeros({1, 2})}});
    const std::string batch_bytes = read_text_file((d / "batch.safetensors").string());
    write_file(d / "batch_trunc.safetensors", batch_bytes.substr(0, batch_bytes.size() - 8));
  }
};

Fixture& fixture() {
  static auto f = std::make_unique<Fixture>();
  return *f;
}

struct Row {
  std::vector<std::string> args;
  int exit_code;
  std::string message;    // a part of the error line
  std::string also = {};  // another part of it, if not empty
};

std::vector<Row> rows() {
  const std::vector<std::string> ck = {"--checkpoint", "run/last.safetensors"};
  auto cat = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const std::vector<std::string> train_new = {"train",     "--out",  "newrun",    "--config",
                                              "tiny.json", "--data", "corpus.txt"};
  const std::vector<std::string> inspect = cat({"inspect"}, ck);
  // busyrun and busydata are locked by this test, as by another writer (Fixture).
  const std::string busy_by =
      "another attnlab process (pid " + std::to_string(getpid()) + ") is writing to ";
  const std::string busy = busy_by + "busyrun";
  std::vector<Row> r = {
      // --- the program
      {{}, 2, "A subcommand is required"},
      {{"frobnicate"}, 2, "unknown command 'frobnicate' (the commands are tokenize, train,"},
      {{"trian"}, 2, "unknown command 'trian' (did you mean 'train'?)"},
      {{"--bogus"}, 2, "--bogus"},

      // --- train: flags
      {{"train", "--bogus"}, 2, "unknown flag --bogus of train (attnlab train --help lists"},
      {{"train", "--stpes", "10"}, 2, "unknown flag --stpes of train (did you mean --steps?)"},
      {{"eval", "--checkpoint", "run/last.safetensors", "--batchs", "3"},
       2,
       "unknown flag --batchs of eval (did you mean --batches?)"},
      {{"train", "--preset", "tinyy", "--out", "newrun", "--data", "corpus.txt"},
       2,
       "unknown preset 'tinyy' (the presets are"},

      {{"train", "--data", "corpus.txt"}, 2, "train needs --out RUN_DIR"},
      {cat(train_new, {"--batch-size", "0"}), 2, "--batch-size"},
      {cat(train_new, {"--steps", "-5"}), 2, "--steps"},
      {cat(train_new, {"--steps", "many"}), 2, "--steps"},
      {cat(train_new, {"--lr", "-1"}), 2, "--lr: must be a positive number, got -1"},
      {cat(train_new, {"--lr", "fast"}), 2, "--lr: 'fast' is not a number"},
      {cat(train_new, {"--warmup", "-3"}), 2, "--warmup: must be ≥ 0"},
      {cat(train_new, {"--clip", "-1"}), 2, "--clip: must be ≥ 0"},
      {cat(train_new, {"--dropout", "1.5"}), 2, "--dropout"},
      {cat(train_new, {"--threads", "-1"}), 2, "--threads"},
      {cat(train_new, {"--accum", "0"}), 2, "--accum"},
      {cat(train_new, {"--seq-len", "0"}), 2, "--seq-len"},
      {cat(train_new, {"--eval-batches", "0"}), 2, "--eval-batches"},
      {cat(train_new, {"--eval-every", "-1"}), 2, "--eval-every: must be ≥ 0"},
      {cat(train_new, {"--weight-decay", "-0.1"}), 2, "--weight-decay: must be ≥ 0"},
      {cat(train_new, {"--decay-steps", "-1"}), 2, "--decay-steps: must be ≥ 0"},
      {cat(train_new, {"--min-lr", "-1"}), 2, "--min-lr: must be ≥ 0"},
      {cat(train_new, {"--seed", "-1"}), 2,
       "--seed: must be a whole number in [0, 2^64 - 1], got -1"},
      {cat(train_new, {"--seed", "99999999999999999999"}), 2, "--seed: must be a whole number"},
      {{"train", "--out", "newrun", "--preset", "baby", "--shared-experts", "100"},
       2,
       "--shared-experts"},
      {{"train", "--out", "newrun", "--preset", "baby", "--shared-experts", "1"},
       1,
       "'n_shared_experts' needs 'n_experts' > 0"},
      {{"train", "--out", "newrun", "--attention", "xla"}, 2, "--attention"},
      {{"train", "--out", "newrun", "--experts", "0"}, 2, "--experts"},
      {{"train", "--out", "newrun", "--preset", "huge"}, 2, "unknown preset 'huge'"},
      {cat(train_new, {"--preset", "baby"}), 2, "give --preset or --config, not both"},
      {cat(train_new, {"--attention", "mla"}), 2, "go with --preset"},
      {{"train", "--out", "newrun", "--preset", "baby", "--experts-per-token", "2"},
       1,
       "'top_k' needs 'n_experts' > 0"},
      {{"train", "--out", "newrun", "--preset", "baby", "--experts", "2", "--experts-per-token",
        "3"},
       1,
       "'top_k' must lie in 1 … n_experts (2), got 3"},
      {cat(train_new, {"--lr", "0.01", "--min-lr", "0.1"}), 2, "--min-lr must lie in [0, --lr"},
      {cat(train_new, {"--seq-len", "32"}), 1, "--seq-len 32 exceeds the model's max_seq_len 16"},
      // --- train: files
      {{"train", "--out", "newrun", "--data", "missing.txt"}, 2, "Path does not exist"},
      {{"train", "--out", "newrun", "--data", "run"},
       1,
       "run: a folder, but not a prepared dataset: it has no dataset.json"},
      {{"train", "--out", "newrun", "--data", "empty.txt"}, 1, "empty.txt: corpus is empty"},
      {{"train", "--out", "newrun", "--data", "bad_utf8.txt"},
       1,
       "bad_utf8.txt: corpus has invalid UTF-8 at byte offset 13"},
      {{"train", "--out", "newrun", "--config", "tiny.json", "--data", "trunc_utf8.txt"},
       1,
       "trunc_utf8.txt: corpus has invalid UTF-8",
       "truncated 3-byte sequence"},
      {{"train", "--out", "newrun", "--config", "tiny.json", "--data", "short.txt"},
       1,
       "corpus 'short.txt' is too short for --seq-len 16"},
      {{"train", "--out", "newrun", "--config", "small_vocab.json", "--data", "corpus.txt"},
       1,
       "tokens) but the model's vocab_size is 8"},
      {{"train", "--out", "newrun", "--config", "missing.json"}, 2, "File does not exist"},
      {{"train", "--out", "newrun", "--config", "corpus.txt"}, 1, "corpus.txt: malformed JSON"},
      {{"train", "--out", "newrun", "--config", "run/last.safetensors", "--data", "corpus.txt"},
       1,
       "run/last.safetensors: malformed JSON"},
      {{"train", "--out", "newrun", "--config", "tiny.json", "--data", "run/last.safetensors"},
       1,
       "run/last.safetensors: corpus has invalid UTF-8"},
      {{"train", "--out", "newrun", "--config", "huge.json", "--data", "corpus.txt"},
       1,
       "this training run needs about"},
      {{"train", "--out", "newrun", "--config", "huge.json", "--data", "corpus.txt"},
       1,
       "is available"},
      {{"train", "--out", "newrun", "--config", "wide.json", "--data", "corpus.txt", "--batch-size",
        "1048576"},
       1,
       "this training run needs about",
       "choose a smaller model, --batch-size or --seq-len"},
      {{"train", "--out", "newrun", "--config", "wide_context.json", "--data", "corpus.txt"},
       1,
       "this training run needs about",
       "is available"},
      {{"train", "--out", "afile", "--config", "tiny.json", "--data", "corpus.txt"},
       1,
       "afile is a file, not a directory"},
      {{"train", "--out", "run", "--config", "tiny.json", "--data", "corpus.txt"},
       1,
       "run already holds a run"},
      {{"train", "--out", "busyrun", "--config", "tiny.json", "--data", "corpus.txt"},
       1,
       busy,
       "wait for it to finish, or choose another output"},
      {{"train", "--resume", "busyrun"}, 1, busy},
      // --- train --resume
      {{"train", "--resume", "nope"}, 1, "--resume nope: no such run directory"},
      {{"train", "--resume", "afile"}, 1, "no such run directory"},
      {{"train", "--resume", "emptyrun"}, 1, "no last.safetensors in it"},
      {{"train", "--resume", "run", "--batch-size", "4"},
       2,
       "--batch-size cannot be changed on --resume"},
      {{"train", "--resume", "run", "--config", "tiny.json"},
       2,
       "--config cannot be changed on --resume"},
      {{"train", "--resume", "run", "--out", "newrun"}, 2, "--out cannot be changed on --resume"},
      {{"train", "--resume", "run", "--steps", "1"}, 1, "--steps 1 is below the run's step 2"},
      {{"train", "--resume", "brokenrun"}, 1, "brokenrun/last.safetensors"},
      {{"train", "--resume", "plainrun"}, 1, "not a training checkpoint"},
      {{"train", "--resume", "decoderrun"}, 1, "decoder"},
      {{"train", "--resume", "textrun"}, 1, "textrun/last.safetensors", "not a safetensors file?"},
      {{"train", "--resume", "emptyckrun"}, 1, "emptyckrun/last.safetensors", "too short"},
      {{"train", "--resume", "corruptrun"}, 1, "corruptrun/last.safetensors", "the header"},
      {{"train", "--resume", "badcfgrun"}, 1, "badcfgrun/last.safetensors", "'n_heads' (3)"},
      {{"train", "--resume", "hugerun"}, 1, "this training run needs about", "is available"},
      {{"train", "--resume", "run", "--threads", "5000"}, 2, "--threads"},
      {{"train", "--resume", "run", "--seed", "1"}, 2, "--seed cannot be changed on --resume"},
      {{"train", "--resume", "run", "--min-lr", "1"}, 1, "--min-lr must lie in [0, --lr"},
      {{"train", "--resume", "run", "--init-from", "run/last.safetensors"},
       2,
       "--init-from cannot be changed on --resume"},
      // --- train --init-from
      {{"train", "--init-from", "missing.safetensors", "--out", "newrun"},
       2,
       "File does not exist"},
      {{"train", "--init-from", "run/last.safetensors", "--preset", "baby", "--out", "newrun"},
       2,
       "--preset goes with a new model; --init-from run/last.safetensors trains the checkpoint's"},
      {{"train", "--init-from", "decoder.safetensors", "--out", "newrun"}, 1, "decoder"},
      {{"train", "--init-from", "plain.safetensors", "--data", "corpus.txt", "--out", "newrun"},
       1,
       "--init-from plain.safetensors: has no tokenizer"},
      {{"train", "--init-from", "run/last.safetensors", "--data", "foreign.txt", "--out", "newrun"},
       1,
       "(with the tokenizer of --init-from run/last.safetensors)"},

      // --- tokenize
      {{"tokenize", "--out", "D"}, 2, "--data is required"},
      {{"tokenize", "--data", "corpus.txt"}, 2, "--out is required"},
      {{"tokenize", "--data", "missing.txt", "--out", "D"}, 2, "Path does not exist"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--tokenizer", "wordpiece"},
       2,
       "--tokenizer"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--val-fraction", "1.5"},
       2,
       "--val-fraction"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--val-fraction", "0"},
       2,
       "--val-fraction"},
      {{"tokenize", "--data", "empty.txt", "--out", "D"}, 1, "empty.txt is empty"},
      {{"tokenize", "--data", "corpus.txt", "--out", "busydata"}, 1, busy_by + "busydata"},
      {{"tokenize", "--data", "bad_utf8.txt", "--out", "D", "--quiet"},
       1,
       "bad_utf8.txt is not UTF-8 text: invalid UTF-8 at byte offset 13"},
      {{"tokenize", "--data", "trunc_utf8.txt", "--out", "D", "--quiet"},
       1,
       "trunc_utf8.txt is not UTF-8 text: invalid UTF-8 at byte offset 4000"},
      {{"tokenize", "--data", "binary.txt", "--out", "D", "--quiet"},
       1,
       "binary.txt is a binary file, not text (a NUL byte at byte offset 50)"},
      {{"tokenize", "--data", "binary.txt", "--out", "D", "--quiet", "--tokenizer", "bpe",
        "--vocab", "300"},
       1,
       "binary.txt is a binary file"},
      {{"tokenize", "--data", "no_txt", "--out", "D"}, 1, "no_txt' holds no .txt files"},
      {{"tokenize", "--data", "corpus.txt", "corpus.txt", "--out", "D"},
       1,
       "corpus.txt is given twice"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--tokenizer", "bpe"},
       1,
       "--tokenizer bpe needs --vocab N"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--vocab", "100"},
       1,
       "--vocab is for bpe and unigram"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--tokenizer", "bpe", "--vocab", "5000",
        "--quiet"},
       1,
       "cannot learn a bpe tokenizer of 5000 tokens from this text"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--tokenizer", "unigram", "--vocab",
        "5000", "--quiet"},
       1,
       "cannot learn a unigram tokenizer of 5000 tokens from this text"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--tokenizer-model", "corpus.txt"},
       1,
       "corpus.txt: not a SentencePiece model"},
      {{"tokenize", "--data", "corpus.txt", "--out", "D", "--tokenizer-model", "tiny.json"},
       1,
       "tiny.json: invalid tokenizer JSON"},
      {{"tokenize", "--data", "foreign.txt", "--out", "D", "--tokenizer-model", "ds/tokenizer.json",
        "--quiet"},
       1,
       "foreign.txt (block at byte 0): cannot encode character '日'"},
      {{"tokenize", "--data", "corpus.txt", "--out", "ds"},
       1,
       "ds already exists: choose another --out, or give --force to replace it"},
      {{"tokenize", "--data", "corpus.txt", "--out", "run", "--force"},
       1,
       "run exists and is not a prepared dataset"},
      {{"tokenize", "--data", "one_char.txt", "--out", "D"},
       1,
       "one_char.txt is too short to split into train and val"},
      // --- train and eval on a prepared dataset
      {{"train", "--out", "newrun", "--data", "ds_trunc", "--config", "tiny.json"},
       1,
       "ds_trunc/train.bin is 7224 bytes but the manifest says 7226 (truncated)"},
      {{"train", "--out", "newrun", "--data", "ds_flipped", "--config", "tiny.json"},
       1,
       "train.bin is corrupt: its checksum differs from the manifest's"},
      {{"train", "--out", "newrun", "--data", "ds_noshard", "--config", "tiny.json"},
       1,
       "val.bin is missing"},
      {{"train", "--out", "newrun", "--data", "ds_badjson"},
       1,
       "dataset.json: invalid dataset manifest: not JSON"},
      {{"train", "--out", "newrun", "--data", "ds_lying", "--config", "tiny.json"},
       1,
       "ds_lying: dataset.json: invalid dataset manifest: splits.train.tokens is 93613 but its "
       "shards hold 3613"},
      {{"train", "--out", "newrun", "--data", "ds", "--config", "small_vocab.json"},
       1,
       "has a vocabulary of 52 tokens (char, 52 tokens) but the model's vocab_size is 8"},
      {{"eval", "--checkpoint", "run/last.safetensors", "--data", "ds_other"},
       1,
       "the checkpoint's tokenizer (char, 52 tokens) is not the dataset's (char, 9 tokens in "
       "ds_other)"},
      {{"eval", "--checkpoint", "run/last.safetensors", "--data", "ds_flipped"}, 1, "is corrupt"},
      {{"survey", "--data", "ds_trunc", "--out", "sv"}, 1, "(truncated)"},
      // --- eval
      {{"eval"}, 2, "--checkpoint is required"},
      {cat(cat({"eval"}, ck), {"--bogus"}), 2, "--bogus"},
      {cat(cat({"eval"}, ck), {"--batches", "0"}), 2, "--batches"},
      {cat(cat({"eval"}, ck), {"--batch-size", "-1"}), 2, "--batch-size"},
      {cat(cat({"eval"}, ck), {"--kv-cache", "bf16"}), 2,
       "--kv-cache applies to a decoder checkpoint (attnlab convert); run/last.safetensors is a "
       "training checkpoint"},
      {cat(cat({"eval"}, ck), {"--kv-cache", "fp8"}), 2, "--kv-cache: fp8 not in {f32,bf16}"},
      {cat(cat({"eval"}, ck), {"--by-position", "corpus.txt"}), 1,
       "corpus.txt is a file, not a directory"},
      {{"eval", "--checkpoint", "missing.safetensors"}, 2, "File does not exist"},
      {{"eval", "--checkpoint", "run"}, 2, "directory"},
      {{"eval", "--checkpoint", "empty.safetensors"},
       1,
       "empty.safetensors: too short to be a safetensors file"},
      {{"eval", "--checkpoint", "trunc.safetensors"}, 1, "trunc.safetensors: "},
      {{"eval", "--checkpoint", "corrupt.safetensors"}, 1, "corrupt.safetensors: the header"},
      {{"eval", "--checkpoint", "lying.safetensors"}, 1, "lying.safetensors: header length"},
      {{"eval", "--checkpoint", "corpus.txt"}, 1, "not a safetensors file?"},
      {{"eval", "--checkpoint", "batch.safetensors"}, 1, "batch.safetensors: no model config"},
      {{"eval", "--checkpoint", "plain.safetensors", "--data", "corpus.txt"},
       1,
       "has no tokenizer"},
      {{"eval", "--checkpoint", "decoder.safetensors", "--data", "corpus.txt"}, 1, "decoder"},
      {cat(cat({"eval"}, ck), {"--data", "foreign.txt"}), 1, "cannot encode character"},
      {cat(cat({"eval"}, ck), {"--data", "empty.txt"}), 1, "corpus 'empty.txt' is empty"},
      {cat(cat({"eval"}, ck), {"--data", "bad_utf8.txt"}), 1, "invalid UTF-8"},
      {cat(cat({"eval"}, ck), {"--data", "missing.txt"}), 2, "Path does not exist"},
      {cat(cat({"eval"}, ck), {"--data", "short.txt"}), 1, "corpus 'short.txt' is too short"},
      {cat(cat({"eval"}, ck), {"--data", "trunc_utf8.txt"}), 1, "truncated 3-byte sequence"},
      {cat(cat({"eval"}, ck), {"--seq-len", "0"}), 2, "--seq-len"},
      {cat(cat({"eval"}, ck), {"--threads", "5000"}), 2, "--threads"},

      // --- info
      {{"info"}, 2, "info needs a model"},
      {{"info", "--bogus"}, 2, "--bogus"},
      {cat(cat({"info"}, ck), {"--preset", "baby"}), 2, "give --checkpoint or a model"},
      {{"info", "--preset", "huge"}, 2, "unknown preset 'huge'"},
      {{"info", "--preset", "baby", "--config", "tiny.json"}, 2, "not both"},
      {{"info", "--preset", "baby", "--vocab-size", "0"}, 2, "--vocab-size"},
      {{"info", "--preset", "baby", "--batch-size", "0"}, 2, "--batch-size"},
      {{"info", "--preset", "baby", "--seq-len", "100"},
       1,
       "--seq-len 100 exceeds the model's max_seq_len 64"},
      {{"info", "--preset", "baby", "--experts", "2000"}, 2, "--experts"},
      {{"info", "--config", "missing.json"}, 2, "File does not exist"},
      {{"info", "--checkpoint", "trunc.safetensors"}, 1, "trunc.safetensors: "},
      {{"info", "--checkpoint", "empty.safetensors"}, 1, "too short"},
      {{"info", "--checkpoint", "corpus.txt"}, 1, "not a safetensors file?"},
      {{"info", "--checkpoint", "batch.safetensors"}, 1, "no model config"},
      {{"info", "--checkpoint", "missing.safetensors"}, 2, "File does not exist"},
      {{"info", "--checkpoint", "corrupt.safetensors"}, 1, "corrupt.safetensors: the header"},
      {{"info", "--checkpoint", "lying.safetensors"}, 1, "lying.safetensors: header length"},
      {{"info", "--checkpoint", "decoder.safetensors"}, 1, "decoder.safetensors: is a decoder"},
      {{"info", "--checkpoint", "layers.safetensors"}, 1, "its config declares"},
      {{"info", "--config", "run/last.safetensors"}, 1, "run/last.safetensors: malformed JSON"},
      {{"info", "--config", "tiny.json", "--attention", "mla"}, 2, "go with --preset"},
      {{"info", "--preset", "baby", "--shared-experts", "100"}, 2, "--shared-experts"},
      {{"info", "--preset", "baby", "--attention", "xla"}, 2, "--attention"},

      // --- inspect
      {{"inspect"}, 2, "is required"},
      {cat(inspect, {"--batch", "batch.safetensors", "--out", "o.safetensors", "--bogus"}), 2,
       "--bogus"},
      {{"inspect", "--checkpoint", "missing.safetensors", "--batch", "batch.safetensors", "--out",
        "o.safetensors"},
       2,
       "File does not exist"},
      {{"inspect", "--checkpoint", "empty.safetensors", "--batch", "batch.safetensors", "--out",
        "o.safetensors"},
       1,
       "too short"},
      {{"inspect", "--checkpoint", "corrupt.safetensors", "--batch", "batch.safetensors", "--out",
        "o.safetensors"},
       1,
       "corrupt.safetensors: the header"},
      {{"inspect", "--checkpoint", "decoder.safetensors", "--batch", "batch.safetensors", "--out",
        "o.safetensors"},
       1,
       "decoder.safetensors: is a decoder"},
      {{"inspect", "--checkpoint", "batch.safetensors", "--batch", "batch.safetensors", "--out",
        "o.safetensors"},
       1,
       "no model config"},
      {{"inspect", "--decode", "--checkpoint", "corpus.txt", "--batch", "batch.safetensors",
        "--out", "o.safetensors"},
       1,
       "not a safetensors file?"},
      {{"inspect", "--decode", "--checkpoint", "trunc.safetensors", "--batch", "batch.safetensors",
        "--out", "o.safetensors"},
       1,
       "trunc.safetensors: "},
      {cat(inspect, {"--decode", "--batch", "batch_oov.safetensors", "--out", "o.safetensors"}), 1,
       "outside the vocabulary"},
      {cat(inspect, {"--batch", "batch_trunc.safetensors", "--out", "o.safetensors"}), 1,
       "batch_trunc.safetensors: "},
      {cat(inspect, {"--batch", "corrupt.safetensors", "--out", "o.safetensors"}), 1,
       "corrupt.safetensors: the header"},
      // --out may not be one of the inputs (it would be overwritten).
      {cat(inspect, {"--batch", "batch.safetensors", "--out", "run/last.safetensors"}), 1,
       "--out run/last.safetensors is the --checkpoint file itself"},
      {cat(inspect, {"--batch", "batch.safetensors", "--out", "./batch.safetensors"}), 1,
       "--out ./batch.safetensors is the --batch file itself"},
      {cat(inspect, {"--decode", "--batch", "batch.safetensors", "--out", "run/last.safetensors"}),
       1, "is the --checkpoint file itself"},
      {cat(inspect, {"--batch", "batch.safetensors"}), 2, "--out is required"},
      {cat(inspect, {"--batch", "batch.safetensors", "--out", "o.safetensors", "--dtype", "f16"}),
       2, "--dtype"},
      {cat(inspect, {"--batch", "missing.safetensors", "--out", "o.safetensors"}), 2,
       "File does not exist"},
      {{"inspect", "--checkpoint", "corpus.txt", "--batch", "batch.safetensors", "--out",
        "o.safetensors"},
       1,
       "not a safetensors file?"},
      {{"inspect", "--checkpoint", "trunc.safetensors", "--batch", "batch.safetensors", "--out",
        "o.safetensors"},
       1,
       "trunc.safetensors: "},
      {cat(inspect, {"--batch", "run/best.safetensors", "--out", "o.safetensors"}), 1,
       "no tensor named 'inputs'"},
      {cat(inspect, {"--batch", "corpus.txt", "--out", "o.safetensors"}), 1,
       "not a safetensors file?"},
      {cat(inspect, {"--batch", "empty.safetensors", "--out", "o.safetensors"}), 1, "too short"},
      {cat(inspect, {"--batch", "batch_oov.safetensors", "--out", "o.safetensors"}), 1,
       "inputs holds token id 99, outside the vocabulary [0, 65)"},
      {cat(inspect, {"--batch", "batch_negative.safetensors", "--out", "o.safetensors"}), 1,
       "targets holds token id -1"},
      {cat(inspect, {"--batch", "batch_float.safetensors", "--out", "o.safetensors"}), 1,
       "must hold token ids as I64 or I32, got dtype F32"},
      {cat(inspect, {"--batch", "batch_1d.safetensors", "--out", "o.safetensors"}), 1,
       "must be a non-empty [B, T] tensor"},
      {cat(inspect, {"--batch", "batch_empty.safetensors", "--out", "o.safetensors"}), 1,
       "must be a non-empty [B, T] tensor"},
      {cat(inspect, {"--batch", "batch_mismatch.safetensors", "--out", "o.safetensors"}), 1,
       "inputs and targets differ in shape"},
      {cat(inspect, {"--batch", "batch_long.safetensors", "--out", "o.safetensors"}), 1,
       "exceeds the model's max_seq_len 16"},
      // A bad batch must not touch an existing output, even with --force; without it, a
      // file that inspect did not write is refused.
      {cat(inspect, {"--batch", "batch.safetensors", "--out", "run/best.safetensors"}), 1,
       "--out run/best.safetensors exists and was not written by attnlab inspect: give --force"},
      {cat(inspect,
           {"--batch", "batch_oov.safetensors", "--out", "run/best.safetensors", "--force"}),
       1, "outside the vocabulary"},
      {cat(inspect, {"--batch", "batch.safetensors", "--out", "run"}), 1,
       "--out run is a directory"},

      // --- convert
      {{"convert"}, 2, "--checkpoint is required"},
      {cat({"convert"}, ck), 2, "--out is required"},
      {cat(cat({"convert"}, ck), {"--out", "o.safetensors", "--bogus"}), 2, "--bogus"},
      {{"convert", "--checkpoint", "missing.safetensors", "--out", "o.safetensors"},
       2,
       "File does not exist"},
      {{"convert", "--checkpoint", "corpus.txt", "--out", "o.safetensors"},
       1,
       "not a safetensors file?"},
      {{"convert", "--checkpoint", "empty.safetensors", "--out", "o.safetensors"}, 1, "too short"},
      {{"convert", "--checkpoint", "trunc.safetensors", "--out", "o.safetensors"},
       1,
       "trunc.safetensors: "},
      {{"convert", "--checkpoint", "corrupt.safetensors", "--out", "o.safetensors"},
       1,
       "corrupt.safetensors: the header"},
      {{"convert", "--checkpoint", "batch.safetensors", "--out", "o.safetensors"},
       1,
       "no model config"},
      {{"convert", "--checkpoint", "decoder.safetensors", "--out", "o.safetensors"}, 1, "decoder"},
      {{"convert", "--checkpoint", "layers.safetensors", "--out", "o.safetensors"},
       1,
       "its config declares 30000000003 parameters"},
      {cat(cat({"convert"}, ck), {"--out", "run/last.safetensors"}), 1,
       "is the training checkpoint itself"},
      {cat(cat({"convert"}, ck), {"--out", "run"}), 1, "--out run is a directory"},
      {cat(cat({"convert"}, ck), {"--out", "corpus.txt"}), 1,
       "--out corpus.txt exists and was not written by attnlab convert: give --force"},
      {cat(cat({"convert"}, ck), {"--out", "o.safetensors", "--seed", "-1"}), 2,
       "--seed: must be a whole number"},
      {{"convert", "--checkpoint", "lying.safetensors", "--out", "o.safetensors"},
       1,
       "lying.safetensors: header length"},

      // --- sample
      {{"sample"}, 2, "--checkpoint is required"},
      {cat(cat({"sample"}, ck), {"--bogus"}), 2, "--bogus"},
      {cat(cat({"sample"}, ck), {"--tokens", "-1"}), 2, "--tokens"},
      {cat(cat({"sample"}, ck), {"--temperature", "-1"}), 2, "--temperature: must be ≥ 0"},
      {cat(cat({"sample"}, ck), {"--top-k", "-2"}), 2, "--top-k: must be ≥ 0"},
      {cat(cat({"sample"}, ck), {"--top-p", "1.5"}), 2, "--top-p"},
      {cat(cat({"sample"}, ck), {"--threads", "-1"}), 2, "--threads"},
      {cat(cat({"sample"}, ck), {"--kv-cache", "fp8"}), 2, "--kv-cache: fp8 not in {f32,bf16}"},
      {{"sample", "--checkpoint", "missing.safetensors"}, 2, "Path does not exist"},
      {{"sample", "--checkpoint", "corpus.txt"}, 1, "not a safetensors file?"},
      {{"sample", "--checkpoint", "empty.safetensors"}, 1, "too short"},
      {{"sample", "--checkpoint", "trunc.safetensors"}, 1, "trunc.safetensors: "},
      {{"sample", "--checkpoint", "batch.safetensors"}, 1, "no model config"},
      {{"sample", "--checkpoint", "plain.safetensors"}, 1, "has no tokenizer"},
      {{"sample", "--checkpoint", "decoder.safetensors"}, 1, "decoder.safetensors: "},
      {{"sample", "--checkpoint", "layers.safetensors"}, 1, "its config declares"},
      {{"sample", "--checkpoint", "dec_layers.safetensors"},
       1,
       "its config declares 1000000000 layers, more tensors than the file's 1"},
      {{"sample", "--checkpoint", "longctx.safetensors"},
       1,
       "sampling needs about",
       "is available"},
      {cat(cat({"sample"}, ck), {"--prompt", "日本"}), 1, "--prompt: cannot encode character"},
      {cat(cat({"sample"}, ck), {"--tokens", "100", "--no-slide"}), 1, "drop --no-slide"},
      {cat(cat({"sample"}, ck), {"--seed", "-1"}), 2, "--seed: must be a whole number"},
      {cat(cat({"sample"}, ck), {"--threads", "2000"}), 2, "--threads"},
      {cat(cat({"sample"}, ck), {"--temperature", "hot"}), 2,
       "--temperature: 'hot' is not a number"},
      {cat(cat({"sample"}, ck), {"--prompt", ""}), 1, "the prompt is empty"},
      {cat(cat({"sample"}, ck), {"--top-p", "0"}), 2, "--top-p: must be in (0, 1], got 0"},
      {cat(cat({"sample"}, ck), {"--top-p", "1.5"}), 2, "--top-p: must be in (0, 1], got 1.5"},
      {{"sample", "--checkpoint", "corrupt.safetensors"}, 1, "corrupt.safetensors: the header"},
      {{"sample", "--checkpoint", "lying.safetensors"}, 1, "lying.safetensors: header length"},
      {{"sample", "--checkpoint", "emptyrun"}, 1, "emptyrun is a directory without a best"},
      {cat(cat({"sample"}, ck), {"--temperature", "0.8", "--greedy"}), 2,
       "--greedy excludes --temperature"},
      {cat(cat({"sample"}, ck), {"--greedy", "--top-k", "5"}), 2, "--greedy excludes --top-k"},
      {cat(cat({"sample"}, ck), {"--greedy", "--seed", "5"}), 2, "--greedy excludes --seed"},
      {cat(cat({"sample"}, ck), {"--slide", "--no-slide"}), 2, "--no-slide excludes --slide"},
      {cat(cat({"sample"}, ck), {"--prompt", "a", "--prompt-file", "corpus.txt"}), 2,
       "--prompt excludes --prompt-file"},
      {cat(cat({"sample"}, ck), {"--prompt-file", "missing.txt"}), 2, "File does not exist"},
      {cat(cat({"sample"}, ck), {"--prompt-file", "empty.txt"}), 1,
       "--prompt-file: the prompt is empty"},
      {cat(cat({"sample"}, ck), {"--prompt-file", "foreign.txt"}), 1,
       "--prompt-file: cannot encode character"},
      {cat(cat({"sample"}, ck), {"--num-samples", "0"}), 2, "--num-samples"},
      {{"sample", "-m", "run/last.safetensors", "-n", "-3"}, 2, "--tokens"},

      // --- survey (and its worker, survey-decode)
      {{"survey", "--bogus"}, 2, "--bogus"},
      {{"survey", "--preset", "huge"}, 2, "--preset"},
      {{"survey", "--steps", "0"}, 2, "--steps"},
      {{"survey", "--seeds", "0"}, 2, "--seeds"},
      {{"survey", "--experts", "0"}, 2, "--experts"},
      {{"survey", "--experts-per-token", "2"}, 2, "--experts-per-token goes with --experts"},
      {{"survey", "--data", "missing.txt"}, 2, "Path does not exist"},
      {{"survey", "--data", "empty.txt", "--out", "sv"}, 1, "corpus 'empty.txt' is empty"},
      {{"survey", "--data", "bad_utf8.txt", "--out", "sv"},
       1,
       "bad_utf8.txt: corpus has invalid UTF-8"},
      {{"survey", "--data", "short.txt", "--out", "sv"}, 1, "corpus 'short.txt' is too short"},
      {{"survey", "--data", "corpus.txt", "--out", "afile"}, 1, "afile is a file, not a directory"},
      {{"survey", "--out", "busyrun"}, 1, busy},
      {{"survey", "--data", "corpus.txt", "--out", "run"},
       1,
       "--out run holds files attnlab survey did not write (it is a run directory"},
      {{"survey", "--data", "run/last.safetensors", "--out", "sv"}, 1, "invalid UTF-8"},
      {{"survey", "--data", "run", "--out", "sv"}, 1, "run is not a prepared dataset"},
      {{"survey", "--data", "trunc_utf8.txt", "--out", "sv"}, 1, "truncated 3-byte sequence"},
      {{"survey", "--experts-per-token", "0"}, 2, "--experts-per-token"},
      {{"survey", "--threads", "5000"}, 2, "--threads"},
      {{"survey-decode"}, 2, "--checkpoint is required"},
      {cat(cat({"survey-decode"}, ck), {"--result", "r.json", "--bogus"}), 2, "--bogus"},
      {{"survey-decode", "--checkpoint", "missing.safetensors", "--result", "r.json"},
       2,
       "File does not exist"},
      {{"survey-decode", "--checkpoint", "corpus.txt", "--result", "r.json"},
       1,
       "not a safetensors file?"},
      {{"survey-decode", "--checkpoint", "empty.safetensors", "--result", "r.json"},
       1,
       "too short"},
      {{"survey-decode", "--checkpoint", "corrupt.safetensors", "--result", "r.json"},
       1,
       "corrupt.safetensors: the header"},
      {cat({"survey-decode"}, ck), 2, "--result is required"},
      {{"survey-decode", "--checkpoint", "trunc.safetensors", "--result", "r.json"},
       1,
       "trunc.safetensors: "},
      {cat(cat({"survey-decode"}, ck), {"--result", "r.json", "--tokens", "-5"}), 1,
       "must be ≥ 0, got -5"},
  };
  // A config that breaks each rule, to info and to train (which must not
  // create its run directory).
  for (const BadConfig& c : bad_configs()) {
    r.push_back({{"info", "--config", c.name}, 1, c.name + ": "});
    r.push_back({{"info", "--config", c.name}, 1, c.message});
    r.push_back(
        {{"train", "--config", c.name, "--data", "corpus.txt", "--out", "newrun"}, 1, c.message});
    // The same config in a checkpoint's header, to both checkpoint readers:
    // the training form's (info) and the decoder's (sample).
    const std::string hdr = header_checkpoint(c);
    r.push_back({{"info", "--checkpoint", hdr}, 1, hdr + ": config", c.message});
    r.push_back({{"sample", "--checkpoint", hdr}, 1, hdr + ": config", c.message});
  }
  // Tensors that do not match the config, to both checkpoint readers (and
  // eval and convert, which share the training form's).
  for (const auto& [file, message] : std::vector<std::pair<std::string, std::string>>{
           {"missing_tensor.safetensors", "missing tensor norm.weight"},
           {"unknown_tensor.safetensors", "unknown tensor extra.weight"},
           {"wrong_shape.safetensors", "tensor norm.weight has shape [17]"},
           {"wrong_dtype.safetensors", "tensor 'norm.weight' has dtype I64"},
           {"stray_optim.safetensors", "optim.m.extra.weight"},
           {"tied_lm_head.safetensors", "lm_head.weight"}}) {
    r.push_back({{"info", "--checkpoint", file}, 1, file + ": ", message});
    r.push_back({{"eval", "--checkpoint", file, "--data", "corpus.txt"}, 1, file + ": ", message});
    r.push_back(
        {{"convert", "--checkpoint", file, "--out", "o.safetensors"}, 1, file + ": ", message});
    r.push_back({{"sample", "--checkpoint", file}, 1, file + ": ", message});
  }
  return r;
}

std::string show(const std::vector<std::string>& args) {
  std::string s = "attnlab";
  for (const std::string& a : args) s += " " + a;
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("every bad command line ends in one clear message, a non-zero exit and no file touched") {
  Fixture& f = fixture();
  const std::vector<Row> table = rows();
  for (const Row& row : table) {
    const std::string command = show(row.args);
    CAPTURE(command);
    const auto before = snapshot(f.path());
    const CommandResult r = run_in(f.path(), row.args);
    INFO(r.describe());

    CHECK(r.exit_code == row.exit_code);
    CHECK(r.exit_code < 128);  // not a signal: no crash, no core dump
    CHECK(r.out.empty());
    const std::vector<std::string> lines = lines_of(r.err);
    if (lines.empty()) {
      FAIL_CHECK("nothing on stderr");
      continue;
    }
    CHECK(lines[0].rfind("attnlab: error: ", 0) == 0);
    CHECK(lines[0].find(row.message) != std::string::npos);
    if (!row.also.empty()) CHECK(lines[0].find(row.also) != std::string::npos);
    if (row.exit_code == 2) {
      CHECK(lines.size() == 2);
      CHECK(lines.back() == "Run with --help for usage.");
    } else {
      CHECK(lines.size() == 1);
    }
    for (const char* sanitizer : {"AddressSanitizer", "LeakSanitizer", "runtime error:"})
      CHECK(r.err.find(sanitizer) == std::string::npos);

    const auto after = snapshot(f.path());
    if (after != before) {
      std::string changed;
      for (const auto& [name, bytes] : after) {
        auto it = before.find(name);
        if (it == before.end())
          changed += " created " + name + ";";
        else if (it->second != bytes)
          changed += " changed " + name + ";";
      }
      for (const auto& [name, bytes] : before)
        if (!after.count(name)) changed += " removed " + name + ";";
      FAIL_CHECK("files touched:" << changed);
    }
  }
  MESSAGE(table.size() << " bad command lines refused cleanly");
}

}  // namespace attnlab
