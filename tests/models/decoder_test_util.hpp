// Shared by the decoder and sampling tests: small configs of every variant,
// models with weights large enough that attention is peaked and routing
// decisive (the spec's 0.02 init makes every logit nearly equal, which would
// hide a wrong decoder), and error capture.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "attnlab/models/config.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/tensor/random.hpp"

namespace attnlab::test {

template <typename Fn>
std::string error_of(Fn&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

struct Variant {
  std::string attention = "mha";  // mha, gqa, mqa, mla
  bool moe = false;
  double rope_fraction = 1.0;
  std::string ffn = "swiglu";
  int64_t top_k = 2;
  bool tied = false;
  int64_t max_seq_len = 12;

  std::string name() const {
    return attention + (moe ? "+moe(k=" + std::to_string(top_k) + ")" : "") +
           " rope_fraction=" + std::to_string(rope_fraction) + " " + ffn + (tied ? " tied" : "");
  }
};

// V=23, D=32, L=2, H=4, dh=8; gqa 2 KV heads; mla d_cq=16, d_c=12, dr=4;
// MoE 4 experts + 1 shared.
inline ModelConfig small_config(const Variant& v) {
  std::string json = R"({"vocab_size": 23, "d_model": 32, "n_layers": 2, "n_heads": 4, )";
  json += "\"max_seq_len\": " + std::to_string(v.max_seq_len) + ", ";
  json += "\"attention\": \"" + v.attention + "\", \"ffn\": \"" + v.ffn + "\", ";
  json += "\"rope_fraction\": " + std::to_string(v.rope_fraction);
  json += ", \"tie_embeddings\": " + std::string(v.tied ? "true" : "false");
  if (v.attention == "gqa") json += R"(, "n_kv_heads": 2)";
  if (v.attention == "mla")
    json += R"(, "q_lora_rank": 16, "kv_lora_rank": 12, "rope_head_dim": 4)";
  if (v.moe)
    json += R"(, "n_experts": 4, "n_shared_experts": 1, "top_k": )" + std::to_string(v.top_k);
  json += "}";
  return config_from_json(json, "test config " + v.name());
}

// A model of the config with weights of unit-scale activations: matrices
// normal(0, 1/sqrt(fan_in)), embeddings normal(0, 1), gains 1 ± 0.2, biases ± 0.1.
inline std::unique_ptr<LanguageModel> random_model(const ModelConfig& config, DType dtype,
                                                   uint64_t seed) {
  auto model = std::make_unique<LanguageModel>(config, dtype, seed);
  Rng rng(seed + 1000);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, p] : model->named_parameters()) {
    const Shape& s = p.shape();
    Tensor t;
    if (name == "tok_emb.weight")
      t = Tensor::normal(s, rng, 0.0, 1.0, dtype);
    else if (s.size() == 2)
      t = Tensor::normal(s, rng, 0.0, 1.0 / std::sqrt(static_cast<double>(s[1])), dtype);
    else if (name.find("norm") != std::string::npos)
      t = Tensor::normal(s, rng, 1.0, 0.2, dtype);
    else
      t = Tensor::normal(s, rng, 0.0, 0.1, dtype);
    tensors.emplace_back(name, t);
  }
  model->load_parameters(tensors, "random weights");
  model->eval();
  return model;
}

inline std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.below(vocab));
  return ids;
}

}  // namespace attnlab::test
