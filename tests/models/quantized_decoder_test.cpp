// Decoders with bf16 and int8 matrices (models/decoder_checkpoint.hpp,
// tensor/packed_matrix.hpp): they compute with exactly their stored values,
// stay within convert's tolerance of the training forward, write and read
// back bit for bit, decode a sequence alone or in a batch to the same bits,
// and refuse malformed files with a message.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "attnlab/autograd/variable.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/models/sampling.hpp"
#include "attnlab/tensor/ops.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using test::contains;
using test::error_of;
using test::random_ids;
using test::random_model;
using test::small_config;
using test::Variant;

constexpr WeightFormat kPacked[] = {WeightFormat::BF16, WeightFormat::Int8};

const Variant kVariants[] = {
    {.attention = "mha", .rope_fraction = 0.5}, {.attention = "gqa"},
    {.attention = "mqa", .ffn = "relu"},        {.attention = "mla"},
    {.attention = "gqa", .moe = true},          {.attention = "mla", .moe = true, .top_k = 1},
    {.attention = "mha", .tied = true},
};

fs::path scratch_dir(const std::string& name) {
  fs::path dir = fs::path(ATTNLAB_BINARY_DIR) / "quantized_decoder_test" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

Tensor training_logits(const LanguageModel& model, const std::vector<int32_t>& ids, int64_t B,
                       int64_t T) {
  NoGradGuard no_grad;
  return model.forward(ids, B, T).logits.value();
}

DecoderWeights packed_weights(const LanguageModel& model, WeightFormat format) {
  DecoderWeights w = absorb_weights(model, DType::F32);
  pack_decoder_weights(w, format);
  return w;
}

// An int8 matrix whose stored values are no longer its tensor's.
void halve_scales(PackedMatrix& m) {
  std::vector<float> scales(m.int8_scales().begin(), m.int8_scales().end());
  for (float& s : scales) s *= 0.5f;
  m = PackedMatrix::from_int8(m.rows(), m.cols(), m.int8_values(), scales);
}

}  // namespace

TEST_CASE("bf16 and int8 decoders: which tensors are packed, and their stored values decode") {
  const int64_t B = 2, T = 12;
  for (const Variant& v : kVariants) {
    CAPTURE(v.name());
    const ModelConfig config = small_config(v);
    const auto model = random_model(config, DType::F32, 11);
    const std::vector<int32_t> ids = random_ids(B * T, config.vocab_size, 3);
    const Tensor expected = training_logits(*model, ids, B, T);
    for (WeightFormat f : kPacked) {
      CAPTURE(weight_format_name(f));
      const DecoderWeights w = packed_weights(*model, f);
      // Every matrix but the routers is packed; vectors stay f32.
      for (const auto& [name, t] : w.tensors) {
        const bool packed = w.packed.count(name) == 1;
        CHECK(packed == (t.dim() == 2 && !contains(name, ".moe.router.")));
      }
      // The f32 decoder (packed steps, gemm on unpacked values for the
      // prefill) equals an f64 decoder of the same values up to f32 rounding
      // (bf16), or up to the rounding of the activations (int8, whose
      // product quantizes them: a MoE may route a token elsewhere).
      Decoder dec(w, DType::F32, {.batch = B});
      DecoderWeights w64 = w;
      for (auto& [name, t] : w64.tensors) t = t.to(DType::F64);
      w64.packed.clear();
      Decoder dec64(w64, DType::F64, {.batch = B});
      const Tensor got = decode_logits(dec, ids, T, 4);
      const double values_err = logits_relative_error(got, decode_logits(dec64, ids, T, 4));
      if (f == WeightFormat::BF16) CHECK(values_err <= 2e-5);
      if (f == WeightFormat::Int8 && !v.moe) {
        CHECK(values_err > 1e-4);  // the activations are rounded: not the f32 product
        CHECK(values_err <= decoder_values_tolerance(f));
      }
      // And the rounding of the weights moves the logits less than convert's tolerance.
      const double err = logits_relative_error(got, expected);
      CHECK(err > 0);
      if (!v.moe) CHECK(err <= decoder_check_tolerance(f));
    }
  }
}

TEST_CASE("convert's check of an int8 decoder still catches a matrix read wrongly") {
  const ModelConfig config = small_config({.attention = "gqa"});
  const auto model = random_model(config, DType::F32, 17);
  DecoderWeights w = packed_weights(*model, WeightFormat::Int8);
  CHECK(check_packed_decoder(*model, w, 1).max_relative_error <=
        decoder_values_tolerance(WeightFormat::Int8));
  // One matrix whose stored values are not those of its tensor: the first
  // layer's FFN output with its scales halved.
  halve_scales(w.packed.at("layers.0.ffn.w_down.weight"));
  CHECK(contains(error_of([&] { check_packed_decoder(*model, w, 1); }),
                 "does not compute with its stored values"));
}

TEST_CASE("convert's checks of a MoE decoder: enforced where the routing agrees") {
  for (const Variant& v : {Variant{.attention = "gqa", .moe = true},
                           Variant{.attention = "mla", .moe = true, .top_k = 1}}) {
    CAPTURE(v.name());
    const auto model = random_model(small_config(v), DType::F32, 1);
    for (WeightFormat f : kPacked) {
      CAPTURE(weight_format_name(f));
      const PackedAgreement a = check_packed_decoder(*model, packed_weights(*model, f), 0);
      CHECK(a.tolerance == decoder_values_tolerance(f, true));
      CHECK(a.rounding_tolerance == decoder_check_tolerance(f, true));
      CHECK(a.max_relative_error <= a.tolerance);
      CHECK(a.rounding_error > 0);
      CHECK(a.rounding_error <= a.rounding_tolerance);
      for (const RoutingAgreement& r : {a.routing, a.rounding_routing}) {
        CHECK(r.positions == 2 * 12);  // B=2 × T=12, each sequence decoded alone
        CHECK(r.agreeing >= r.needed());
        CHECK(r.compared <= r.agreeing);
        CHECK(r.compared > 0);
      }
      // bf16 computes with its values exactly: no token changes experts.
      if (f == WeightFormat::BF16) CHECK(a.routing.agreeing == a.routing.positions);
    }
  }
}

TEST_CASE("convert's checks of a MoE decoder catch an expert or a router changed") {
  const auto model = random_model(small_config({.attention = "gqa", .moe = true}), DType::F32, 1);
  // An expert whose stored int8 values are not its tensor's: scales halved.
  DecoderWeights w = packed_weights(*model, WeightFormat::Int8);
  halve_scales(w.packed.at("layers.0.moe.experts.0.w_down.weight"));
  CHECK(contains(error_of([&] { check_packed_decoder(*model, w, 0); }),
                 "the int8 decoder does not compute with its stored values"));
  // A router row scaled (the router stays f32, so both decoders of check 1
  // share it; check 2 compares with the training weights): by 1.5, the
  // logits move; by −8, expert 0 loses its tokens and nothing is compared.
  auto scaled_router = [&](double factor) {
    DecoderWeights r = packed_weights(*model, WeightFormat::BF16);
    for (auto& [name, t] : r.tensors)
      if (name == "layers.0.moe.router.weight") {
        t = t.clone();
        t.select(0, 0).copy_(mul_scalar(t.select(0, 0), factor));
      }
    return error_of([&] { check_packed_decoder(*model, r, 0); });
  };
  CHECK(contains(scaled_router(1.5), "the bf16 decoder strays too far from the training forward"));
  CHECK(contains(scaled_router(-8),
                 "the bf16 decoder routes tokens to other experts than the f32 "
                 "decoder at "));
}

TEST_CASE("bf16 and int8 decoder files write and read back bit for bit") {
  const fs::path dir = scratch_dir("round_trip");
  const ModelConfig config = small_config({.attention = "mla", .moe = true});
  const auto model = random_model(config, DType::F32, 5);
  const std::vector<int32_t> ids = random_ids(2 * 12, config.vocab_size, 8);
  for (WeightFormat f : kPacked) {
    CAPTURE(weight_format_name(f));
    const DecoderWeights w = packed_weights(*model, f);
    const std::string path = (dir / (std::string(weight_format_name(f)) + ".safetensors")).string();
    write_decoder_checkpoint(path, w);
    const SafetensorsFile file = read_safetensors(path);
    CHECK(file.metadata.at("weights") == weight_format_name(f));
    const std::string stored = f == WeightFormat::BF16 ? "BF16" : "I8";
    CHECK(file.at("layers.0.attn.w_dq.weight").dtype == stored);
    CHECK(file.at("tok_emb.weight").dtype == stored);
    CHECK(file.at("layers.0.attn_norm.weight").dtype == "F32");
    CHECK(file.at("layers.1.moe.router.weight").dtype == "F32");
    if (f == WeightFormat::Int8) {
      CHECK(file.metadata.at("weights.group_size") == "32");
      // D = 32 columns: one scale per row; w_uq_uk is [48, 16]: one group of 16.
      CHECK(file.at("layers.0.attn.w_dq.weight_scale").shape == Shape{16, 1});
      CHECK(file.at("layers.0.moe.experts.2.w_down.weight_scale").dtype == "F32");
    } else {
      CHECK(file.find("layers.0.attn.w_dq.weight_scale") == nullptr);
    }
    const DecoderWeights back = read_decoder_weights(path);
    CHECK(back.weights == f);
    REQUIRE(back.packed.size() == w.packed.size());
    for (const auto& [name, m] : w.packed) {
      const PackedMatrix& b = back.packed.at(name);
      CHECK(std::ranges::equal(b.bf16_bits(), m.bf16_bits()));
      CHECK(std::ranges::equal(b.int8_values(), m.int8_values()));
      CHECK(std::ranges::equal(b.int8_scales(), m.int8_scales()));
    }
    Decoder a(w, DType::F32, {.batch = 2}), c(back, DType::F32, {.batch = 2});
    const Tensor la = decode_logits(a, ids, 12, 3), lc = decode_logits(c, ids, 12, 3);
    CHECK(std::ranges::equal(la.to_vector(), lc.to_vector()));
    // Written again as f32 (convert of an f32 file): no stale weights metadata.
    DecoderWeights plain = back;
    plain.packed.clear();
    plain.weights = WeightFormat::F32;
    const std::string f32_path = (dir / "again.safetensors").string();
    write_decoder_checkpoint(f32_path, plain);
    CHECK(read_safetensors(f32_path).metadata.at("weights") == "f32");
    CHECK(read_safetensors(f32_path).at("tok_emb.weight").dtype == "F32");
  }
}

TEST_CASE("a malformed int8 or bf16 decoder file is refused with one message") {
  const fs::path dir = scratch_dir("malformed");
  const ModelConfig config = small_config({.attention = "gqa"});
  const auto model = random_model(config, DType::F32, 5);
  const DecoderWeights w = packed_weights(*model, WeightFormat::Int8);
  const std::string good = (dir / "good.safetensors").string();
  write_decoder_checkpoint(good, w);
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  // Truncated: the data runs out before the header's offsets.
  const std::string cut = (dir / "cut.safetensors").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 100);
  const std::string msg = error_of([&] { read_decoder_weights(cut); });
  CHECK(contains(msg, cut));
  CHECK(msg.find('\n') == std::string::npos);

  // A scale missing, or an int8 norm, by rewriting the tensors.
  auto rewrite = [&](const std::string& name, auto edit) {
    std::vector<std::pair<std::string, SafetensorsValue>> values;
    const SafetensorsFile file = read_safetensors(good);
    for (const SafetensorsEntry& e : file.entries)
      values.emplace_back(
          e.name,
          RawArray{.dtype = e.dtype, .shape = e.shape, .bytes = {e.bytes.begin(), e.bytes.end()}});
    edit(values);
    const std::string path = (dir / name).string();
    write_safetensors_values(path, values, file.metadata);
    return error_of([&] { read_decoder_weights(path); });
  };
  CHECK(contains(rewrite("no_scale.safetensors",
                         [](auto& values) {
                           std::erase_if(values, [](const auto& v) {
                             return v.first == "layers.1.ffn.w_up.weight_scale";
                           });
                         }),
                 "missing tensor layers.1.ffn.w_up.weight_scale (the scales of the int8 matrix "
                 "layers.1.ffn.w_up.weight)"));
  CHECK(contains(rewrite("int8_norm.safetensors",
                         [](auto& values) {
                           for (auto& [name, v] : values)
                             if (name == "norm.weight") {
                               RawArray& r = std::get<RawArray>(v);
                               r.dtype = "I8";
                               r.bytes.resize(r.bytes.size() / 4);
                             }
                         }),
                 "tensor norm.weight is I8, but only the matrices of a decoder may be"));
  CHECK(contains(rewrite("bad_scale.safetensors",
                         [](auto& values) {
                           for (auto& [name, v] : values)
                             if (name == "layers.0.attn.wo.weight_scale") {
                               RawArray& r = std::get<RawArray>(v);
                               const float nan = std::numeric_limits<float>::quiet_NaN();
                               std::memcpy(r.bytes.data(), &nan, 4);
                             }
                         }),
                 "tensor layers.0.attn.wo.weight: int8 matrix: a scale is nan"));
  // Scales cut short: a tensor of fewer rows than its matrix.
  const std::string truncated = rewrite("short_scales.safetensors", [](auto& values) {
    for (auto& [name, v] : values)
      if (name == "layers.0.attn.wo.weight_scale") {
        RawArray& r = std::get<RawArray>(v);
        r.shape[0] -= 1;
        r.bytes.resize(r.bytes.size() - 4 * static_cast<size_t>(r.shape[1]));
      }
  });
  CHECK(contains(truncated, "layers.0.attn.wo.weight_scale"));
  CHECK(contains(truncated, "the int8 matrix layers.0.attn.wo.weight needs F32"));
  CHECK(truncated.find('\n') == std::string::npos);
}

TEST_CASE("a batch of sequences samples what each samples alone, every variant and format") {
  // Every weight format, with an f32 and with a bf16 KV cache.
  for (const Variant& v :
       {Variant{.attention = "mha"}, Variant{.attention = "mla"},
        Variant{.attention = "gqa", .moe = true}, Variant{.attention = "mqa", .ffn = "relu"}}) {
    CAPTURE(v.name());
    const ModelConfig config = small_config(v);  // max_seq_len 12: the window slides
    const auto model = random_model(config, DType::F32, 21);
    for (WeightFormat f : {WeightFormat::F32, WeightFormat::BF16, WeightFormat::Int8})
      for (KvCacheFormat kv : {KvCacheFormat::F32, KvCacheFormat::BF16}) {
        CAPTURE(weight_format_name(f));
        CAPTURE(kv_cache_format_name(kv));
        const DecoderWeights w = packed_weights(*model, f);
        const std::vector<int32_t> prompt = random_ids(5, config.vocab_size, 4);
        const GenerateOptions g{.max_new_tokens = 20, .sampling = {}, .seed = 40, .slide = true};
        Decoder batch(w, DType::F32, {.batch = 4, .kv_cache = kv});
        const std::vector<GenerateResult> together = generate_batch(batch, prompt, g);
        REQUIRE(together.size() == 4);
        CHECK(together[0].slides >= 1);
        Decoder one(w, DType::F32, {.batch = 1, .kv_cache = kv});
        for (int64_t b = 0; b < 4; ++b) {
          GenerateOptions gb = g;
          gb.seed = g.seed + static_cast<uint64_t>(b);
          CHECK(generate(one, prompt, gb).tokens == together[b].tokens);
        }
        CHECK(together[0].tokens != together[1].tokens);
      }
  }
}

}  // namespace attnlab
