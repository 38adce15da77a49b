#include "attnlab/models/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attnlab/tensor/error.hpp"
#include "attnlab/tensor/spelling.hpp"

namespace attnlab {
namespace {

using nlohmann::json;

// The keys of docs/MODEL-SPEC.md's table, in its order (config_to_json writes them so).
const std::vector<std::string> kKeys = {
    "vocab_size",    "d_model",      "n_layers",         "n_heads",       "head_dim",
    "attention",     "n_kv_heads",   "max_seq_len",      "rope_theta",    "rope_fraction",
    "q_lora_rank",   "kv_lora_rank", "rope_head_dim",    "ffn",           "ffn_hidden",
    "n_experts",     "top_k",        "n_shared_experts", "aux_loss_coef", "norm_eps",
    "tie_embeddings"};

// --- int64 arithmetic that refuses to overflow (absurd configs must not wrap) ---

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  ATTN_CHECK(!__builtin_mul_overflow(a, b, &r), "the model is too large: a size overflows int64");
  return r;
}
int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  ATTN_CHECK(!__builtin_add_overflow(a, b, &r),
             "the model is too large: its parameter count overflows int64");
  return r;
}
int64_t checked_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n = checked_mul(n, s);
  return n;
}

std::string unknown_key_message(const std::string& what, const std::string& key) {
  if (const auto best = closest_spelling(key, kKeys))
    return fmt::format("{}: unknown key '{}' (a typo? did you mean '{}'?)", what, key, *best);
  return fmt::format("{}: unknown key '{}' (a typo? the known keys are {})", what, key,
                     fmt::join(kKeys, ", "));
}

// "the string \"4\"", "4.0", "an array": what a wrong value was, for messages.
std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return fmt::format("the boolean {}", v.get<bool>());
    case json::value_t::string:
      return fmt::format("the string {}", v.dump());
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return v.dump();  // numbers: 4.0 prints as 4.0
  }
}

// Reads typed keys out of a config object; every refusal names the key.
class KeyReader {
 public:
  KeyReader(const json& object, const std::string& what) : object_(object), what_(what) {}

  bool has(const char* key) const { return object_.contains(key); }

  // A JSON integer (4.0 is refused) that is at least `min`.
  std::optional<int64_t> integer(const char* key, int64_t min) const {
    if (!has(key)) return std::nullopt;
    const json& v = object_.at(key);
    ATTN_CHECK(v.is_number_integer(), "{}: '{}' must be an integer, got {}", what_, key,
               describe(v));
    ATTN_CHECK(!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t(INT64_MAX),
               "{}: '{}' is too large ({})", what_, key, v.dump());
    int64_t x = v.get<int64_t>();
    if (min == 1) ATTN_CHECK(x >= 1, "{}: '{}' must be positive, got {}", what_, key, x);
    ATTN_CHECK(x >= min, "{}: '{}' must be at least {}, got {}", what_, key, min, x);
    return x;
  }
  int64_t required_integer(const char* key) const {
    ATTN_CHECK(has(key), "{}: missing required key '{}'", what_, key);
    return *integer(key, 1);
  }
  // A JSON number (integer or not).
  std::optional<double> number(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = object_.at(key);
    ATTN_CHECK(v.is_number(), "{}: '{}' must be a number, got {}", what_, key, describe(v));
    return v.get<double>();
  }
  std::optional<bool> boolean(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = object_.at(key);
    ATTN_CHECK(v.is_boolean(), "{}: '{}' must be true or false, got {}", what_, key, describe(v));
    return v.get<bool>();
  }
  std::optional<std::string> string(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = object_.at(key);
    ATTN_CHECK(v.is_string(), "{}: '{}' must be a string, got {}", what_, key, describe(v));
    return v.get<std::string>();
  }

 private:
  const json& object_;
  const std::string& what_;
};

int64_t round_up(int64_t x, int64_t multiple) {
  return (x + multiple - 1) / multiple * multiple;
}

// The default F: 4·D for relu, round_up(8·D/3, 8) for swiglu (8·D/3 rounded up
// first; for integer D the order of the two roundings makes no difference).
int64_t default_ffn_hidden(FeedForwardKind ffn, int64_t d_model) {
  if (ffn == FeedForwardKind::ReLU) return checked_mul(4, d_model);
  return round_up((checked_mul(8, d_model) + 2) / 3, 8);
}

// The config from a parsed JSON value: types, defaults, canonical form, rules.
ModelConfig config_from_value(const json& j, const std::string& what) {
  ATTN_CHECK(j.is_object(), "{}: a model config must be a JSON object, got {}", what, describe(j));
  for (const auto& item : j.items())
    if (std::find(kKeys.begin(), kKeys.end(), item.key()) == kKeys.end())
      throw Error(unknown_key_message(what, item.key()));

  const KeyReader r(j, what);
  ModelConfig c;
  c.vocab_size = r.required_integer("vocab_size");
  c.d_model = r.required_integer("d_model");
  c.n_layers = r.required_integer("n_layers");
  c.n_heads = r.required_integer("n_heads");
  if (auto a = r.string("attention")) {
    try {
      c.attention = parse_attention(*a);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", what, e.what()));
    }
  }
  if (auto f = r.string("ffn")) {
    try {
      c.ffn = parse_ffn(*f);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", what, e.what()));
    }
  }
  const bool mla = c.attention == AttentionKind::MLA;

  if (auto dh = r.integer("head_dim", 1)) {
    c.head_dim = *dh;
  } else {
    ATTN_CHECK(c.d_model % c.n_heads == 0,
               "{}: 'n_heads' ({}) must divide 'd_model' ({}) when 'head_dim' is not given", what,
               c.n_heads, c.d_model);
    c.head_dim = c.d_model / c.n_heads;
  }

  // n_kv_heads: checked against the variant in validate_config; mla ignores it.
  std::optional<int64_t> kv = r.integer("n_kv_heads", 1);
  switch (c.attention) {
    case AttentionKind::MHA:
      c.n_kv_heads = kv.value_or(c.n_heads);
      break;
    case AttentionKind::MQA:
      c.n_kv_heads = kv.value_or(1);
      break;
    case AttentionKind::GQA:
      ATTN_CHECK(kv.has_value(), "{}: 'n_kv_heads' is required for gqa", what);
      c.n_kv_heads = *kv;
      break;
    case AttentionKind::MLA:
      c.n_kv_heads = c.n_heads;
      break;
  }

  if (auto v = r.integer("max_seq_len", 1)) c.max_seq_len = *v;
  if (auto v = r.number("rope_theta")) c.rope_theta = *v;
  if (auto v = r.number("rope_fraction")) c.rope_fraction = *v;

  // The MLA ranks: required (and positive) for mla; elsewhere unused and
  // resolved to 0. config_to_json writes them only for mla; a 0 elsewhere
  // (what attnlab wrote before) is still read.
  for (auto [key, field] :
       {std::pair{"q_lora_rank", &c.q_lora_rank}, std::pair{"kv_lora_rank", &c.kv_lora_rank},
        std::pair{"rope_head_dim", &c.rope_head_dim}}) {
    if (mla) {
      ATTN_CHECK(r.has(key), "{}: '{}' is required for mla", what, key);
      *field = *r.integer(key, 1);
    } else {
      r.integer(key, 0);  // type-checked, then ignored
      *field = 0;
    }
  }

  if (auto v = r.integer("ffn_hidden", 1)) {
    c.ffn_hidden = *v;
  } else {
    try {
      c.ffn_hidden = default_ffn_hidden(c.ffn, c.d_model);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: 'd_model': {}", what, e.what()));
    }
  }
  if (auto v = r.integer("n_experts", 0)) c.n_experts = *v;
  if (auto v = r.integer("top_k", 1)) c.top_k = *v;
  if (auto v = r.integer("n_shared_experts", 0)) c.n_shared_experts = *v;
  if (auto v = r.number("aux_loss_coef")) c.aux_loss_coef = *v;
  if (auto v = r.number("norm_eps")) c.norm_eps = *v;
  if (auto v = r.boolean("tie_embeddings")) c.tie_embeddings = *v;

  validate_config(c, what);
  if (mla) c.rope_fraction = 1.0;  // validated above, then ignored by mla
  return c;
}

// The parameters of one FFN (a dense FFN, an expert or a shared expert).
void append_ffn(std::vector<std::pair<std::string, Shape>>& out, const std::string& prefix,
                const ModelConfig& c) {
  const int64_t D = c.d_model, F = c.ffn_hidden;
  if (c.ffn == FeedForwardKind::SwiGLU) {
    out.emplace_back(prefix + "w_gate.weight", Shape{F, D});
    out.emplace_back(prefix + "w_up.weight", Shape{F, D});
    out.emplace_back(prefix + "w_down.weight", Shape{D, F});
  } else {
    out.emplace_back(prefix + "w_up.weight", Shape{F, D});
    out.emplace_back(prefix + "w_up.bias", Shape{F});
    out.emplace_back(prefix + "w_down.weight", Shape{D, F});
    out.emplace_back(prefix + "w_down.bias", Shape{D});
  }
}

// The attention parameters of one layer.
void append_attention(std::vector<std::pair<std::string, Shape>>& out, const std::string& prefix,
                      const ModelConfig& c) {
  const int64_t D = c.d_model, H = c.n_heads, dh = c.head_dim;
  const int64_t q_width = checked_mul(H, dh);
  if (c.attention != AttentionKind::MLA) {
    const int64_t kv_width = checked_mul(c.n_kv_heads, dh);
    out.emplace_back(prefix + "wq.weight", Shape{q_width, D});
    out.emplace_back(prefix + "wk.weight", Shape{kv_width, D});
    out.emplace_back(prefix + "wv.weight", Shape{kv_width, D});
  } else {
    const int64_t dcq = c.q_lora_rank, dc = c.kv_lora_rank, dr = c.rope_head_dim;
    out.emplace_back(prefix + "w_dq.weight", Shape{dcq, D});
    out.emplace_back(prefix + "w_uq.weight", Shape{q_width, dcq});
    out.emplace_back(prefix + "w_qr.weight", Shape{checked_mul(H, dr), dcq});
    out.emplace_back(prefix + "w_dkv.weight", Shape{dc, D});
    out.emplace_back(prefix + "w_uk.weight", Shape{q_width, dc});
    out.emplace_back(prefix + "w_uv.weight", Shape{q_width, dc});
    out.emplace_back(prefix + "w_kr.weight", Shape{dr, D});
  }
  out.emplace_back(prefix + "wo.weight", Shape{D, q_width});
}

int64_t sum_numel(const std::vector<std::pair<std::string, Shape>>& shapes) {
  int64_t n = 0;
  for (const auto& [name, shape] : shapes) n = checked_add(n, checked_numel(shape));
  return n;
}

}  // namespace

std::string attention_name(AttentionKind a) {
  switch (a) {
    case AttentionKind::MHA:
      return "mha";
    case AttentionKind::GQA:
      return "gqa";
    case AttentionKind::MQA:
      return "mqa";
    case AttentionKind::MLA:
      return "mla";
  }
  return "?";
}

std::string ffn_name(FeedForwardKind f) {
  return f == FeedForwardKind::SwiGLU ? "swiglu" : "relu";
}

AttentionKind parse_attention(const std::string& name) {
  for (AttentionKind a :
       {AttentionKind::MHA, AttentionKind::GQA, AttentionKind::MQA, AttentionKind::MLA})
    if (name == attention_name(a)) return a;
  throw Error(
      fmt::format("'attention' must be \"mha\", \"gqa\", \"mqa\" or \"mla\", got \"{}\"", name));
}

FeedForwardKind parse_ffn(const std::string& name) {
  if (name == "swiglu") return FeedForwardKind::SwiGLU;
  if (name == "relu") return FeedForwardKind::ReLU;
  throw Error(fmt::format("'ffn' must be \"swiglu\" or \"relu\", got \"{}\"", name));
}

int64_t ModelConfig::resolve_seq_len(int64_t seq_len) const {
  const int64_t t = seq_len == 0 ? max_seq_len : seq_len;
  ATTN_CHECK(t <= max_seq_len, "--seq-len {} exceeds the model's max_seq_len {}", t, max_seq_len);
  return t;
}

int64_t ModelConfig::rope_dims() const {
  if (attention == AttentionKind::MLA) return rope_head_dim;
  return 2 * static_cast<int64_t>(std::floor(rope_fraction * static_cast<double>(head_dim) / 2.0));
}

int64_t ModelConfig::kv_cache_floats_per_token() const {
  if (attention == AttentionKind::MLA)
    return checked_mul(n_layers, checked_add(kv_lora_rank, rope_head_dim));
  return checked_mul(checked_mul(2, n_layers), checked_mul(n_kv_heads, head_dim));
}

std::vector<std::pair<std::string, Shape>> ModelConfig::parameter_shapes() const {
  std::vector<std::pair<std::string, Shape>> out;
  out.emplace_back("tok_emb.weight", Shape{vocab_size, d_model});
  for (int64_t i = 0; i < n_layers; ++i) {
    const std::string layer = fmt::format("layers.{}.", i);
    out.emplace_back(layer + "attn_norm.weight", Shape{d_model});
    append_attention(out, layer + "attn.", *this);
    out.emplace_back(layer + "ffn_norm.weight", Shape{d_model});
    if (!is_moe()) {
      append_ffn(out, layer + "ffn.", *this);
      continue;
    }
    out.emplace_back(layer + "moe.router.weight", Shape{n_experts, d_model});
    for (int64_t e = 0; e < n_experts; ++e)
      append_ffn(out, fmt::format("{}moe.experts.{}.", layer, e), *this);
    for (int64_t s = 0; s < n_shared_experts; ++s)
      append_ffn(out, fmt::format("{}moe.shared.{}.", layer, s), *this);
  }
  out.emplace_back("norm.weight", Shape{d_model});
  if (!tie_embeddings) out.emplace_back("lm_head.weight", Shape{vocab_size, d_model});
  return out;
}

// Computed per kind of block rather than by listing every parameter, so that
// validating an absurd config (a million layers of a thousand experts) costs
// nothing; tests check that it equals the sum over parameter_shapes().
int64_t ModelConfig::parameter_count() const {
  std::vector<std::pair<std::string, Shape>> attn, ffn;
  append_attention(attn, "", *this);
  append_ffn(ffn, "", *this);
  int64_t layer = checked_add(sum_numel(attn), checked_mul(2, d_model));  // + the two norms
  if (!is_moe()) {
    layer = checked_add(layer, sum_numel(ffn));
  } else {
    layer = checked_add(layer, checked_mul(n_experts, d_model));  // router
    layer =
        checked_add(layer, checked_mul(checked_add(n_experts, n_shared_experts), sum_numel(ffn)));
  }
  const int64_t embedding = checked_mul(vocab_size, d_model);
  int64_t n = checked_add(embedding, checked_mul(n_layers, layer));
  n = checked_add(n, d_model);  // norm
  if (!tie_embeddings) n = checked_add(n, embedding);
  return n;
}

void validate_config(const ModelConfig& c, const std::string& what) {
  auto positive = [&](const char* key, int64_t v) {
    ATTN_CHECK(v >= 1, "{}: '{}' must be positive, got {}", what, key, v);
  };
  positive("vocab_size", c.vocab_size);
  positive("d_model", c.d_model);
  positive("n_layers", c.n_layers);
  positive("n_heads", c.n_heads);
  positive("head_dim", c.head_dim);
  positive("max_seq_len", c.max_seq_len);
  positive("ffn_hidden", c.ffn_hidden);
  positive("top_k", c.top_k);

  switch (c.attention) {
    case AttentionKind::MHA:
      ATTN_CHECK(c.n_kv_heads == c.n_heads,
                 "{}: 'n_kv_heads' must equal n_heads ({}) for mha, got {} (use gqa for fewer)",
                 what, c.n_heads, c.n_kv_heads);
      break;
    case AttentionKind::MQA:
      ATTN_CHECK(c.n_kv_heads == 1, "{}: 'n_kv_heads' must be 1 for mqa, got {}", what,
                 c.n_kv_heads);
      break;
    case AttentionKind::GQA:
      positive("n_kv_heads", c.n_kv_heads);
      ATTN_CHECK(c.n_heads % c.n_kv_heads == 0,
                 "{}: 'n_kv_heads' ({}) must divide n_heads ({}) for gqa", what, c.n_kv_heads,
                 c.n_heads);
      break;
    case AttentionKind::MLA:
      positive("q_lora_rank", c.q_lora_rank);
      positive("kv_lora_rank", c.kv_lora_rank);
      positive("rope_head_dim", c.rope_head_dim);
      ATTN_CHECK(c.rope_head_dim % 2 == 0, "{}: 'rope_head_dim' must be even for mla, got {}", what,
                 c.rope_head_dim);
      break;
  }

  ATTN_CHECK(std::isfinite(c.rope_theta) && c.rope_theta > 0,
             "{}: 'rope_theta' must be a positive number, got {}", what, c.rope_theta);
  ATTN_CHECK(c.rope_fraction >= 0 && c.rope_fraction <= 1,
             "{}: 'rope_fraction' must lie in [0, 1], got {}", what, c.rope_fraction);
  ATTN_CHECK(std::isfinite(c.norm_eps) && c.norm_eps > 0,
             "{}: 'norm_eps' must be a positive number, got {}", what, c.norm_eps);
  ATTN_CHECK(std::isfinite(c.aux_loss_coef) && c.aux_loss_coef >= 0,
             "{}: 'aux_loss_coef' must be a non-negative number, got {}", what, c.aux_loss_coef);

  ATTN_CHECK(c.n_experts >= 0, "{}: 'n_experts' must be at least 0, got {}", what, c.n_experts);
  ATTN_CHECK(c.n_shared_experts >= 0, "{}: 'n_shared_experts' must be at least 0, got {}", what,
             c.n_shared_experts);
  if (c.n_experts > 0) {
    ATTN_CHECK(c.top_k <= c.n_experts,
               "{}: 'top_k' must lie in 1 … n_experts ({}), got {} (the default is 2)", what,
               c.n_experts, c.top_k);
  } else {
    ATTN_CHECK(c.n_shared_experts == 0,
               "{}: 'n_shared_experts' must be 0 when n_experts is 0 (a dense model), got {}", what,
               c.n_shared_experts);
  }

  try {
    c.parameter_count();
    c.kv_cache_floats_per_token();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", what, e.what()));
  }
}

ModelConfig config_from_json(const std::string& json_text, const std::string& what) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
    // (or out_of_range.406, "number overflow parsing '1e999'")
    std::string detail = e.what();
    if (auto p = detail.find("] "); p != std::string::npos) detail = detail.substr(p + 2);
    throw Error(fmt::format("{}: malformed JSON: {}", what, detail));
  }
  return config_from_value(j, what);
}

ModelConfig config_from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ATTN_CHECK(in, "cannot open config file '{}'", path);
  std::ostringstream text;
  text << in.rdbuf();
  ATTN_CHECK(!in.bad(), "cannot read config file '{}'", path);
  return config_from_json(text.str(), path);
}

std::string config_to_json(const ModelConfig& c) {
  nlohmann::ordered_json j;
  j["vocab_size"] = c.vocab_size;
  j["d_model"] = c.d_model;
  j["n_layers"] = c.n_layers;
  j["n_heads"] = c.n_heads;
  j["head_dim"] = c.head_dim;
  j["attention"] = attention_name(c.attention);
  j["n_kv_heads"] = c.n_kv_heads;
  j["max_seq_len"] = c.max_seq_len;
  j["rope_theta"] = c.rope_theta;
  j["rope_fraction"] = c.rope_fraction;
  if (c.attention ==
      AttentionKind::MLA) {  // docs/MODEL-SPEC.md: keys positive, so only where they apply
    j["q_lora_rank"] = c.q_lora_rank;
    j["kv_lora_rank"] = c.kv_lora_rank;
    j["rope_head_dim"] = c.rope_head_dim;
  }
  j["ffn"] = ffn_name(c.ffn);
  j["ffn_hidden"] = c.ffn_hidden;
  j["n_experts"] = c.n_experts;
  j["top_k"] = c.top_k;
  j["n_shared_experts"] = c.n_shared_experts;
  j["aux_loss_coef"] = c.aux_loss_coef;
  j["norm_eps"] = c.norm_eps;
  j["tie_embeddings"] = c.tie_embeddings;
  return j.dump(2);
}

std::vector<std::string> preset_names() {
  return {"tiny", "baby", "small"};
}

ModelConfig preset_config(const std::string& name, int64_t vocab_size, const PresetOptions& opts) {
  struct Preset {
    int64_t d_model, n_layers, n_heads, max_seq_len;
  };
  Preset p;
  if (name == "tiny") {
    p = {64, 2, 4, 64};
  } else if (name == "baby") {
    p = {128, 4, 4, 64};
  } else if (name == "small") {
    p = {384, 6, 6, 256};
  } else {
    throw Error(fmt::format("unknown preset '{}' (the presets are {})", name,
                            fmt::join(preset_names(), ", ")));
  }
  const std::string what = fmt::format("preset '{}'", name);
  json j = {{"vocab_size", vocab_size}, {"d_model", p.d_model},         {"n_layers", p.n_layers},
            {"n_heads", p.n_heads},     {"max_seq_len", p.max_seq_len}, {"ffn", "swiglu"},
            {"rope_fraction", 1.0}};
  const std::string attention = opts.attention.value_or("mha");
  j["attention"] = attention;
  const int64_t dh = p.d_model / p.n_heads;
  if (attention == "gqa") j["n_kv_heads"] = p.n_heads / 2;
  if (attention == "mqa") j["n_kv_heads"] = 1;
  if (attention == "mla") {
    j["q_lora_rank"] = p.d_model / 2;
    j["kv_lora_rank"] = p.d_model / 4;
    j["rope_head_dim"] = dh / 2;
  }
  const int64_t experts = opts.n_experts.value_or(0);
  if (opts.n_experts) j["n_experts"] = experts;
  if (experts > 0) {
    j["top_k"] = opts.top_k.value_or(std::min<int64_t>(2, experts));
    if (opts.n_shared_experts) j["n_shared_experts"] = *opts.n_shared_experts;
  } else {
    ATTN_CHECK(!opts.top_k, "{}: 'top_k' needs 'n_experts' > 0", what);
    ATTN_CHECK(!opts.n_shared_experts, "{}: 'n_shared_experts' needs 'n_experts' > 0", what);
  }
  return config_from_value(j, what);
}

}  // namespace attnlab
