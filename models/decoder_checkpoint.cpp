#include "attnlab/models/decoder_checkpoint.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "attnlab/autograd/variable.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/tensor/ops.hpp"

namespace attnlab {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "layers.3.attn.w_uq.weight" → "layers.3.attn."
std::string prefix_of(const std::string& name, const std::string& leaf) {
  return name.substr(0, name.size() - leaf.size());
}

// The metadata a decoder file carries over from its source: all but the
// config, the format and the training state.
std::map<std::string, std::string> carried_metadata(const std::map<std::string, std::string>& m) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : m)
    if (key != "config" && key != "format" && key != "weights" && key.rfind("weights.", 0) != 0 &&
        key.rfind("train.", 0) != 0)
      out[key] = value;
  return out;
}

// Little-endian bytes of stored values, for write_safetensors_values.
RawArray bf16_array(const PackedMatrix& m) {
  RawArray a{.dtype = "BF16", .shape = {m.rows(), m.cols()}, .bytes = {}};
  a.bytes.reserve(m.bf16_bits().size() * 2);
  for (uint16_t v : m.bf16_bits()) {
    a.bytes.push_back(static_cast<uint8_t>(v & 0xff));
    a.bytes.push_back(static_cast<uint8_t>(v >> 8));
  }
  return a;
}
RawArray int8_array(const PackedMatrix& m) {
  RawArray a{.dtype = "I8", .shape = {m.rows(), m.cols()}, .bytes = {}};
  for (int8_t v : m.int8_values()) a.bytes.push_back(static_cast<uint8_t>(v));
  return a;
}
Tensor int8_scales(const PackedMatrix& m) {
  const auto s = m.int8_scales();
  Tensor t = Tensor::empty({m.rows(), PackedMatrix::groups(m.cols())}, DType::F32);
  std::copy(s.begin(), s.end(), t.data<float>());
  return t;
}

std::string scale_name(const std::string& name) {
  return name + "_scale";
}

// A matrix of a decoder file stored as BF16 or I8 (+ its scales), packed as
// stored; nullopt for F32/F64.
std::optional<PackedMatrix> packed_entry(const SafetensorsFile& file, const SafetensorsEntry& e,
                                         const std::string& path) {
  if (e.dtype != "BF16" && e.dtype != "I8") return std::nullopt;
  ATTN_CHECK(is_packed_in_decoder(e.name, e.shape),
             "{}: tensor {} is {}, but only the matrices of a decoder may be (norms, biases and "
             "routers are F32)",
             path, e.name, e.dtype);
  const int64_t rows = e.shape[0], cols = e.shape[1];
  if (e.dtype == "BF16") {
    std::vector<uint16_t> bits(e.bytes.size() / 2);
    for (size_t i = 0; i < bits.size(); ++i)
      bits[i] = static_cast<uint16_t>(e.bytes[2 * i] | (e.bytes[2 * i + 1] << 8));
    return PackedMatrix::from_bf16(rows, cols, bits);
  }
  const std::string sn = scale_name(e.name);
  const SafetensorsEntry* scales = file.find(sn);
  ATTN_CHECK(scales != nullptr, "{}: missing tensor {} (the scales of the int8 matrix {})", path,
             sn, e.name);
  const Shape want{rows, PackedMatrix::groups(cols)};
  ATTN_CHECK(scales->shape == want && scales->dtype == "F32",
             "{}: tensor {} is {} {}, the int8 matrix {} needs F32 {} (one scale per group of {} "
             "columns)",
             path, sn, scales->dtype, shape_str(scales->shape), e.name, shape_str(want),
             kInt8GroupSize);
  const Tensor s = checkpoint_tensor(*scales, DType::F32, path);
  std::vector<int8_t> q(e.bytes.size());
  std::memcpy(q.data(), e.bytes.data(), q.size());
  try {
    return PackedMatrix::from_int8(rows, cols, q,
                                   std::span<const float>(s.data<float>(), s.numel()));
  } catch (const Error& err) {
    throw Error(fmt::format("{}: tensor {}: {}", path, e.name, err.what()));
  }
}

}  // namespace

bool is_packed_in_decoder(const std::string& name, const Shape& shape) {
  return shape.size() == 2 && !ends_with(name, ".moe.router.weight");
}

void pack_decoder_weights(DecoderWeights& weights, WeightFormat format) {
  weights.weights = format;
  weights.packed.clear();
  if (format == WeightFormat::F32) return;
  for (auto& [name, t] : weights.tensors) {
    if (!is_packed_in_decoder(name, t.shape())) continue;
    PackedMatrix p = PackedMatrix::pack(t, format);
    t = p.unpack(t.dtype());
    weights.packed.emplace(name, std::move(p));
  }
}

double decoder_check_tolerance(WeightFormat format, bool moe) {
  const double moe_factor = moe ? 1.5 : 1;
  switch (format) {
    case WeightFormat::F32:
      return 1e-4;
    case WeightFormat::BF16:
      return 2e-2 * moe_factor;
    case WeightFormat::Int8:
      return 1e-1 * moe_factor;
  }
  return 1e-4;
}
double decoder_values_tolerance(WeightFormat format, bool moe) {
  return format == WeightFormat::Int8 ? (moe ? 7.5e-2 : 5e-2) : 1e-4;
}

const Tensor& DecoderWeights::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  throw Error(fmt::format("{}: no decoder tensor {}", source, name));
}

std::string DecoderWeights::meta(const std::string& key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? "" : it->second;
}

std::vector<std::pair<std::string, Shape>> decoder_parameter_shapes(const ModelConfig& c) {
  std::vector<std::pair<std::string, Shape>> out;
  const bool mla = c.attention == AttentionKind::MLA;
  const int64_t H = c.n_heads, D = c.d_model, d_c = c.kv_lora_rank, d_cq = c.q_lora_rank;
  for (auto& [name, shape] : c.parameter_shapes()) {
    if (mla && name.rfind("layers.", 0) == 0) {
      if (ends_with(name, ".attn.w_uq.weight")) {
        out.emplace_back(prefix_of(name, "w_uq.weight") + "w_uq_uk.weight", Shape{H * d_c, d_cq});
        continue;
      }
      if (ends_with(name, ".attn.wo.weight")) {
        out.emplace_back(prefix_of(name, "wo.weight") + "wo_uv.weight", Shape{D, H * d_c});
        continue;
      }
      if (ends_with(name, ".attn.w_uk.weight") || ends_with(name, ".attn.w_uv.weight")) continue;
    }
    out.emplace_back(name, shape);
  }
  return out;
}

DecoderWeights absorb_weights(const ModelConfig& config,
                              const std::vector<std::pair<std::string, Tensor>>& parameters,
                              DType dtype, const std::string& what) {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : parameters) by_name[name] = &t;
  std::map<std::string, Shape> spec;
  for (const auto& [name, shape] : config.parameter_shapes()) spec[name] = shape;
  // A training parameter, checked, in f64.
  auto param = [&](const std::string& name) {
    auto it = by_name.find(name);
    ATTN_CHECK(it != by_name.end(), "{}: missing tensor {}", what, name);
    ATTN_CHECK(it->second->shape() == spec.at(name),
               "{}: tensor {} has shape {}, the config needs {}", what, name,
               shape_str(it->second->shape()), shape_str(spec.at(name)));
    return it->second->to(DType::F64);
  };
  const int64_t H = config.n_heads, dh = config.head_dim, d_c = config.kv_lora_rank;
  DecoderWeights w;
  w.config = config;
  w.source = what;
  w.converted = true;
  for (const auto& [name, shape] : decoder_parameter_shapes(config)) {
    Tensor t;
    if (ends_with(name, ".attn.w_uq_uk.weight")) {
      // Head h: W_uk,hᵀ · W_uq,h  [d_c, dh]·[dh, d_cq] → [d_c, d_cq]
      const std::string p = prefix_of(name, "w_uq_uk.weight");
      const Tensor w_uq = param(p + "w_uq.weight"), w_uk = param(p + "w_uk.weight");
      t = Tensor::empty(shape, DType::F64);
      for (int64_t h = 0; h < H; ++h)
        t.narrow(0, h * d_c, d_c)
            .copy_(matmul(w_uk.narrow(0, h * dh, dh).transpose(0, 1), w_uq.narrow(0, h * dh, dh)));
    } else if (ends_with(name, ".attn.wo_uv.weight")) {
      // Head h: wo_h · W_uv,h  [D, dh]·[dh, d_c] → [D, d_c]
      const std::string p = prefix_of(name, "wo_uv.weight");
      const Tensor wo = param(p + "wo.weight"), w_uv = param(p + "w_uv.weight");
      t = Tensor::empty(shape, DType::F64);
      for (int64_t h = 0; h < H; ++h)
        t.narrow(1, h * d_c, d_c)
            .copy_(matmul(wo.narrow(1, h * dh, dh), w_uv.narrow(0, h * dh, dh)));
    } else {
      t = param(name);
    }
    w.tensors.emplace_back(name, t.to(dtype));
  }
  return w;
}

DecoderWeights absorb_weights(const LanguageModel& model, DType dtype) {
  std::vector<std::pair<std::string, Tensor>> params;
  for (const auto& [name, p] : model.named_parameters()) params.emplace_back(name, p.value());
  return absorb_weights(model.config(), params, dtype, "model");
}

DecoderWeights decoder_weights_from_file(const SafetensorsFile& file, DType dtype) {
  const std::string& path = file.what;
  auto format_it = file.metadata.find("format");
  const std::string format = format_it == file.metadata.end() ? "" : format_it->second;
  if (format != kDecoderFormat) {
    // A training (or plain spec) checkpoint: read it as such and absorb.
    const Checkpoint ck = read_checkpoint(file, DType::F64);
    DecoderWeights w = absorb_weights(ck.config, ck.parameters, dtype, path);
    w.metadata = carried_metadata(ck.metadata);
    return w;
  }
  auto config_it = file.metadata.find("config");
  ATTN_CHECK(config_it != file.metadata.end(),
             "{}: no model config: a checkpoint holds its config as JSON under the key 'config' "
             "of __metadata__",
             path);
  DecoderWeights w;
  w.config = config_from_json(config_it->second, path + ": config");
  // The config comes from the file too: before listing the decoder form's
  // tensors (a string each), check that the file lists enough of them. Every
  // layer has at least one tensor per expert, so a config of a billion layers
  // in a small file is refused here, at once.
  const ModelConfig& c = w.config;
  const double min_tensors =
      static_cast<double>(c.n_layers) * static_cast<double>(1 + c.n_experts + c.n_shared_experts);
  ATTN_CHECK(min_tensors <= static_cast<double>(file.entries.size()),
             "{}: its config declares {} layers{}, more tensors than the file's {}", path,
             c.n_layers, c.is_moe() ? fmt::format(" of {} experts", c.n_experts) : "",
             file.entries.size());
  w.source = path;
  w.metadata = carried_metadata(file.metadata);
  std::set<std::string> expected;
  for (const auto& [name, shape] : decoder_parameter_shapes(w.config)) {
    const SafetensorsEntry* e = file.find(name);
    ATTN_CHECK(e != nullptr, "{}: missing tensor {} (shape {}) of the decoder form", path, name,
               shape_str(shape));
    ATTN_CHECK(e->shape == shape, "{}: tensor {} has shape {}, the config needs {}", path, name,
               shape_str(e->shape), shape_str(shape));
    std::optional<PackedMatrix> p = packed_entry(file, *e, path);
    expected.insert(name);
    if (!p) {
      w.tensors.emplace_back(name, checkpoint_tensor(*e, dtype, path));
      continue;
    }
    if (p->format() == WeightFormat::Int8) expected.insert(scale_name(name));
    w.weights = p->format();
    w.tensors.emplace_back(name, p->unpack(dtype));
    w.packed.emplace(name, std::move(*p));
  }
  for (const SafetensorsEntry& e : file.entries)
    ATTN_CHECK(expected.count(e.name),
               "{}: unknown tensor {} (not in the decoder form of its config)", path, e.name);
  return w;
}

DecoderWeights read_decoder_weights(const std::string& path, DType dtype) {
  return decoder_weights_from_file(read_safetensors(path), dtype);
}

void write_decoder_checkpoint(const std::string& path, const DecoderWeights& weights,
                              const std::map<std::string, std::string>& extra) {
  std::vector<std::pair<std::string, SafetensorsValue>> values;
  for (const auto& [name, t] : weights.tensors) {
    auto it = weights.packed.find(name);
    if (it == weights.packed.end() || it->second.format() == WeightFormat::F32) {
      values.emplace_back(name, t.to(DType::F32));
    } else if (it->second.format() == WeightFormat::BF16) {
      values.emplace_back(name, bf16_array(it->second));
    } else {
      values.emplace_back(name, int8_array(it->second));
      values.emplace_back(scale_name(name), int8_scales(it->second));
    }
  }
  std::map<std::string, std::string> meta = weights.metadata;
  for (const auto& [key, value] : extra) meta[key] = value;
  meta["config"] = config_to_json(weights.config);
  meta["format"] = kDecoderFormat;
  meta["weights"] = std::string(weight_format_name(weights.weights));
  if (weights.weights == WeightFormat::Int8)
    meta["weights.group_size"] = std::to_string(kInt8GroupSize);
  write_safetensors_values(path, values, meta);
}

namespace {

// The random prompt of the checks: B=2 sequences of up to 24 tokens, the
// first half prefilled, the rest decoded one step at a time.
struct CheckPrompt {
  DecoderAgreement dims;
  std::vector<int32_t> ids;
};
CheckPrompt check_prompt(const ModelConfig& c, uint64_t seed) {
  CheckPrompt p;
  p.dims.batch = 2;
  p.dims.seq_len = std::min<int64_t>(c.max_seq_len, 24);
  p.dims.prefill_tokens = std::max<int64_t>(1, p.dims.seq_len / 2);
  Rng rng(seed);
  p.ids.resize(p.dims.batch * p.dims.seq_len);
  for (int32_t& id : p.ids) id = static_cast<int32_t>(rng.below(c.vocab_size));
  return p;
}

Tensor decoded(const DecoderWeights& weights, DType dtype, const CheckPrompt& p) {
  // A cache of the check's length, not of max_seq_len (which a config may set
  // to billions of positions).
  Decoder decoder(weights, dtype, {.batch = p.dims.batch, .max_len = p.dims.seq_len});
  return decode_logits(decoder, p.ids, p.dims.seq_len, p.dims.prefill_tokens);
}

// A MoE's check prompt decoded one sequence at a time (batch 1, the same
// prefill and steps), keeping the k experts each layer chose at each
// position: routing[l] is [B, T, k].
struct RoutedLogits {
  Tensor logits;  // [B, T, V]
  std::vector<std::vector<int32_t>> routing;
};
RoutedLogits decoded_alone(const DecoderWeights& weights, DType dtype, const CheckPrompt& p) {
  const ModelConfig& c = weights.config;
  const int64_t B = p.dims.batch, T = p.dims.seq_len;
  RoutedLogits r{.logits = Tensor::empty({B, T, c.vocab_size}, dtype),
                 .routing = std::vector<std::vector<int32_t>>(c.n_layers)};
  Decoder decoder(weights, dtype, {.batch = 1, .max_len = T, .record_attention = true});
  for (int64_t b = 0; b < B; ++b) {
    const std::span<const int32_t> ids(p.ids.data() + b * T, T);
    r.logits.select(0, b).copy_(decode_logits(decoder, ids, T, p.dims.prefill_tokens).select(0, 0));
    for (int64_t l = 0; l < c.n_layers; ++l) {
      const std::vector<int32_t>& chosen = decoder.routing_record(l);
      r.routing[l].insert(r.routing[l].end(), chosen.begin(), chosen.begin() + T * c.top_k);
    }
  }
  return r;
}

// Compares a MoE decoder's logits and routing with a reference's. A
// position agrees when every layer chose the same k experts (as a set) in
// both. The logits are compared on each sequence's positions before its
// first disagreement: a token routed elsewhere changes its own logits and,
// through the KV cache, those of every later position, by an amount that no
// tolerance of rounding bounds; the positions before it see none of it.
void compare_routed(const RoutedLogits& got, const RoutedLogits& ref, int64_t k,
                    RoutingAgreement& agreement, double& error) {
  const int64_t B = got.logits.size(0), T = got.logits.size(1);
  agreement = RoutingAgreement{.positions = B * T};
  error = 0;
  std::vector<int32_t> x(k), y(k);
  auto same_experts = [&](int64_t l, int64_t i) {  // layer l, row i = b·T + t
    std::copy_n(got.routing[l].begin() + i * k, k, x.begin());
    std::copy_n(ref.routing[l].begin() + i * k, k, y.begin());
    std::ranges::sort(x);
    std::ranges::sort(y);
    return x == y;
  };
  for (int64_t b = 0; b < B; ++b) {
    int64_t first = T;  // the sequence's first position that disagrees
    for (int64_t t = 0; t < T; ++t) {
      int64_t layer = -1;
      for (int64_t l = 0; l < static_cast<int64_t>(got.routing.size()) && layer < 0; ++l)
        if (!same_experts(l, b * T + t)) layer = l;
      if (layer < 0) {
        ++agreement.agreeing;
      } else if (first == T) {
        first = t;
        if (agreement.sequence < 0)
          agreement.sequence = b, agreement.position = t, agreement.layer = layer;
      }
    }
    agreement.compared += first;
    if (first > 0)
      error = std::max(error, logits_relative_error(got.logits.select(0, b).narrow(0, 0, first),
                                                    ref.logits.select(0, b).narrow(0, 0, first)));
  }
}

}  // namespace

DecoderAgreement check_decoder_agreement(const LanguageModel& model, const DecoderWeights& weights,
                                         uint64_t seed, double tolerance) {
  const CheckPrompt p = check_prompt(model.config(), seed);
  DecoderAgreement a = p.dims;
  a.tolerance = tolerance;
  Tensor expected;
  {
    NoGradGuard no_grad;
    expected = model.forward(p.ids, a.batch, a.seq_len).logits.value();
  }
  a.max_relative_error = logits_relative_error(decoded(weights, model.dtype(), p), expected);
  ATTN_CHECK(a.max_relative_error <= tolerance,
             "decoder and training forward disagree: the largest difference of logits is {:.3g} "
             "of the logits' size (tolerance {:.1g}), on a random prompt of B={} × T={} ({} "
             "tokens prefilled, then steps)",
             a.max_relative_error, tolerance, a.batch, a.seq_len, a.prefill_tokens);
  return a;
}

PackedAgreement check_packed_decoder(const LanguageModel& model, const DecoderWeights& packed,
                                     uint64_t seed) {
  const ModelConfig& c = model.config();
  const CheckPrompt p = check_prompt(c, seed);
  PackedAgreement a;
  a.format = packed.weights;
  a.tolerance = decoder_values_tolerance(packed.weights, c.is_moe());
  a.rounding_tolerance = decoder_check_tolerance(packed.weights, c.is_moe());
  const std::string name(weight_format_name(packed.weights));
  // The same values in f64, as plain tensors.
  DecoderWeights wide = packed;
  wide.packed.clear();
  for (auto& [n, t] : wide.tensors) t = t.to(DType::F64);
  if (!c.is_moe()) {
    const Tensor got = decoded(packed, DType::F32, p);
    a.max_relative_error = logits_relative_error(got, decoded(wide, DType::F64, p));
    Tensor expected;
    {
      NoGradGuard no_grad;
      expected = model.forward(p.ids, p.dims.batch, p.dims.seq_len).logits.value();
    }
    a.rounding_error = logits_relative_error(got, expected);
  } else {
    // Check 2's reference is the f32 decoder of the model's own weights: it
    // records its routing, and convert has checked it against the training
    // forward (to 1e-4) before this.
    const RoutedLogits got = decoded_alone(packed, DType::F32, p);
    compare_routed(got, decoded_alone(wide, DType::F64, p), c.top_k, a.routing,
                   a.max_relative_error);
    compare_routed(got, decoded_alone(absorb_weights(model, DType::F32), DType::F32, p), c.top_k,
                   a.rounding_routing, a.rounding_error);
  }
  auto check_routing = [&](const RoutingAgreement& r, const std::string& reference) {
    ATTN_CHECK(r.agreeing >= r.needed(),
               "the {} decoder routes tokens to other experts than {} at {} of the check's {} "
               "positions (at most {} may differ; the first: position {} of sequence {}, layer {})",
               name, reference, r.positions - r.agreeing, r.positions, r.positions - r.needed(),
               r.position, r.sequence, r.layer);
  };
  check_routing(a.routing, "an f64 decoder of its stored values");
  ATTN_CHECK(a.max_relative_error <= a.tolerance,
             "the {} decoder does not compute with its stored values: its logits differ from an "
             "f64 decoder of the same values by {:.3g} of their size (tolerance {:.1g})",
             name, a.max_relative_error, a.tolerance);
  check_routing(a.rounding_routing, "the f32 decoder");
  ATTN_CHECK(a.rounding_error <= a.rounding_tolerance,
             "the {} decoder strays too far from the training forward: the largest difference "
             "of logits is {:.3g} of the logits' size (tolerance {:.1g} for {} weights)",
             name, a.rounding_error, a.rounding_tolerance, name);
  return a;
}

DecoderAgreement convert_checkpoint(const std::string& in, const std::string& out, uint64_t seed,
                                    double tolerance, WeightFormat format,
                                    PackedAgreement* packed_check,
                                    const std::function<void(const std::string&)>& on_phase) {
  auto phase = [&](const std::string& what) {
    if (on_phase) on_phase(what);
  };
  if (tolerance == 0) tolerance = 1e-4;
  const SafetensorsFile file = read_safetensors(in);
  auto format_it = file.metadata.find("format");
  ATTN_CHECK(format_it == file.metadata.end() || format_it->second != kDecoderFormat,
             "{}: is already a decoder checkpoint; convert needs a training checkpoint", in);
  const Checkpoint ck = read_checkpoint(file, DType::F64);
  DecoderWeights weights = absorb_weights(ck.config, ck.parameters, DType::F32, in);
  weights.metadata = carried_metadata(ck.metadata);
  // Check in f32, the precision the decoder file holds and decoding runs in.
  const auto model = load_model(ck, DType::F32);
  model->eval();
  phase("checking the decoder against the training forward");
  const DecoderAgreement a = check_decoder_agreement(*model, weights, seed, tolerance);
  std::map<std::string, std::string> meta{
      {"decoder.source", in},
      {"decoder.max_relative_error", fmt::format("{:.3g}", a.max_relative_error)}};
  if (format != WeightFormat::F32) {
    phase(fmt::format("storing the matrices in {} and checking that decoder",
                      weight_format_name(format)));
    pack_decoder_weights(weights, format);
    const PackedAgreement pa = check_packed_decoder(*model, weights, seed);
    meta["decoder.rounding_error"] = fmt::format("{:.3g}", pa.rounding_error);
    if (packed_check) *packed_check = pa;
  }
  phase("writing " + out);
  write_decoder_checkpoint(out, weights, meta);
  return a;
}

}  // namespace attnlab
