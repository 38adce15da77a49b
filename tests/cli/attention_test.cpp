// `attnlab attention`: attention.json (tokens, every layer's heads, row t over
// keys 0 … t; a MoE's experts) and one SVG per layer, from either checkpoint
// form with the same numbers; its refusals.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/train/char_tokenizer.hpp"
#include "tests/cli/cli_test_util.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

using test::contains;
using testing::CommandResult;
using testing::read_text_file;
using testing::run_attnlab;
using testing::TempDir;

constexpr const char* kCorpus = "ROMEO: But soft, what light through yonder window breaks?\n";

// A random model of the corpus' characters, in both forms.
struct Checkpoints {
  TempDir dir{"attnlab-attention"};
  std::string train = dir.file("train.safetensors"), dec = dir.file("dec.safetensors");
  explicit Checkpoints(const std::string& attention, bool moe) {
    const CharTokenizer tok = CharTokenizer::from_corpus(kCorpus, false);
    const std::string json =
        R"({"vocab_size": )" + std::to_string(tok.vocab_size()) +
        R"(, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 24, "attention": ")" +
        attention + "\"" + (attention == "gqa" ? R"(, "n_kv_heads": 2)" : "") +
        (attention == "mla" ? R"(, "q_lora_rank": 16, "kv_lora_rank": 8, "rope_head_dim": 4)"
                            : "") +
        (moe ? R"(, "n_experts": 4, "top_k": 2)" : "") + "}";
    const auto model = test::random_model(config_from_json(json), DType::F32, 3);
    write_checkpoint(train, *model, {{"tokenizer", tok.to_json()}});
    const CommandResult r =
        run_attnlab({"convert", "--checkpoint", train, "--out", dec, "--quiet"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  }
};

nlohmann::json maps_of(const std::string& checkpoint, const std::string& out,
                       const std::string& prompt) {
  const CommandResult r =
      run_attnlab({"attention", "--checkpoint", checkpoint, "--prompt", prompt, "--out", out});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  CHECK(contains(r.out, "attention.json"));
  return nlohmann::json::parse(read_text_file(out + "/attention.json"));
}

}  // namespace

TEST_CASE("attnlab attention: json and svg of every layer and head, both checkpoint forms") {
  const std::string prompt = "ROMEO: But";
  for (const auto& [attention, moe] :
       {std::pair{"mha", false}, {"gqa", true}, {"mqa", false}, {"mla", false}, {"mla", true}}) {
    CAPTURE(attention);
    CAPTURE(moe);
    Checkpoints ck(attention, moe);
    const nlohmann::json a = maps_of(ck.train, ck.dir.file("a"), prompt);
    const nlohmann::json b = maps_of(ck.dec, ck.dir.file("b"), prompt);
    REQUIRE(a["tokens"].size() == prompt.size());
    CHECK(a["tokens"][0] == "R");
    REQUIRE(a["layers"].size() == 2);
    for (size_t l = 0; l < 2; ++l) {
      CAPTURE(l);
      const auto& heads = a["layers"][l]["heads"];
      REQUIRE(heads.size() == 4);
      for (size_t h = 0; h < 4; ++h)
        for (size_t t = 0; t < prompt.size(); ++t) {
          const auto& row = heads[h][t];
          REQUIRE(row.size() == t + 1);  // query t over keys 0 … t
          double sum = 0;
          for (size_t j = 0; j <= t; ++j) {
            sum += row[j].get<double>();
            CHECK(std::abs(row[j].get<double>() - b["layers"][l]["heads"][h][t][j].get<double>()) <
                  1e-5);
          }
          CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
        }
      CHECK(a["layers"][l].contains("experts") == moe);
      if (moe) {
        CHECK(a["layers"][l]["experts"].size() == prompt.size());
        CHECK(a["layers"][l]["experts"][0].size() == 2);
        CHECK(a["layers"][l]["experts"] == b["layers"][l]["experts"]);
      }
      const std::string svg =
          read_text_file(ck.dir.file("a") + "/layer_" + std::to_string(l) + ".svg");
      CHECK(svg.rfind("<svg", 0) == 0);
      CHECK(contains(svg, "layer " + std::to_string(l) + " head 3"));
      CHECK(contains(svg, "</svg>"));
    }
  }
}

TEST_CASE("attnlab attention refuses an empty or too long prompt, and writes nothing") {
  Checkpoints ck("mha", false);
  const std::string out = ck.dir.file("refused");
  for (const auto& [prompt, message] :
       {std::pair{std::string(), "--prompt is empty"},
        {std::string(30, 'R'), "more than the model's context (max_seq_len 24)"},
        {std::string("ROMEO: Zz"), "--prompt"}}) {
    const CommandResult r =
        run_attnlab({"attention", "--checkpoint", ck.train, "--prompt", prompt, "--out", out});
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(contains(r.err, message), r.err);
    CHECK(!std::filesystem::exists(out));
  }
}
}  // namespace attnlab
