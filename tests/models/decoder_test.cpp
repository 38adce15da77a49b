// The KV-cached decoder against the training forward: the same logits at
// every position, for every variant (mha, gqa, mqa, mla; dense and MoE; RoPE
// on all or half of each head), in f32 and f64, through one prefill, prefill +
// steps, steps only and chunked prefill, at batch 2. Then the cache's size,
// the refusals, and the decoder checkpoint: convert, read back, refuse.
#include <doctest/doctest.h>

#include <filesystem>

#include "attnlab/autograd/variable.hpp"
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/tensor/ops.hpp"
#include "attnlab/tensor/storage.hpp"
#include "tests/models/decoder_test_util.hpp"

using namespace attnlab;
using namespace attnlab::test;
namespace fs = std::filesystem;

namespace {

std::vector<Variant> all_variants() {
  std::vector<Variant> out;
  for (const char* attention : {"mha", "gqa", "mqa", "mla"})
    for (bool moe : {false, true})
      for (double fraction : {1.0, 0.5}) {
        if (std::string(attention) == "mla" && fraction != 1.0) continue;  // mla ignores it
        Variant v;
        v.attention = attention;
        v.moe = moe;
        v.rope_fraction = fraction;
        out.push_back(v);
      }
  // The other switches of the spec: relu FFN with biases, tied head, top-1 routing.
  out.push_back({.attention = "gqa",
                 .moe = true,
                 .rope_fraction = 0.5,
                 .ffn = "relu",
                 .top_k = 1,
                 .tied = true});
  out.push_back({.attention = "mla", .moe = true, .ffn = "relu", .top_k = 1, .tied = true});
  out.push_back({.attention = "mqa", .moe = false, .rope_fraction = 0.0});
  return out;
}

Tensor training_logits(const LanguageModel& model, const std::vector<int32_t>& ids, int64_t B,
                       int64_t T, double* aux = nullptr) {
  NoGradGuard no_grad;
  LanguageModelOutput out = model.forward(ids, B, T);
  if (aux) *aux = out.aux.item();
  return out.logits.value();
}

// Every token through step(), from position 0.
Tensor steps_only(Decoder& decoder, const std::vector<int32_t>& ids, int64_t T) {
  const int64_t B = decoder.batch();
  decoder.reset();
  Tensor out = Tensor::empty({B, T, decoder.config().vocab_size}, decoder.dtype());
  std::vector<int32_t> one(B);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < B; ++b) one[b] = ids[b * T + t];
    out.select(1, t).copy_(decoder.step(one));
  }
  return out;
}

fs::path scratch_dir(const std::string& name) {
  fs::path dir = fs::path(ATTNLAB_BINARY_DIR) / "decoder_test" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("decoder logits equal the training forward at every position, for every variant") {
  const int64_t B = 2;
  for (const Variant& v : all_variants())
    for (DType dtype : {DType::F32, DType::F64}) {
      CAPTURE(v.name());
      CAPTURE(dtype_name(dtype));
      const double tol = dtype == DType::F32 ? 1e-5 : 1e-10;
      const ModelConfig config = small_config(v);
      const int64_t T = config.max_seq_len;  // the whole context
      const auto model = random_model(config, dtype, 7);
      const std::vector<int32_t> ids = random_ids(B * T, config.vocab_size, 11);
      double aux = 0;
      const Tensor expected = training_logits(*model, ids, B, T, &aux);
      const DecoderWeights weights = absorb_weights(*model, dtype);
      Decoder decoder(weights, dtype, {.batch = B});

      // One prefill of everything, every position's logits.
      decoder.reset();
      const Tensor whole = decoder.prefill(ids, T, true);
      CHECK(logits_relative_error(whole, expected) <= tol);
      CHECK(decoder.position() == T);
      // The MoE load-balancing loss over the same tokens.
      CHECK(std::abs(decoder.aux_loss() - aux) <= tol * std::max(1.0, std::abs(aux)));

      // Prefill of 5, then steps; and steps only.
      CHECK(logits_relative_error(decode_logits(decoder, ids, T, 5), expected) <= tol);
      CHECK(logits_relative_error(steps_only(decoder, ids, T), expected) <= tol);
      CHECK(std::abs(decoder.aux_loss() - aux) <= tol * std::max(1.0, std::abs(aux)));

      // Prefill of the last position only.
      decoder.reset();
      const Tensor last = decoder.prefill(ids, T);
      CHECK(last.shape() == Shape{B, config.vocab_size});
      CHECK(logits_relative_error(last, expected.select(1, T - 1)) <= tol);

      // Chunked prefill (3 tokens at a time: the later chunks attend to the earlier).
      Decoder chunked(weights, dtype, {.batch = B, .prefill_chunk = 3});
      CHECK(logits_relative_error(chunked.prefill(ids, T, true), expected) <= tol);
      CHECK(logits_relative_error(decode_logits(chunked, ids, T, 7), expected) <= tol);
    }
}

TEST_CASE("a training checkpoint and its converted decoder file decode the same") {
  const fs::path dir = scratch_dir("convert");
  for (const char* attention : {"gqa", "mla"}) {
    CAPTURE(attention);
    const ModelConfig config = small_config({.attention = attention, .moe = true});
    const auto model = random_model(config, DType::F32, 3);
    const std::string train_path = (dir / (std::string(attention) + "_train.safetensors")).string();
    const std::string dec_path = (dir / (std::string(attention) + "_dec.safetensors")).string();
    // A training checkpoint with a tokenizer, training state and optimizer moments.
    std::vector<std::pair<std::string, Tensor>> optim;
    for (const auto& [name, p] : model->named_parameters())
      optim.emplace_back("optim.m." + name, Tensor::zeros(p.shape()));
    write_checkpoint(train_path, *model,
                     {{"tokenizer", "{\"type\":\"char\"}"}, {"train.step", "5"}}, optim);

    const DecoderAgreement a = convert_checkpoint(train_path, dec_path, 1);
    CHECK(a.max_relative_error <= 1e-5);
    CHECK(a.seq_len == config.max_seq_len);

    // The decoder file: its own format, the config, the tokenizer, no training state.
    const SafetensorsFile file = read_safetensors(dec_path);
    CHECK(file.metadata.at("format") == "attnlab.decoder");
    CHECK(config_from_json(file.metadata.at("config")) == config);
    CHECK(file.metadata.at("tokenizer") == "{\"type\":\"char\"}");
    CHECK(file.metadata.count("train.step") == 0);
    const auto shapes = decoder_parameter_shapes(config);
    REQUIRE(file.entries.size() == shapes.size());
    for (const auto& [name, shape] : shapes) CHECK(file.at(name).shape == shape);
    if (std::string(attention) == "mla") {
      // Absorbed: no per-head up-projection of keys or values is left.
      CHECK(file.find("layers.0.attn.w_uk.weight") == nullptr);
      CHECK(file.find("layers.0.attn.w_uv.weight") == nullptr);
      CHECK(file.find("layers.0.attn.w_uq.weight") == nullptr);
      CHECK(file.find("layers.0.attn.wo.weight") == nullptr);
      CHECK(file.at("layers.1.attn.w_uq_uk.weight").shape == Shape{4 * 12, 16});
      CHECK(file.at("layers.1.attn.wo_uv.weight").shape == Shape{32, 4 * 12});
    }

    // Both forms read for decoding, and agree with the training forward.
    const std::vector<int32_t> ids = random_ids(2 * 12, config.vocab_size, 5);
    const Tensor expected = training_logits(*model, ids, 2, 12);
    for (const std::string& path : {train_path, dec_path}) {
      CAPTURE(path);
      const DecoderWeights w = read_decoder_weights(path);
      CHECK(w.config == config);
      CHECK(w.meta("tokenizer") == "{\"type\":\"char\"}");
      Decoder decoder(w, DType::F32, {.batch = 2});
      CHECK(logits_relative_error(decode_logits(decoder, ids, 12, 4), expected) <= 1e-5);
    }
    // f64 decoding of the f32 file agrees too (to the f32 rounding of the absorbed products).
    Decoder dec64(read_decoder_weights(dec_path, DType::F64), DType::F64, {.batch = 2});
    const auto model64 = load_model(read_checkpoint(train_path, DType::F64), DType::F64);
    CHECK(logits_relative_error(decode_logits(dec64, ids, 12, 1),
                                training_logits(*model64, ids, 2, 12)) <= 1e-5);

    // Training-only readers refuse the decoder file, saying why; convert refuses it too.
    const std::string msg = error_of([&] { read_checkpoint(dec_path); });
    CHECK(contains(msg, dec_path + ": is a decoder checkpoint; this command needs a training "
                                   "checkpoint"));
    CHECK(contains(error_of([&] { convert_checkpoint(dec_path, dec_path + ".2"); }),
                   "is already a decoder checkpoint"));
    CHECK(!fs::exists(dec_path + ".2"));
  }
}

TEST_CASE("a decoder file with a missing, misshapen or unknown tensor is refused") {
  const fs::path dir = scratch_dir("malformed");
  const ModelConfig config = small_config({.attention = "mla"});
  const auto model = random_model(config, DType::F32, 3);
  const DecoderWeights w = absorb_weights(*model, DType::F32);
  const std::string path = (dir / "bad.safetensors").string();

  DecoderWeights missing = w;
  missing.tensors.erase(missing.tensors.begin() + 3);
  write_decoder_checkpoint(path, missing);
  CHECK(contains(error_of([&] { read_decoder_weights(path); }), "missing tensor"));

  DecoderWeights extra = w;
  extra.tensors.emplace_back("layers.0.attn.w_uk.weight", Tensor::zeros({4 * 8, 12}));
  write_decoder_checkpoint(path, extra);
  CHECK(contains(error_of([&] { read_decoder_weights(path); }),
                 "unknown tensor layers.0.attn.w_uk.weight"));

  DecoderWeights wrong = w;
  for (auto& [name, t] : wrong.tensors)
    if (name == "layers.0.attn.wo_uv.weight") t = Tensor::zeros({32, 4 * 8});
  write_decoder_checkpoint(path, wrong);
  CHECK(
      contains(error_of([&] { read_decoder_weights(path); }),
               "tensor layers.0.attn.wo_uv.weight has shape [32, 32], the config needs [32, 48]"));
}

TEST_CASE("convert refuses to write a decoder that disagrees with the training forward") {
  const ModelConfig config = small_config({.attention = "mla"});
  const auto model = random_model(config, DType::F32, 3);
  DecoderWeights w = absorb_weights(*model, DType::F32);
  for (auto& [name, t] : w.tensors)
    if (name == "layers.1.attn.w_uq_uk.weight") t = mul_scalar(t, 1.01);
  const std::string msg = error_of([&] { check_decoder_agreement(*model, w, 0, 1e-4); });
  CHECK(contains(msg, "decoder and training forward disagree"));
  CHECK(check_decoder_agreement(*model, absorb_weights(*model, DType::F32), 0, 1e-5)
            .max_relative_error <= 1e-5);
}

TEST_CASE("the cache holds 2·Hkv·dh numbers per token and layer, or d_c + dr for mla") {
  for (const char* attention : {"mha", "gqa", "mqa", "mla"})
    for (DType dtype : {DType::F32, DType::F64}) {
      CAPTURE(attention);
      const ModelConfig c = small_config({.attention = attention});
      const auto model = random_model(c, dtype, 1);
      Decoder decoder(absorb_weights(*model, dtype), dtype, {.batch = 2});
      const int64_t size = static_cast<int64_t>(dtype_size(dtype));
      const int64_t L = c.n_layers, dh = c.head_dim;
      const int64_t formula = std::string(attention) == "mla"
                                  ? L * (c.kv_lora_rank + c.rope_head_dim) * size
                                  : 2 * L * c.n_kv_heads * dh * size;
      CHECK(decoder.cache_bytes_per_token() == formula);
      CHECK(decoder.cache_bytes_per_token() == c.kv_cache_floats_per_token() * size);
      CHECK(decoder.cache_capacity_bytes() == 2 * c.max_seq_len * formula);
      CHECK(decoder.cache_bytes() == 0);
      decoder.prefill(random_ids(2 * 5, c.vocab_size, 1), 5);
      CHECK(decoder.cache_bytes() == 2 * 5 * formula);
      for (int64_t l = 0; l < L; ++l) {
        if (std::string(attention) == "mla") {
          REQUIRE(decoder.latent_cache(l) != nullptr);
          CHECK(decoder.kv_cache(l) == nullptr);
          // One row of dr + d_c numbers per token: no per-head keys or values.
          CHECK(decoder.latent_cache(l)->rows().shape() ==
                Shape{2, c.max_seq_len, c.rope_head_dim + c.kv_lora_rank});
        } else {
          REQUIRE(decoder.kv_cache(l) != nullptr);
          // Hkv heads, never expanded to H.
          CHECK(decoder.kv_cache(l)->keys().shape() == Shape{2, c.max_seq_len, c.n_kv_heads, dh});
          CHECK(decoder.kv_cache(l)->values().shape() == Shape{2, c.max_seq_len, c.n_kv_heads, dh});
        }
      }
    }
  // GQA and MQA really are smaller than MHA.
  auto per_token = [](const char* attention) {
    const ModelConfig c = small_config({.attention = attention});
    return Decoder(absorb_weights(*random_model(c, DType::F32, 1), DType::F32), DType::F32)
        .cache_bytes_per_token();
  };
  CHECK(per_token("gqa") * 2 == per_token("mha"));
  CHECK(per_token("mqa") * 4 == per_token("mha"));
  CHECK(per_token("mla") == 2 * (12 + 4) * 4);
}

TEST_CASE("the decoder refuses to go past max_seq_len, and bad ids, with a clear message") {
  const ModelConfig c = small_config({.attention = "gqa", .max_seq_len = 6});
  const auto model = random_model(c, DType::F32, 1);
  const DecoderWeights w = absorb_weights(*model, DType::F32);
  Decoder decoder(w);
  decoder.prefill(random_ids(6, c.vocab_size, 2), 6);
  const std::string msg = error_of([&] { decoder.step(std::vector<int32_t>{1}); });
  CHECK(msg ==
        "step: the context is full: 6 cached tokens + 1 new would need position 6, but positions "
        "must stay below the model's max_seq_len 6 (start again with reset(), or slide the "
        "window: attnlab sample --slide)");
  CHECK(decoder.position() == 6);
  decoder.reset();
  CHECK(contains(error_of([&] { decoder.prefill(random_ids(7, c.vocab_size, 2), 7); }),
                 "prefill: the context is full: 0 cached tokens + 7 new would need position 6"));
  decoder.prefill(random_ids(3, c.vocab_size, 2), 3);
  CHECK(contains(error_of([&] { decoder.prefill(random_ids(4, c.vocab_size, 2), 4); }),
                 "3 cached tokens + 4 new"));
  CHECK(decoder.position() == 3);  // a refused call changes nothing

  Decoder shorter(w, DType::F32, {.max_len = 4});
  shorter.prefill(random_ids(4, c.vocab_size, 2), 4);
  CHECK(contains(error_of([&] { shorter.step(std::vector<int32_t>{1}); }),
                 "below this decoder's max_len 4 (max_seq_len 6)"));
  CHECK(contains(error_of([&] { Decoder(w, DType::F32, {.max_len = 7}); }),
                 "decoder max_len must lie in 1 … max_seq_len 6"));

  CHECK(error_of([&] { decoder.step(std::vector<int32_t>{23}); }) ==
        "token id 23 (index 0) is outside the vocabulary [0, 23)");
  CHECK(contains(error_of([&] { decoder.step(std::vector<int32_t>{-1}); }), "token id -1"));
  CHECK(error_of([&] {
          decoder.step(std::vector<int32_t>{1, 2});
        }) == "step: 2 token ids for a batch of B=1");
  CHECK(contains(error_of([&] { decoder.prefill(std::vector<int32_t>{}, 0); }),
                 "prefill needs at least one token"));
}

TEST_CASE("a decoding step allocates no tensor storage after warm-up") {
  for (const char* attention : {"mha", "mla"}) {
    CAPTURE(attention);
    const ModelConfig c = small_config({.attention = attention, .moe = true});
    const auto model = random_model(c, DType::F32, 1);
    Decoder decoder(absorb_weights(*model, DType::F32), DType::F32, {.batch = 2});
    decoder.prefill(random_ids(2 * 3, c.vocab_size, 1), 3);
    decoder.step(std::vector<int32_t>{1, 2});  // warm-up
    const PoolStats before = storage_pool_stats();
    for (int i = 0; i < 5; ++i) decoder.step(std::vector<int32_t>{3, 4});
    const PoolStats after = storage_pool_stats();
    CHECK(after.system_allocations == before.system_allocations);
    CHECK(after.reuses == before.reuses);  // not even from the pool
  }
}
