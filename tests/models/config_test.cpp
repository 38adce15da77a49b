// ModelConfig: defaults per variant, every rule of docs/MODEL-SPEC.md refused with a
// message naming the key, the JSON round trip, presets, parameter counts.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>

#include "attnlab/models/config.hpp"
#include "attnlab/tensor/error.hpp"

using namespace attnlab;

namespace {

// The message of the Error that f throws ("" when it throws none).
template <typename Fn>
std::string error_of(Fn&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A minimal valid config with `extra` keys spliced in (", \"key\": value").
std::string with(const std::string& extra) {
  return R"({"vocab_size": 50, "d_model": 64, "n_layers": 2, "n_heads": 4)" + extra + "}";
}

int64_t sum_of_shapes(const ModelConfig& c) {
  int64_t n = 0;
  for (const auto& [name, shape] : c.parameter_shapes()) n += shape_numel(shape);
  return n;
}

}  // namespace

TEST_CASE("defaults are resolved for each attention variant") {
  ModelConfig c = config_from_json(with(""));
  CHECK(c.vocab_size == 50);
  CHECK(c.d_model == 64);
  CHECK(c.n_layers == 2);
  CHECK(c.n_heads == 4);
  CHECK(c.head_dim == 16);
  CHECK(c.attention == AttentionKind::MHA);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.max_seq_len == 256);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.rope_fraction == 1.0);
  CHECK(c.ffn == FeedForwardKind::SwiGLU);
  CHECK(c.ffn_hidden == 176);  // 8·64/3 = 170.67 → 171 → round up to 8: 176
  CHECK(c.n_experts == 0);
  CHECK(c.top_k == 2);
  CHECK(c.n_shared_experts == 0);
  CHECK(c.aux_loss_coef == 0.01);
  CHECK(c.norm_eps == 1e-6);
  CHECK(!c.tie_embeddings);
  CHECK(c.q_lora_rank == 0);
  CHECK(c.rope_dims() == 16);

  CHECK(config_from_json(with(R"(, "attention": "mqa")")).n_kv_heads == 1);
  CHECK(config_from_json(with(R"(, "attention": "gqa", "n_kv_heads": 2)")).n_kv_heads == 2);
  CHECK(config_from_json(with(R"(, "ffn": "relu")")).ffn_hidden == 256);  // 4·D
  CHECK(config_from_json(with(R"(, "head_dim": 24)")).head_dim == 24);
  // 8·384/3 = 1024 exactly; 8·128/3 = 341.33 → 344.
  CHECK(config_from_json(R"({"vocab_size":5,"d_model":384,"n_layers":1,"n_heads":6})").ffn_hidden ==
        1024);
  CHECK(config_from_json(R"({"vocab_size":5,"d_model":128,"n_layers":1,"n_heads":4})").ffn_hidden ==
        344);

  // mla: ignores n_kv_heads and rope_fraction (canonical n_kv_heads = H, rope_fraction = 1).
  ModelConfig m = config_from_json(with(
      R"(, "attention": "mla", "q_lora_rank": 32, "kv_lora_rank": 16, "rope_head_dim": 8,
           "n_kv_heads": 3, "rope_fraction": 0.5)"));
  CHECK(m.attention == AttentionKind::MLA);
  CHECK(m.n_kv_heads == 4);
  CHECK(m.rope_fraction == 1.0);
  CHECK(m.q_lora_rank == 32);
  CHECK(m.kv_lora_rank == 16);
  CHECK(m.rope_head_dim == 8);
  CHECK(m.rope_dims() == 8);

  // The MLA ranks are unused by the other variants: resolved to 0, and 0 is accepted.
  ModelConfig g = config_from_json(with(R"(, "kv_lora_rank": 16, "q_lora_rank": 0)"));
  CHECK(g.kv_lora_rank == 0);
  CHECK(g.q_lora_rank == 0);
}

TEST_CASE("rope_dims rounds down to an even number of channels") {
  // r = 2·floor(rope_fraction·dh/2), dh = 16
  CHECK(config_from_json(with(R"(, "rope_fraction": 0.5)")).rope_dims() == 8);
  CHECK(config_from_json(with(R"(, "rope_fraction": 0.3)")).rope_dims() == 4);  // 4.8 → 2·2
  CHECK(config_from_json(with(R"(, "rope_fraction": 0.1)")).rope_dims() == 0);  // 1.6 → 0
  CHECK(config_from_json(with(R"(, "rope_fraction": 0)")).rope_dims() == 0);
  CHECK(config_from_json(with(R"(, "rope_fraction": 1)")).rope_dims() == 16);
  // dh = 10: 0.25·10/2 = 1.25 → 2
  CHECK(config_from_json(with(R"(, "head_dim": 10, "rope_fraction": 0.25)")).rope_dims() == 2);
}

TEST_CASE("every rule is refused with a message naming the key") {
  struct Case {
    std::string json, message;
  };
  const std::string base = R"("vocab_size": 50, "d_model": 64, "n_layers": 2, "n_heads": 4)";
  auto obj = [&](const std::string& extra) { return "{" + base + extra + "}"; };
  const std::string mla = R"(, "attention": "mla")";
  const std::vector<Case> cases = {
      // unknown keys, with a suggestion when one is close
      {obj(R"(, "n_head": 4)"), "unknown key 'n_head' (a typo? did you mean 'n_heads'?)"},
      {obj(R"(, "dropout": 0.1)"), "unknown key 'dropout' (a typo? the known keys are"},
      // required keys
      {R"({"d_model": 64, "n_layers": 2, "n_heads": 4})", "missing required key 'vocab_size'"},
      {R"({"vocab_size": 5, "n_layers": 2, "n_heads": 4})", "missing required key 'd_model'"},
      {R"({"vocab_size": 5, "d_model": 64, "n_heads": 4})", "missing required key 'n_layers'"},
      {R"({"vocab_size": 5, "d_model": 64, "n_layers": 2})", "missing required key 'n_heads'"},
      // integers are JSON integers
      {R"({"vocab_size": 50, "d_model": 64.0, "n_layers": 2, "n_heads": 4})",
       "'d_model' must be an integer, got 64.0"},
      {obj(R"(, "max_seq_len": 4.5)"), "'max_seq_len' must be an integer, got 4.5"},
      {obj(R"(, "top_k": "2")"), "'top_k' must be an integer, got the string \"2\""},
      {obj(R"(, "n_experts": true)"), "'n_experts' must be an integer, got the boolean true"},
      {obj(R"(, "head_dim": null)"), "'head_dim' must be an integer, got null"},
      {obj(R"(, "ffn_hidden": 18446744073709551615)"), "'ffn_hidden' is too large"},
      // positive where positive is required
      {R"({"vocab_size": 0, "d_model": 64, "n_layers": 2, "n_heads": 4})",
       "'vocab_size' must be positive, got 0"},
      {R"({"vocab_size": 5, "d_model": -64, "n_layers": 2, "n_heads": 4})",
       "'d_model' must be positive, got -64"},
      {R"({"vocab_size": 5, "d_model": 64, "n_layers": 0, "n_heads": 4})",
       "'n_layers' must be positive, got 0"},
      {R"({"vocab_size": 5, "d_model": 64, "n_layers": 1, "n_heads": 0})",
       "'n_heads' must be positive, got 0"},
      {obj(R"(, "head_dim": 0)"), "'head_dim' must be positive, got 0"},
      {obj(R"(, "max_seq_len": 0)"), "'max_seq_len' must be positive, got 0"},
      {obj(R"(, "ffn_hidden": -1)"), "'ffn_hidden' must be positive, got -1"},
      {obj(R"(, "n_experts": 4, "top_k": 0)"), "'top_k' must be positive, got 0"},
      {obj(R"(, "n_experts": -1)"), "'n_experts' must be at least 0, got -1"},
      {obj(R"(, "n_experts": 2, "n_shared_experts": -1)"),
       "'n_shared_experts' must be at least 0, got -1"},
      // n_kv_heads per variant
      {obj(R"(, "n_kv_heads": 2)"), "'n_kv_heads' must equal n_heads (4) for mha, got 2"},
      {obj(R"(, "attention": "mqa", "n_kv_heads": 2)"), "'n_kv_heads' must be 1 for mqa, got 2"},
      {obj(R"(, "attention": "gqa")"), "'n_kv_heads' is required for gqa"},
      {obj(R"(, "attention": "gqa", "n_kv_heads": 3)"),
       "'n_kv_heads' (3) must divide n_heads (4) for gqa"},
      {obj(R"(, "attention": "gqa", "n_kv_heads": 0)"), "'n_kv_heads' must be positive, got 0"},
      // head_dim
      {R"({"vocab_size": 5, "d_model": 64, "n_layers": 1, "n_heads": 6})",
       "'n_heads' (6) must divide 'd_model' (64) when 'head_dim' is not given"},
      // mla
      {obj(mla + R"(, "kv_lora_rank": 16, "rope_head_dim": 8)"),
       "'q_lora_rank' is required for mla"},
      {obj(mla + R"(, "q_lora_rank": 16, "rope_head_dim": 8)"),
       "'kv_lora_rank' is required for mla"},
      {obj(mla + R"(, "q_lora_rank": 16, "kv_lora_rank": 8)"),
       "'rope_head_dim' is required for mla"},
      {obj(mla + R"(, "q_lora_rank": 16, "kv_lora_rank": 8, "rope_head_dim": 7)"),
       "'rope_head_dim' must be even for mla, got 7"},
      {obj(mla + R"(, "q_lora_rank": 0, "kv_lora_rank": 8, "rope_head_dim": 8)"),
       "'q_lora_rank' must be positive, got 0"},
      {obj(R"(, "kv_lora_rank": -3)"), "'kv_lora_rank' must be at least 0, got -3"},
      // rope_fraction, top_k, shared experts
      {obj(R"(, "rope_fraction": 1.5)"), "'rope_fraction' must lie in [0, 1], got 1.5"},
      {obj(R"(, "rope_fraction": -0.1)"), "'rope_fraction' must lie in [0, 1], got -0.1"},
      {obj(mla +
           R"(, "q_lora_rank": 16, "kv_lora_rank": 8, "rope_head_dim": 8, "rope_fraction": 2)"),
       "'rope_fraction' must lie in [0, 1], got 2"},
      {obj(R"(, "n_experts": 4, "top_k": 5)"), "'top_k' must lie in 1 … n_experts (4), got 5"},
      {obj(R"(, "n_experts": 1)"),
       "'top_k' must lie in 1 … n_experts (1), got 2 (the default is 2)"},
      {obj(R"(, "n_shared_experts": 1)"),
       "'n_shared_experts' must be 0 when n_experts is 0 (a dense model), got 1"},
      // floats
      {obj(R"(, "rope_theta": 0)"), "'rope_theta' must be a positive number, got 0"},
      {obj(R"(, "rope_theta": "big")"), "'rope_theta' must be a number, got the string \"big\""},
      {obj(R"(, "norm_eps": 0)"), "'norm_eps' must be a positive number, got 0"},
      {obj(R"(, "aux_loss_coef": -1)"), "'aux_loss_coef' must be a non-negative number, got -1"},
      // enums and booleans
      {obj(R"(, "attention": "flash")"),
       "'attention' must be \"mha\", \"gqa\", \"mqa\" or \"mla\", got \"flash\""},
      {obj(R"(, "attention": 1)"), "'attention' must be a string, got 1"},
      {obj(R"(, "ffn": "gelu")"), "'ffn' must be \"swiglu\" or \"relu\", got \"gelu\""},
      {obj(R"(, "tie_embeddings": 1)"), "'tie_embeddings' must be true or false, got 1"},
      // sizes that overflow int64
      {R"({"vocab_size": 4611686018427387904, "d_model": 64, "n_layers": 1, "n_heads": 4})",
       "the model is too large"},
      {R"({"vocab_size": 5, "d_model": 4611686018427387904, "n_layers": 1, "n_heads": 1})",
       "'d_model': the model is too large"},
      // not a config at all
      {R"([1, 2])", "a model config must be a JSON object, got an array"},
      {R"("hello")", "a model config must be a JSON object, got the string \"hello\""},
      {R"({"vocab_size": 5,})", "malformed JSON: parse error at line 1, column 18"},
      {"", "malformed JSON: parse error at line 1, column 1"},
      {"{\"vocab_size\": 5}\n{}", "malformed JSON: parse error at line 2, column 1"},
      {obj(R"(, "rope_theta": 1e999)"), "malformed JSON: number overflow parsing '1e999'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json);
    const std::string message = error_of([&] { config_from_json(c.json, "cfg.json"); });
    CHECK_MESSAGE(message.find(c.message) != std::string::npos, message);
    CHECK(message.rfind("cfg.json: ", 0) == 0);  // every message names the file first
  }
}

TEST_CASE("config_to_json writes every key that applies and round-trips exactly") {
  const std::vector<std::string> configs = {
      with(""),
      with(R"(, "attention": "gqa", "n_kv_heads": 2, "ffn": "relu", "tie_embeddings": true)"),
      with(
          R"(, "attention": "mqa", "rope_fraction": 0.3, "rope_theta": 500000.5, "norm_eps": 1e-5)"),
      with(R"(, "attention": "mla", "q_lora_rank": 32, "kv_lora_rank": 16, "rope_head_dim": 8,
             "n_experts": 4, "top_k": 1, "n_shared_experts": 2, "aux_loss_coef": 0.1234567891234)"),
      with(R"(, "head_dim": 7, "max_seq_len": 3, "ffn_hidden": 13, "n_experts": 3, "top_k": 3)"),
  };
  for (const std::string& text : configs) {
    CAPTURE(text);
    const ModelConfig c = config_from_json(text);
    const std::string out = config_to_json(c);
    CHECK(config_from_json(out) == c);
    CHECK(config_to_json(config_from_json(out)) == out);
    for (const char* key :
         {"vocab_size", "d_model", "n_layers", "n_heads", "head_dim", "attention", "n_kv_heads",
          "max_seq_len", "rope_theta", "rope_fraction", "ffn", "ffn_hidden", "n_experts", "top_k",
          "n_shared_experts", "aux_loss_coef", "norm_eps", "tie_embeddings"})
      CHECK_MESSAGE(out.find(fmt::format("\"{}\":", key)) != std::string::npos, key);
    // docs/MODEL-SPEC.md: integer keys are positive unless the table allows 0, so
    // the MLA ranks appear only in an mla config (a 0 would break the rule).
    const bool mla = c.attention == AttentionKind::MLA;
    for (const char* key : {"q_lora_rank", "kv_lora_rank", "rope_head_dim"})
      CHECK_MESSAGE((out.find(fmt::format("\"{}\":", key)) != std::string::npos) == mla, key);
  }
  // What attnlab wrote before (the ranks as 0 outside mla) still reads.
  const ModelConfig old =
      config_from_json(with(R"(, "q_lora_rank": 0, "kv_lora_rank": 0, "rope_head_dim": 0)"));
  CHECK(old == config_from_json(with("")));
  ModelConfig a = config_from_json(with("")), b = a;
  b.norm_eps = 1e-5;
  CHECK(a != b);
}

TEST_CASE("config_from_file names the file") {
  const std::string path = std::string(ATTNLAB_BINARY_DIR) + "/config_test_tmp.json";
  { std::ofstream(path) << with(R"(, "ffn": "relu")"); }
  CHECK(config_from_file(path).ffn == FeedForwardKind::ReLU);
  { std::ofstream(path) << with(R"(, "n_head": 4)"); }
  CHECK(error_of([&] { config_from_file(path); }).rfind(path + ": unknown key 'n_head'", 0) == 0);
  std::remove(path.c_str());
  CHECK(error_of([&] { config_from_file(path); }) == "cannot open config file '" + path + "'");
}

TEST_CASE("parameter_count of a hand-computed config") {
  // V=10, D=8, L=2, H=2 (dh=4), gqa with Hkv=1, relu with F=16, untied:
  //   tok_emb            10·8                         =  80
  //   per layer: attn_norm 8, wq 8·8=64, wk 4·8=32, wv 32, wo 8·8=64,
  //              ffn_norm 8, w_up 16·8=128 + bias 16, w_down 8·16=128 + bias 8
  //              = 8+64+32+32+64+8+128+16+128+8      = 488, two layers = 976
  //   norm 8, lm_head 10·8 = 80
  //   total 80 + 976 + 8 + 80                          = 1144
  ModelConfig c = config_from_json(R"({"vocab_size": 10, "d_model": 8, "n_layers": 2,
      "n_heads": 2, "attention": "gqa", "n_kv_heads": 1, "ffn": "relu", "ffn_hidden": 16})");
  CHECK(c.parameter_count() == 1144);
  CHECK(sum_of_shapes(c) == 1144);
  const auto shapes = c.parameter_shapes();
  REQUIRE(shapes.size() == 1 + 2 * 10 + 2);
  CHECK(shapes[0] == std::pair<std::string, Shape>{"tok_emb.weight", {10, 8}});
  CHECK(shapes[1] == std::pair<std::string, Shape>{"layers.0.attn_norm.weight", {8}});
  CHECK(shapes[2] == std::pair<std::string, Shape>{"layers.0.attn.wq.weight", {8, 8}});
  CHECK(shapes[3] == std::pair<std::string, Shape>{"layers.0.attn.wk.weight", {4, 8}});
  CHECK(shapes[4] == std::pair<std::string, Shape>{"layers.0.attn.wv.weight", {4, 8}});
  CHECK(shapes[5] == std::pair<std::string, Shape>{"layers.0.attn.wo.weight", {8, 8}});
  CHECK(shapes[6] == std::pair<std::string, Shape>{"layers.0.ffn_norm.weight", {8}});
  CHECK(shapes[7] == std::pair<std::string, Shape>{"layers.0.ffn.w_up.weight", {16, 8}});
  CHECK(shapes[8] == std::pair<std::string, Shape>{"layers.0.ffn.w_up.bias", {16}});
  CHECK(shapes[9] == std::pair<std::string, Shape>{"layers.0.ffn.w_down.weight", {8, 16}});
  CHECK(shapes[10] == std::pair<std::string, Shape>{"layers.0.ffn.w_down.bias", {8}});
  CHECK(shapes[11].first == "layers.1.attn_norm.weight");
  CHECK(shapes[21] == std::pair<std::string, Shape>{"norm.weight", {8}});
  CHECK(shapes[22] == std::pair<std::string, Shape>{"lm_head.weight", {10, 8}});

  // MLA with experts, tied: V=10, D=8, L=1, H=2, dh=4, d_cq=6, d_c=4, dr=2,
  // swiglu F=8, E=2, top_k=1, S=1:
  //   tok_emb 80
  //   attn_norm 8
  //   w_dq 6·8=48, w_uq 8·6=48, w_qr 4·6=24, w_dkv 4·8=32, w_uk 8·4=32, w_uv 32,
  //   w_kr 2·8=16, wo 8·8=64                                    = 296
  //   ffn_norm 8, router 2·8=16
  //   each of 2 experts + 1 shared: w_gate 64 + w_up 64 + w_down 64 = 192, ×3 = 576
  //   norm 8, no lm_head
  //   total 80 + 8 + 296 + 8 + 16 + 576 + 8                     = 992
  ModelConfig m = config_from_json(R"({"vocab_size": 10, "d_model": 8, "n_layers": 1,
      "n_heads": 2, "attention": "mla", "q_lora_rank": 6, "kv_lora_rank": 4, "rope_head_dim": 2,
      "ffn_hidden": 8, "n_experts": 2, "top_k": 1, "n_shared_experts": 1,
      "tie_embeddings": true})");
  CHECK(m.parameter_count() == 992);
  CHECK(sum_of_shapes(m) == 992);
  std::vector<std::string> names;
  for (const auto& [name, shape] : m.parameter_shapes()) names.push_back(name);
  const std::vector<std::string> expected = {
      "tok_emb.weight",
      "layers.0.attn_norm.weight",
      "layers.0.attn.w_dq.weight",
      "layers.0.attn.w_uq.weight",
      "layers.0.attn.w_qr.weight",
      "layers.0.attn.w_dkv.weight",
      "layers.0.attn.w_uk.weight",
      "layers.0.attn.w_uv.weight",
      "layers.0.attn.w_kr.weight",
      "layers.0.attn.wo.weight",
      "layers.0.ffn_norm.weight",
      "layers.0.moe.router.weight",
      "layers.0.moe.experts.0.w_gate.weight",
      "layers.0.moe.experts.0.w_up.weight",
      "layers.0.moe.experts.0.w_down.weight",
      "layers.0.moe.experts.1.w_gate.weight",
      "layers.0.moe.experts.1.w_up.weight",
      "layers.0.moe.experts.1.w_down.weight",
      "layers.0.moe.shared.0.w_gate.weight",
      "layers.0.moe.shared.0.w_up.weight",
      "layers.0.moe.shared.0.w_down.weight",
      "norm.weight",
  };
  CHECK(names == expected);
  const auto ms = m.parameter_shapes();
  CHECK(ms[4].second == Shape{4, 6});   // w_qr [H·dr, d_cq]
  CHECK(ms[8].second == Shape{2, 8});   // w_kr [dr, D]
  CHECK(ms[11].second == Shape{2, 8});  // router [E, D]
}

TEST_CASE("kv_cache_floats_per_token") {
  // mha: 2·L·H·dh = 2·2·4·16
  CHECK(config_from_json(with("")).kv_cache_floats_per_token() == 256);
  CHECK(config_from_json(with(R"(, "attention": "gqa", "n_kv_heads": 2)"))
            .kv_cache_floats_per_token() == 128);
  CHECK(config_from_json(with(R"(, "attention": "mqa")")).kv_cache_floats_per_token() == 64);
  // mla: L·(d_c + dr) = 2·(16 + 8)
  CHECK(config_from_json(with(R"(, "attention": "mla", "q_lora_rank": 32, "kv_lora_rank": 16,
                                 "rope_head_dim": 8)"))
            .kv_cache_floats_per_token() == 48);
}

TEST_CASE("presets have the documented values and validate") {
  CHECK(preset_names() == std::vector<std::string>{"tiny", "baby", "small"});
  ModelConfig baby = preset_config("baby", 96);
  CHECK(baby.vocab_size == 96);
  CHECK(baby.d_model == 128);
  CHECK(baby.n_layers == 4);
  CHECK(baby.n_heads == 4);
  CHECK(baby.head_dim == 32);
  CHECK(baby.max_seq_len == 64);
  CHECK(baby.ffn == FeedForwardKind::SwiGLU);
  CHECK(baby.ffn_hidden == 344);
  CHECK(baby.rope_fraction == 1.0);
  CHECK(baby.attention == AttentionKind::MHA);
  CHECK(baby.n_kv_heads == 4);
  CHECK(baby.n_experts == 0);
  CHECK(!baby.tie_embeddings);

  ModelConfig small = preset_config("small", 1000);
  CHECK(small.d_model == 384);
  CHECK(small.n_layers == 6);
  CHECK(small.n_heads == 6);
  CHECK(small.head_dim == 64);
  CHECK(small.max_seq_len == 256);
  CHECK(small.ffn_hidden == 1024);

  for (const std::string& name : preset_names()) {
    for (const char* attention : {"mha", "gqa", "mqa", "mla"}) {
      for (int64_t experts : {0, 1, 4}) {
        CAPTURE(name);
        CAPTURE(attention);
        CAPTURE(experts);
        PresetOptions opts;
        opts.attention = attention;
        if (experts > 0) opts.n_experts = experts;
        const ModelConfig c = preset_config(name, 64, opts);
        const int64_t D = c.d_model, H = c.n_heads, dh = c.head_dim;
        CHECK(c.attention == parse_attention(attention));
        if (c.attention == AttentionKind::GQA) CHECK(c.n_kv_heads == H / 2);
        if (c.attention == AttentionKind::MQA) CHECK(c.n_kv_heads == 1);
        if (c.attention == AttentionKind::MLA) {
          CHECK(c.q_lora_rank == D / 2);
          CHECK(c.kv_lora_rank == D / 4);
          CHECK(c.rope_head_dim == dh / 2);
        }
        CHECK(c.n_experts == experts);
        if (experts > 0) CHECK(c.top_k == std::min<int64_t>(2, experts));
        CHECK(c.n_shared_experts == 0);
        // The same validation as a JSON config: it round-trips through one.
        CHECK(config_from_json(config_to_json(c)) == c);
        CHECK_NOTHROW(validate_config(c));
        CHECK(c.parameter_count() == sum_of_shapes(c));
      }
    }
  }

  PresetOptions moe;
  moe.n_experts = 8;
  moe.top_k = 3;
  moe.n_shared_experts = 1;
  ModelConfig m = preset_config("baby", 64, moe);
  CHECK(m.top_k == 3);
  CHECK(m.n_shared_experts == 1);

  auto refused = [](const std::string& name, int64_t vocab, PresetOptions o) {
    return error_of([&] { preset_config(name, vocab, o); });
  };
  CHECK(refused("huge", 64, {}) == "unknown preset 'huge' (the presets are tiny, baby, small)");
  CHECK(refused("baby", 0, {}) == "preset 'baby': 'vocab_size' must be positive, got 0");
  CHECK(refused("baby", 64, {.attention = "flash"}) ==
        "preset 'baby': 'attention' must be \"mha\", \"gqa\", \"mqa\" or \"mla\", got \"flash\"");
  CHECK(refused("baby", 64, {.n_experts = 2, .top_k = 3}) ==
        "preset 'baby': 'top_k' must lie in 1 … n_experts (2), got 3 (the default is 2)");
  CHECK(refused("baby", 64, {.top_k = 1}) == "preset 'baby': 'top_k' needs 'n_experts' > 0");
  CHECK(refused("small", 64, {.n_experts = 0, .n_shared_experts = 1}) ==
        "preset 'small': 'n_shared_experts' needs 'n_experts' > 0");
  CHECK(refused("baby", 64, {.n_experts = -2}) ==
        "preset 'baby': 'n_experts' must be at least 0, got -2");
}

TEST_CASE("validate_config checks a config changed by hand") {
  ModelConfig c = preset_config("baby", 64, {.attention = "gqa"});
  c.n_kv_heads = 3;
  CHECK(error_of([&] { validate_config(c, "edited"); }) ==
        "edited: 'n_kv_heads' (3) must divide n_heads (4) for gqa");
  c = preset_config("baby", 64);
  c.max_seq_len = 0;
  CHECK(error_of([&] { validate_config(c); }) == "config: 'max_seq_len' must be positive, got 0");
}
