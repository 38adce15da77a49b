#include "attnlab/train/train_settings.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "attnlab/tensor/error.hpp"

namespace attnlab {

void TrainSettings::validate() const {
  ATTN_CHECK(steps >= 0, "--steps must be ≥ 0, got {}", steps);
  ATTN_CHECK(batch_size >= 1, "--batch-size must be ≥ 1, got {}", batch_size);
  ATTN_CHECK(seq_len >= 0, "--seq-len must be ≥ 1, got {}", seq_len);
  ATTN_CHECK(std::isfinite(lr) && lr > 0, "--lr must be a positive number, got {}", lr);
  ATTN_CHECK(std::isfinite(min_lr) && min_lr >= 0 && min_lr <= lr,
             "--min-lr must lie in [0, --lr = {}], got {}", lr, min_lr);
  ATTN_CHECK(warmup >= 0, "--warmup must be ≥ 0, got {}", warmup);
  ATTN_CHECK(decay_steps >= 0, "--decay-steps must be ≥ 0, got {}", decay_steps);
  ATTN_CHECK(std::isfinite(weight_decay) && weight_decay >= 0, "--weight-decay must be ≥ 0, got {}",
             weight_decay);
  ATTN_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
             "AdamW betas must lie in [0, 1), got {} and {}", beta1, beta2);
  ATTN_CHECK(eps > 0, "AdamW eps must be positive, got {}", eps);
  ATTN_CHECK(std::isfinite(clip) && clip >= 0, "--clip must be ≥ 0 (0: no clipping), got {}", clip);
  ATTN_CHECK(accum >= 1, "--accum must be ≥ 1, got {}", accum);
  ATTN_CHECK(eval_every >= 0, "--eval-every must be ≥ 0 (0: only at the end), got {}", eval_every);
  ATTN_CHECK(eval_batches >= 1, "--eval-batches must be ≥ 1, got {}", eval_batches);
  ATTN_CHECK(dropout >= 0 && dropout < 1, "--dropout must lie in [0, 1), got {}", dropout);
  ATTN_CHECK(threads >= 0, "--threads must be ≥ 0 (0: all cores), got {}", threads);
}

std::string TrainSettings::to_json() const {
  nlohmann::ordered_json j;
  j["data_path"] = data_path;
  j["steps"] = steps;
  j["batch_size"] = batch_size;
  j["seq_len"] = seq_len;
  j["lr"] = lr;
  j["min_lr"] = min_lr;
  j["warmup"] = warmup;
  j["decay_steps"] = decay_steps;
  j["weight_decay"] = weight_decay;
  j["beta1"] = beta1;
  j["beta2"] = beta2;
  j["eps"] = eps;
  j["clip"] = clip;
  j["accum"] = accum;
  j["eval_every"] = eval_every;
  j["eval_batches"] = eval_batches;
  j["dropout"] = dropout;
  j["seed"] = std::to_string(seed);  // a string: JSON numbers lose bits past 2^53
  j["threads"] = threads;
  return j.dump();
}

TrainSettings TrainSettings::from_json(const std::string& json, const std::string& what) {
  TrainSettings s;
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    s.data_path = j.at("data_path").get<std::string>();
    s.steps = j.at("steps").get<int64_t>();
    s.batch_size = j.at("batch_size").get<int64_t>();
    s.seq_len = j.at("seq_len").get<int64_t>();
    s.lr = j.at("lr").get<double>();
    s.min_lr = j.at("min_lr").get<double>();
    s.warmup = j.at("warmup").get<int64_t>();
    s.decay_steps = j.at("decay_steps").get<int64_t>();
    s.weight_decay = j.at("weight_decay").get<double>();
    s.beta1 = j.at("beta1").get<double>();
    s.beta2 = j.at("beta2").get<double>();
    s.eps = j.at("eps").get<double>();
    s.clip = j.at("clip").get<double>();
    s.accum = j.at("accum").get<int64_t>();
    s.eval_every = j.at("eval_every").get<int64_t>();
    s.eval_batches = j.at("eval_batches").get<int64_t>();
    s.dropout = j.at("dropout").get<double>();
    s.seed = std::stoull(j.at("seed").get<std::string>());
    s.threads = j.at("threads").get<int64_t>();
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: malformed training settings: {}", what, e.what()));
  }
  s.validate();
  return s;
}

}  // namespace attnlab
