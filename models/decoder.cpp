// The KV-cached decoder: the math is in decoder.hpp and models/README.md.
//
// Layout: every activation buffer holds rows = B · chunk tokens, row n = b ·
// len + t for token t of sequence b in the current call of `len` tokens. All
// buffers are allocated in the constructor; prefill and step only index them.
#include "attnlab/models/decoder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "attnlab/nn/moe_routing.hpp"
#include "attnlab/tensor/attention.hpp"
#include "attnlab/tensor/bf16_rows.hpp"
#include "attnlab/tensor/blas.hpp"
#include "attnlab/tensor/packed_matrix.hpp"
#include "attnlab/tensor/rms_norm.hpp"
#include "attnlab/tensor/rope.hpp"
#include "attnlab/tensor/swiglu.hpp"

namespace attnlab {
namespace {

// ---------------------------------------------------------------- weights
// A weight matrix [n, k]. An f32 decoder keeps it packed as stored
// (tensor/packed_matrix.hpp: f32, bf16 or int8); an f64 decoder (the tests')
// keeps the same values widened to f64 in `dense`.
struct Matrix {
  PackedMatrix packed;  // f32 decoder
  Tensor dense;         // f64 decoder
  int64_t rows() const { return dense.defined() ? dense.size(0) : packed.rows(); }
  int64_t cols() const { return dense.defined() ? dense.size(1) : packed.cols(); }
};

struct FfnWeights {
  Matrix w_in;    // swiglu: [w_gate; w_up] [2F, D]; relu: w_up [F, D]
  Tensor b_in;    // relu: [F]
  Matrix w_down;  // [D, F]
  Tensor b_down;  // relu: [D]
};

struct LayerWeights {
  Tensor attn_norm, ffn_norm;  // [D]
  Matrix w_in;     // mha/gqa/mqa: [wq; wk; wv]; mla: [w_dq; w_kr; w_dkv]  (rows stacked)
  Matrix w_q;      // mla: head h's rows are [w_qr,h ; w_uq_uk,h]   [H·(dr + d_c), d_cq]
  Matrix w_out;    // mha/gqa/mqa: wo [D, H·dh]; mla: wo_uv [D, H·d_c]
  FfnWeights ffn;  // dense
  Matrix router;   // MoE [E, D]
  std::vector<FfnWeights> experts, shared;  // MoE
};

// The keys [B, Tk, Hkv, q_dim] and values [B, Tk, Hkv, v_dim] that a layer's
// H query heads read, in place in its cache. C is the cache's element type:
// the decoder's T, or uint16_t (bf16 bits).
template <typename C>
struct KvHeads {
  HeadsView<const C> keys, values;
};

// n numbers of a new token into the cache: copied, or rounded to bf16.
template <typename T, typename C>
void store(C* dst, const T* src, int64_t n) {
  if constexpr (std::is_same_v<T, C>)
    std::memcpy(dst, src, n * sizeof(T));
  else
    round_to_bf16(src, dst, n);
}

// Rows of the given [rows_i, cols] tensors stacked into one contiguous matrix.
Tensor stack_rows(const std::vector<Tensor>& parts, DType dtype) {
  int64_t rows = 0;
  for (const Tensor& p : parts) rows += p.size(0);
  Tensor out = Tensor::empty({rows, parts.front().size(1)}, dtype);
  int64_t at = 0;
  for (const Tensor& p : parts) {
    out.narrow(0, at, p.size(0)).copy_(p);
    at += p.size(0);
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------ Impl
struct Decoder::Impl {
  ModelConfig cfg;
  DType dtype;
  int64_t B = 1, max_len = 0, chunk = 0, chunk_one = 0, pos = 0;
  bool mla = false;
  int64_t D = 0, H = 0, Hkv = 0, V = 0, F = 0, E = 0, top_k = 0;
  int64_t d_cq = 0, d_c = 0, dr = 0;
  int64_t rope_dims = 0;  // mha/gqa/mqa: r of each head; mla: dr
  int64_t in_width = 0;   // columns of x·w_inᵀ
  int64_t q_dim = 0;      // width of one query head: dh, or dr + d_c (mla)
  int64_t v_dim = 0;      // width of one head's attention output: dh, or d_c (mla)
  // Numbers per token in one layer's keys (or values): Hkv·dh, or dr + d_c (mla).
  int64_t cache_width = 0;
  bool cache16 = false;  // DecoderOptions::kv_cache is bf16
  double scale = 1;

  Matrix tok_emb, lm_head_untied;
  const Matrix* lm_head = nullptr;  // &tok_emb when tied
  Tensor final_norm;
  std::vector<LayerWeights> layers;
  // The sequences the current run() feeds: Bn of them from sequence seq0 (all
  // B, or one at a time for prefill_each).
  int64_t Bn = 1, seq0 = 0;
  // Products of a step (one token per sequence) run packed_linear, whose
  // rows do not change each other's bits; a prefill of several tokens runs
  // BLAS gemm, on the unpacked weights.
  bool stepping = false;
  Tensor unpacked;  // f32 scratch for one matrix of a prefill when the weights are not f32
  std::vector<KvCache> kv;
  std::vector<LatentKvCache> latent;
  // The new tokens' keys (mla: cache rows) of one sequence, rotated here
  // before they are stored: [chunk, cache_width].
  Tensor fresh;
  // A bf16 cache: one sequence's cached keys and values widened to f32 for the
  // prefill's fused kernel, [max_len, cache_width] each (mla: keys only).
  Tensor wide_keys, wide_values;

  // Buffers, rows = B · chunk.
  Tensor x, h, proj, q, att, hidden, act;  // residual, normed, projections, attention, FFN
  Tensor router_logits, gates, moe_out, moe_in, moe_y;
  Tensor scores;               // [H, max_len]: one step's attention scores of a group of heads
  Tensor row_scale;            // [H]: 1 / (sum of each row of scores)
  Tensor step_logits, last_h;  // [B, V], [B, D]
  std::vector<int32_t> chunk_ids;
  Tensor router_probs;  // [E]: one token's softmax over all experts
  MoeRouting routing;   // the experts of each row, its vectors reserved once
  // Router statistics since reset, per layer: tokens routed, choices and
  // probability mass per expert.
  std::vector<int64_t> routed;
  std::vector<std::vector<int64_t>> choice_count;
  std::vector<std::vector<double>> prob_sum;
  // DecoderOptions::record_attention: per layer [H, max_len, max_len] and [max_len, k].
  bool record = false;
  int64_t layer_now = 0;  // the layer attention() runs
  std::vector<Tensor> attention_record;
  std::vector<std::vector<int32_t>> routing_record;

  Impl(const DecoderWeights& w, DType dt, const DecoderOptions& o);

  template <typename T>
  void linear(T* out, int64_t ldo, const T* x, int64_t ldx, const Matrix& w, int64_t rows, T beta);
  template <typename T>
  void run(const int32_t* ids, int64_t len);
  template <typename T>
  void attention(int64_t layer, int64_t len);
  template <typename T, typename C>
  void attend_cache(int64_t layer, int64_t len);
  template <typename T, typename C>
  KvHeads<C> append_keys_values(int64_t layer, int64_t len);
  template <typename T, typename C>
  KvHeads<C> append_latents(int64_t layer, int64_t len);
  template <typename T, typename C>
  void attend_one(int64_t b, const KvHeads<C>& kv_heads, int64_t Tk);
  template <typename T>
  void feed_forward(const FfnWeights& f, const T* in, int64_t ld_in, int64_t rows, T* out, T beta);
  template <typename T>
  void mixture(int64_t layer, int64_t rows);
  template <typename T>
  void head_rows(T* out, int64_t ldo, const T* x_rows, int64_t rows);
  void check_room(int64_t tokens, const char* what) const;
  void check_ids(std::span<const int32_t> ids) const;
};

Decoder::Impl::Impl(const DecoderWeights& w, DType dt, const DecoderOptions& o)
    : cfg(w.config), dtype(dt) {
  validate_config(cfg, w.source + ": config");
  ATTN_CHECK(o.batch >= 1, "decoder batch must be ≥ 1, got {}", o.batch);
  ATTN_CHECK(o.max_len >= 0 && o.max_len <= cfg.max_seq_len,
             "decoder max_len must lie in 1 … max_seq_len {} (0: max_seq_len), got {}",
             cfg.max_seq_len, o.max_len);
  ATTN_CHECK(o.prefill_chunk >= 0, "prefill_chunk must be ≥ 0, got {}", o.prefill_chunk);
  // The weights must be exactly the decoder form of this config.
  const auto want = decoder_parameter_shapes(cfg);
  ATTN_CHECK(w.tensors.size() == want.size(), "{}: {} decoder tensors, the config needs {}",
             w.source, w.tensors.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    ATTN_CHECK(w.tensors[i].first == want[i].first && w.tensors[i].second.shape() == want[i].second,
               "{}: decoder tensor {} is {} {}, the config needs {} {}", w.source, i,
               w.tensors[i].first, shape_str(w.tensors[i].second.shape()), want[i].first,
               shape_str(want[i].second));

  ATTN_CHECK(!o.record_attention || o.batch == 1,
             "the decoder records attention for a batch of 1, got {}", o.batch);
  B = o.batch;
  max_len = cfg.resolve_seq_len(o.max_len);  // checked above, with the decoder's own message
  chunk = o.prefill_chunk > 0 ? std::min(o.prefill_chunk, max_len)
                              : std::clamp<int64_t>(4096 / B, 1, max_len);
  mla = cfg.attention == AttentionKind::MLA;
  D = cfg.d_model;
  H = cfg.n_heads;
  Hkv = mla ? 1 : cfg.n_kv_heads;
  V = cfg.vocab_size;
  F = cfg.ffn_hidden;
  E = cfg.n_experts;
  top_k = cfg.is_moe() ? cfg.top_k : 0;
  const int64_t dh = cfg.head_dim;
  d_cq = cfg.q_lora_rank;
  d_c = cfg.kv_lora_rank;
  dr = cfg.rope_head_dim;
  rope_dims = cfg.rope_dims();
  if (mla) {
    in_width = d_cq + dr + d_c;
    q_dim = dr + d_c;
    v_dim = d_c;
    scale = 1.0 / std::sqrt(static_cast<double>(dh + dr));
  } else {
    in_width = (H + 2 * Hkv) * dh;
    q_dim = dh;
    v_dim = dh;
    scale = 1.0 / std::sqrt(static_cast<double>(dh));
  }
  cache_width = mla ? dr + d_c : Hkv * dh;
  cache16 = o.kv_cache == KvCacheFormat::BF16;

  auto get = [&](const std::string& name) { return w.at(name).to(dtype).contiguous(); };
  // A matrix as stored (w.packed) or, for an f32 file, its f32 tensor.
  int64_t largest = 0;  // elements of the largest matrix (the scratch of unpacked)
  auto matrix = [&](const std::string& name) {
    Matrix m;
    if (dtype == DType::F64) {
      m.dense = get(name);
    } else {
      auto it = w.packed.find(name);
      m.packed =
          it != w.packed.end() ? it->second : PackedMatrix::pack(get(name), WeightFormat::F32);
    }
    return m;
  };
  // Rows of matrices (or of row ranges {name, first row, rows}) stacked.
  struct Rows {
    std::string name;
    int64_t begin = 0, count = -1;  // -1: all
  };
  auto stacked = [&](const std::vector<Rows>& parts) {
    Matrix m;
    if (dtype == DType::F64) {
      std::vector<Tensor> ts;
      for (const Rows& r : parts) {
        const Tensor t = get(r.name);
        ts.push_back(r.count < 0 ? t : t.narrow(0, r.begin, r.count));
      }
      m.dense = stack_rows(ts, dtype);
    } else {
      std::vector<PackedMatrix> ps;
      for (const Rows& r : parts) {
        const Matrix whole = matrix(r.name);
        ps.push_back(r.count < 0 ? whole.packed : whole.packed.narrow_rows(r.begin, r.count));
      }
      m.packed = PackedMatrix::stack_rows(ps);
    }
    return m;
  };
  auto note = [&](const Matrix& m) {
    largest = std::max(largest, m.rows() * m.cols());
    return m;
  };
  auto get_ffn = [&](const std::string& p) {
    FfnWeights f;
    if (cfg.ffn == FeedForwardKind::SwiGLU) {
      f.w_in = note(stacked({{p + "w_gate.weight"}, {p + "w_up.weight"}}));
    } else {
      f.w_in = note(matrix(p + "w_up.weight"));
      f.b_in = get(p + "w_up.bias");
      f.b_down = get(p + "w_down.bias");
    }
    f.w_down = note(matrix(p + "w_down.weight"));
    return f;
  };
  tok_emb = matrix("tok_emb.weight");
  final_norm = get("norm.weight");
  if (!cfg.tie_embeddings) lm_head_untied = matrix("lm_head.weight");
  lm_head = cfg.tie_embeddings ? &tok_emb : &lm_head_untied;
  note(*lm_head);
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights l;
    l.attn_norm = get(p + "attn_norm.weight");
    l.ffn_norm = get(p + "ffn_norm.weight");
    if (mla) {
      l.w_in = note(
          stacked({{p + "attn.w_dq.weight"}, {p + "attn.w_kr.weight"}, {p + "attn.w_dkv.weight"}}));
      std::vector<Rows> heads;
      for (int64_t hh = 0; hh < H; ++hh) {
        heads.push_back({p + "attn.w_qr.weight", hh * dr, dr});
        heads.push_back({p + "attn.w_uq_uk.weight", hh * d_c, d_c});
      }
      l.w_q = note(stacked(heads));
      l.w_out = note(matrix(p + "attn.wo_uv.weight"));
      latent.emplace_back(B, max_len, d_c, dr, dtype, o.kv_cache);
    } else {
      l.w_in =
          note(stacked({{p + "attn.wq.weight"}, {p + "attn.wk.weight"}, {p + "attn.wv.weight"}}));
      l.w_out = note(matrix(p + "attn.wo.weight"));
      kv.emplace_back(B, max_len, Hkv, dh, dtype, o.kv_cache);
    }
    if (cfg.is_moe()) {
      l.router = note(matrix(p + "moe.router.weight"));
      for (int64_t e = 0; e < E; ++e)
        l.experts.push_back(get_ffn(p + "moe.experts." + std::to_string(e) + "."));
      for (int64_t s = 0; s < cfg.n_shared_experts; ++s)
        l.shared.push_back(get_ffn(p + "moe.shared." + std::to_string(s) + "."));
    } else {
      l.ffn = get_ffn(p + "ffn.");
    }
    layers.push_back(std::move(l));
  }

  // prefill_each feeds one sequence at a time in chunks of a batch-1 decoder's.
  chunk_one = o.prefill_chunk > 0 ? std::min(o.prefill_chunk, max_len)
                                  : std::clamp<int64_t>(4096, 1, max_len);
  const int64_t rows = std::max(B * chunk, chunk_one);
  bool all_f32 = true;
  for (const auto& [name, m] : w.packed) all_f32 = all_f32 && m.format() == WeightFormat::F32;
  if (dtype == DType::F32 && !all_f32) unpacked = Tensor::empty({largest}, DType::F32);
  x = Tensor::empty({rows, D}, dtype);
  h = Tensor::empty({rows, D}, dtype);
  proj = Tensor::empty({rows, in_width}, dtype);
  q = Tensor::empty({rows, H * q_dim}, dtype);
  att = Tensor::empty({rows, H * v_dim}, dtype);
  hidden = Tensor::empty({rows, cfg.ffn == FeedForwardKind::SwiGLU ? 2 * F : F}, dtype);
  act = Tensor::empty({rows, F}, dtype);
  scores = Tensor::empty({H, max_len}, dtype);
  fresh = Tensor::empty({std::max(chunk, chunk_one), cache_width}, dtype);
  if (cache16) {
    wide_keys = Tensor::empty({max_len, cache_width}, dtype);
    if (!mla) wide_values = Tensor::empty({max_len, cache_width}, dtype);
  }
  row_scale = Tensor::empty({H}, dtype);
  step_logits = Tensor::empty({B, V}, dtype);
  last_h = Tensor::empty({B, D}, dtype);
  chunk_ids.resize(rows);
  record = o.record_attention;
  if (record)
    for (int64_t i = 0; i < cfg.n_layers; ++i) {
      attention_record.push_back(Tensor::zeros({H, max_len, max_len}, dtype));
      routing_record.emplace_back(cfg.is_moe() ? max_len * top_k : 0, -1);
    }
  if (cfg.is_moe()) {
    router_logits = Tensor::empty({rows, E}, dtype);
    gates = Tensor::empty({rows, top_k}, dtype);
    moe_out = Tensor::empty({rows, D}, dtype);
    moe_in = Tensor::empty({rows, D}, dtype);
    moe_y = Tensor::empty({rows, D}, dtype);
    router_probs = Tensor::empty({E}, dtype);
    routing.chosen.reserve(rows * top_k);
    routing.order.reserve(E);
    routing.tokens_of.resize(E);
    routing.choices_of.resize(E);
    for (int64_t e = 0; e < E; ++e) {
      routing.tokens_of[e].reserve(rows);
      routing.choices_of[e].reserve(rows);
    }
    routed.assign(cfg.n_layers, 0);
    choice_count.assign(cfg.n_layers, std::vector<int64_t>(E, 0));
    prob_sum.assign(cfg.n_layers, std::vector<double>(E, 0.0));
  }
}

void Decoder::Impl::check_room(int64_t tokens, const char* what) const {
  if (pos + tokens <= max_len) return;
  const std::string limit =
      max_len == cfg.max_seq_len
          ? fmt::format("the model's max_seq_len {}", cfg.max_seq_len)
          : fmt::format("this decoder's max_len {} (max_seq_len {})", max_len, cfg.max_seq_len);
  throw Error(fmt::format(
      "{}: the context is full: {} cached tokens + {} new would need position {}, but positions "
      "must stay below {} (start again with reset(), or slide the window: attnlab sample --slide)",
      what, pos, tokens, pos + tokens - 1, limit));
}

void Decoder::Impl::check_ids(std::span<const int32_t> ids) const {
  for (size_t i = 0; i < ids.size(); ++i)
    ATTN_CHECK(ids[i] >= 0 && ids[i] < V,
               "token id {} (index {}) is outside the vocabulary [0, {})", ids[i], i, V);
}

// ------------------------------------------------------------- products
// out [rows, n] (row stride ldo) = x [rows, k] (row stride ldx) · w [n, k]ᵀ
// (+ out when beta = 1): a Linear layer. A step's products run packed_linear
// on the stored format (a row's bits do not depend on the other rows, so a
// sequence decodes to the same bits alone or in a batch); a prefill's run
// blas::gemm (tensor/blas.hpp), on f32 weights in place or on the matrix
// unpacked into a scratch (one pass over it, small next to the product),
// except int8's, which run packed_linear too: the int8 product rounds the
// activations as well, and a prefill must compute what the steps compute.
template <typename T>
void Decoder::Impl::linear(T* out, int64_t ldo, const T* x_rows, int64_t ldx, const Matrix& w,
                           int64_t rows, T beta) {
  if constexpr (std::is_same_v<T, double>) {
    blas::gemm<T>(false, true, rows, w.rows(), w.cols(), T(1), x_rows, ldx, w.dense.data<T>(),
                  w.cols(), beta, out, ldo);
  } else {
    const PackedMatrix& p = w.packed;
    // int8 always: its product quantizes x as well (packed_matrix.hpp), and
    // a prefill (or eval's teacher-forced pass) must round as the steps do.
    if (stepping || p.format() == WeightFormat::Int8)
      return packed_linear(out, ldo, x_rows, ldx, rows, p, beta);
    const float* wp = p.f32_values().data();
    if (p.format() != WeightFormat::F32) {
      p.unpack_into(unpacked.data<float>());
      wp = unpacked.data<float>();
    }
    blas::gemm<T>(false, true, rows, p.rows(), p.cols(), T(1), x_rows, ldx, wp, p.cols(), beta, out,
                  ldo);
  }
}

// ----------------------------------------------------------- the forward
// Feeds ids [Bn, len] of sequences seq0 … seq0 + Bn − 1 at positions pos …
// pos + len − 1 through every layer; leaves the residual stream in x. Does
// not advance pos.
template <typename T>
void Decoder::Impl::run(const int32_t* ids, int64_t len) {
  const int64_t rows = Bn * len;
  stepping = len == 1;
  T* xp = x.data<T>();
  T* hp = h.data<T>();
  for (int64_t n = 0; n < rows; ++n) {
    if constexpr (std::is_same_v<T, double>)
      std::memcpy(xp + n * D, tok_emb.dense.data<T>() + ids[n] * D, D * sizeof(T));
    else
      tok_emb.packed.unpack_row(ids[n], xp + n * D);
  }
  const T eps = static_cast<T>(cfg.norm_eps);
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    const LayerWeights& l = layers[i];
    rms_norm_forward<T>(hp, nullptr, xp, l.attn_norm.data<T>(), rows, D, eps);
    attention<T>(i, len);  // x += Attn(h)
    rms_norm_forward<T>(hp, nullptr, xp, l.ffn_norm.data<T>(), rows, D, eps);
    if (cfg.is_moe())
      mixture<T>(i, rows);  // x += MoE(h)
    else
      feed_forward<T>(l.ffn, hp, D, rows, xp, T(1));  // x += FFN(h)
  }
}

// x += Attn_layer(h) for the rows of len tokens per sequence.
//
// Every variant runs as grouped-query attention of H query heads (q_dim wide)
// over Hkv KV heads read in place in the cache. mha/gqa/mqa: the cached k and
// v (append_keys_values). mla: multi-query attention over the latent
// (append_latents).
template <typename T>
void Decoder::Impl::attention(int64_t layer, int64_t len) {
  const LayerWeights& l = layers[layer];
  const int64_t rows = Bn * len;
  layer_now = layer;
  linear<T>(proj.data<T>(), in_width, h.data<T>(), D, l.w_in, rows, T(0));
  if constexpr (std::is_same_v<T, float>) {
    if (cache16)
      attend_cache<T, uint16_t>(layer, len);
    else
      attend_cache<T, T>(layer, len);
  } else {
    attend_cache<T, T>(layer, len);  // a bf16 cache refuses other dtypes (CacheBuffer)
  }
  linear<T>(x.data<T>(), D, att.data<T>(), H * v_dim, l.w_out, rows, T(1));  // x += o·w_outᵀ
}

// att = the attention of the len new tokens of each sequence (their queries
// in q) over the cache, once their keys and values are appended to it.
// A cache of C = bf16 is read as it is stored: a step widens it in registers
// (tensor/bf16_rows.hpp); a prefill widens each sequence's cached tokens into
// f32 scratch for the fused kernel (exactly: the same numbers the steps see).
template <typename T, typename C>
void Decoder::Impl::attend_cache(int64_t layer, int64_t len) {
  const int64_t Tk = pos + len;
  const KvHeads<C> kv_heads =
      mla ? append_latents<T, C>(layer, len) : append_keys_values<T, C>(layer, len);
  if (len == 1) {
    for (int64_t b = 0; b < Bn; ++b) attend_one<T, C>(b, kv_heads, Tk);
    return;
  }
  // The fused causal kernel: the len new tokens are the last queries of Tk.
  AttentionDims dims{.batch = Bn,
                     .q_len = len,
                     .kv_len = Tk,
                     .heads = H,
                     .kv_heads = Hkv,
                     .qk_dim = q_dim,
                     .v_dim = v_dim};
  const HeadsView<const T> queries{q.data<T>(), len * H * q_dim, H * q_dim, q_dim};
  const HeadsView<T> out{att.data<T>(), len * H * v_dim, H * v_dim, v_dim};
  if constexpr (std::is_same_v<T, C>) {
    attention_forward<T>(out, nullptr, queries, kv_heads.keys, kv_heads.values, dims,
                         static_cast<T>(scale));
  } else {
    // One sequence at a time: its Tk cached tokens widened (contiguous rows
    // of cache_width), then the kernel with a batch of 1.
    dims.batch = 1;
    const auto widen = [&](const HeadsView<const C>& cached, int64_t b, Tensor& wide) {
      const C* first = cached.data + b * cached.batch_stride;
      widen_bf16(first, wide.data<T>(), Tk * cache_width);
      return HeadsView<const T>{wide.data<T>(), Tk * cache_width, cached.token_stride,
                                cached.head_stride};
    };
    for (int64_t b = 0; b < Bn; ++b) {
      const HeadsView<const T> keys = widen(kv_heads.keys, b, wide_keys);
      // mla: the values are the last d_c numbers of the rows just widened.
      const HeadsView<const T> values =
          mla ? HeadsView<const T>{keys.data + dr, keys.batch_stride, keys.token_stride,
                                   keys.head_stride}
              : widen(kv_heads.values, b, wide_values);
      const HeadsView<const T> qb{queries.data + b * queries.batch_stride, queries.batch_stride,
                                  queries.token_stride, queries.head_stride};
      const HeadsView<T> ob{out.data + b * out.batch_stride, out.batch_stride, out.token_stride,
                            out.head_stride};
      attention_forward<T>(ob, nullptr, qb, keys, values, dims, static_cast<T>(scale));
    }
  }
}

// mha/gqa/mqa: proj rows are [q (H·dh) | k (Hkv·dh) | v (Hkv·dh)]. Copies q
// into the queries, rotates q and k at their positions, appends k and v to
// the cache; the KV heads are the cache's Hkv heads. Keys are rotated before
// they are stored, so a bf16 cache rounds the rotated key (RoPE after the
// rounding would rotate a rounded key: another number).
template <typename T, typename C>
KvHeads<C> Decoder::Impl::append_keys_values(int64_t layer, int64_t len) {
  const KvCache& cache = kv[layer];
  const T* pp = proj.data<T>();
  T* qp = q.data<T>();
  T* kp = fresh.data<T>();
  const int64_t dh = q_dim, kw = Hkv * dh;
  const RopeDims query_rope{.batch = Bn,
                            .tokens = len,
                            .heads = H,
                            .head_dim = dh,
                            .rotary_dims = rope_dims,
                            .theta = cfg.rope_theta,
                            .position_offset = pos};
  RopeDims key_rope = query_rope;  // one sequence's new keys
  key_rope.batch = 1;
  key_rope.heads = Hkv;
  for (int64_t b = 0; b < Bn; ++b) {
    for (int64_t t = 0; t < len; ++t) {
      const T* row = pp + (b * len + t) * in_width;
      std::memcpy(qp + (b * len + t) * H * dh, row, H * dh * sizeof(T));
      std::memcpy(kp + t * kw, row + H * dh, kw * sizeof(T));
      store(cache.value<C>(seq0 + b, pos + t), row + H * dh + kw, kw);
    }
    if (rope_dims > 0) rope_forward<T>(kp, kp, key_rope);
    store(cache.key<C>(seq0 + b, pos), kp, len * kw);  // tokens pos … pos + len − 1
  }
  if (rope_dims > 0) rope_forward<T>(qp, qp, query_rope);
  const int64_t seq = max_len * kw;  // one sequence's stretch of the cache
  return {.keys = {cache.key<C>(seq0, 0), seq, kw, dh},
          .values = {cache.value<C>(seq0, 0), seq, kw, dh}};
}

// mla decodes as multi-query attention over the latent (models/README.md,
// "the absorption trick"): one KV head, dr + d_c wide, for all H query heads.
//   key of token j    [k_r,j ; c_kv,j]            the cached row, as it is
//   value of token j  c_kv,j                      the row's latent part
//   query of head h   [RoPE(q_r,h) ; c_q·w_uq_uk,hᵀ]   w_uq_uk,h = w_uk,hᵀ·w_uq,h
// so q·k = q_r·k_r + q_c·(c_kv·w_uk,hᵀ) = the training form's q·k, and the
// head's output Σ p·c_kv (d_c wide) goes through wo_uv, which absorbs w_uv.
// The RoPE part comes first here and last in training ([q_c ; q_r]): a dot
// product is the same sum in either order, and first is where the RoPE kernel
// rotates (a head's first r channels), so one call rotates k_r inside the row.
// As for keys, a bf16 cache rounds k_r after its rotation.
template <typename T, typename C>
KvHeads<C> Decoder::Impl::append_latents(int64_t layer, int64_t len) {
  const LatentKvCache& cache = latent[layer];
  const T* pp = proj.data<T>();
  T* qp = q.data<T>();
  T* rp = fresh.data<T>();
  const int64_t row = cache.token_stride(), seq = max_len * row;
  RopeDims key_rope{.batch = 1,  // one sequence's new rows: one head of dr + d_c
                    .tokens = len,
                    .heads = 1,
                    .head_dim = row,
                    .rotary_dims = dr,
                    .theta = cfg.rope_theta,
                    .position_offset = pos};
  // proj rows are [c_q (d_cq) | k_r (dr) | c_kv (d_c)]: the last two are the cache row.
  for (int64_t b = 0; b < Bn; ++b) {
    for (int64_t t = 0; t < len; ++t)
      std::memcpy(rp + t * row, pp + (b * len + t) * in_width + d_cq, row * sizeof(T));
    rope_forward<T>(rp, rp, key_rope);
    store(cache.row<C>(seq0 + b, pos), rp, len * row);
  }
  // The queries, from c_q (the first d_cq columns of proj).
  linear<T>(qp, H * q_dim, pp, in_width, layers[layer].w_q, Bn * len, T(0));
  const RopeDims query_rope{.batch = Bn,
                            .tokens = len,
                            .heads = H,
                            .head_dim = q_dim,
                            .rotary_dims = dr,
                            .theta = cfg.rope_theta,
                            .position_offset = pos};
  rope_forward<T>(qp, qp, query_rope);
  // One KV head: its head stride (here the row) is never used.
  return {.keys = {cache.row<C>(seq0, 0), seq, row, row},
          .values = {cache.latent<C>(seq0, 0), seq, row, row}};
}

// One new token of sequence b (row b of q) against the Tk cached tokens:
// for each KV head, the G = H / Hkv query heads that read it score all keys
// in one product, then mix the values in another (a bf16 cache: the products
// of tensor/bf16_rows.hpp, which widen each cached number in registers).
template <typename T, typename C>
void Decoder::Impl::attend_one(int64_t b, const KvHeads<C>& kv_heads, int64_t Tk) {
  const int64_t G = H / Hkv;
  const HeadsView<const C>& keys = kv_heads.keys;
  const HeadsView<const C>& values = kv_heads.values;
  T* s = scores.data<T>();
  for (int64_t g = 0; g < Hkv; ++g) {
    const T* qg = q.data<T>() + b * H * q_dim + g * G * q_dim;  // [G, q_dim]
    // [Tk, q_dim] and [Tk, v_dim], rows token_stride apart
    const C* kg = keys.data + b * keys.batch_stride + g * keys.head_stride;
    const C* vg = values.data + b * values.batch_stride + g * values.head_stride;
    T* og = att.data<T>() + b * H * v_dim + g * G * v_dim;  // [G, v_dim]
    // s [G, Tk] = scale · q·kᵀ
    if constexpr (std::is_same_v<T, C>)
      blas::gemm_on_this_thread<T>(false, true, G, Tk, q_dim, static_cast<T>(scale), qg, q_dim, kg,
                                   keys.token_stride, T(0), s, Tk);
    else
      bf16_rows_scores(qg, q_dim, G, kg, keys.token_stride, Tk, q_dim, static_cast<T>(scale), s,
                       Tk);
    T* inv = row_scale.data<T>();
    for (int64_t r = 0; r < G; ++r) {
      T* row = s + r * Tk;
      const T m = *std::max_element(row, row + Tk);
      T sum = 0;
      for (int64_t j = 0; j < Tk; ++j) {
        row[j] = std::exp(row[j] - m);
        sum += row[j];
      }
      inv[r] = T(1) / sum;
      if (record) {  // head g·G + r, query at position Tk − 1
        T* p = attention_record[layer_now].data<T>() + ((g * G + r) * max_len + Tk - 1) * max_len;
        for (int64_t j = 0; j < Tk; ++j) p[j] = row[j] * inv[r];
      }
    }
    // o [G, v_dim] = p · v, then divided by each row's sum (as the training kernel does)
    if constexpr (std::is_same_v<T, C>)
      blas::gemm_on_this_thread<T>(false, false, G, v_dim, Tk, T(1), s, Tk, vg, values.token_stride,
                                   T(0), og, v_dim);
    else
      bf16_rows_mix(s, Tk, G, vg, values.token_stride, Tk, v_dim, og, v_dim);
    for (int64_t r = 0; r < G; ++r)
      for (int64_t c = 0; c < v_dim; ++c) og[r * v_dim + c] *= inv[r];
  }
}

// out [rows, D] = FFN(in) (beta 0) or out += FFN(in) (beta 1).
template <typename T>
void Decoder::Impl::feed_forward(const FfnWeights& f, const T* in, int64_t ld_in, int64_t rows,
                                 T* out, T beta) {
  T* hid = hidden.data<T>();
  T* a = act.data<T>();
  if (cfg.ffn == FeedForwardKind::SwiGLU) {
    linear<T>(hid, 2 * F, in, ld_in, f.w_in, rows, T(0));  // [gate | up]
    for (int64_t r = 0; r < rows; ++r)  // a = silu(gate) ⊙ up, the training kernel
      swiglu_forward<T>(a + r * F, hid + r * 2 * F, hid + r * 2 * F + F, F);
  } else {
    linear<T>(hid, F, in, ld_in, f.w_in, rows, T(0));
    const T* bias = f.b_in.data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < F; ++j) a[r * F + j] = std::max(T(0), hid[r * F + j] + bias[j]);
  }
  linear<T>(out, D, a, F, f.w_down, rows, beta);
  if (cfg.ffn == FeedForwardKind::ReLU) {
    const T* bias = f.b_down.data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < D; ++j) out[r * D + j] += bias[j];
  }
}

// x += MoE_layer(h): route each row to its top-k experts (ties to the lower
// index), run each chosen expert on its rows only, mix by the gates; add the
// shared experts.
template <typename T>
void Decoder::Impl::mixture(int64_t layer, int64_t rows) {
  const LayerWeights& l = layers[layer];
  const int64_t k = top_k;
  const T* hp = h.data<T>();
  T* logits = router_logits.data<T>();
  T* gp = gates.data<T>();
  linear<T>(logits, E, hp, D, l.router, rows, T(0));
  route_top_k<T>(logits, rows, E, k, routing);  // nn/moe_routing.hpp, as in training
  T* probs = router_probs.data<T>();
  for (int64_t n = 0; n < rows; ++n) {
    routing_gates<T>(logits + n * E, E, routing.chosen.data() + n * k, k, gp + n * k, probs);
    for (int64_t e = 0; e < E; ++e) prob_sum[layer][e] += static_cast<double>(probs[e]);
  }
  for (int64_t e = 0; e < E; ++e) choice_count[layer][e] += routing.tokens_per_expert(e);
  routed[layer] += rows;
  if (record)  // batch 1: the rows are positions pos … pos + rows − 1
    std::copy_n(routing.chosen.begin(), rows * k, routing_record[layer].begin() + pos * k);

  T* out = moe_out.data<T>();
  T* in = moe_in.data<T>();
  T* y = moe_y.data<T>();
  std::fill(out, out + rows * D, T(0));
  for (int64_t e = 0; e < E; ++e) {
    const auto& toks = routing.tokens_of[e];
    const int64_t n_e = static_cast<int64_t>(toks.size());
    if (n_e == 0) continue;  // no row chose e: it does not run
    for (int64_t i = 0; i < n_e; ++i) std::memcpy(in + i * D, hp + toks[i] * D, D * sizeof(T));
    feed_forward<T>(l.experts[e], in, D, n_e, y, T(0));
    for (int64_t i = 0; i < n_e; ++i) {
      const T gate = gp[routing.choices_of[e][i]];
      T* dst = out + toks[i] * D;
      const T* src = y + i * D;
      for (int64_t j = 0; j < D; ++j) dst[j] += src[j] * gate;
    }
  }
  for (const FfnWeights& s : l.shared) feed_forward<T>(s, hp, D, rows, out, T(1));
  T* xp = x.data<T>();
  for (int64_t i = 0; i < rows * D; ++i) xp[i] += out[i];
}

// out rows = RMSNorm(x rows; norm) · lm_headᵀ, for `rows` rows of x_rows
// (contiguous [rows, D]); normalises into h.
template <typename T>
void Decoder::Impl::head_rows(T* out, int64_t ldo, const T* x_rows, int64_t rows) {
  T* hp = h.data<T>();
  rms_norm_forward<T>(hp, nullptr, x_rows, final_norm.data<T>(), rows, D,
                      static_cast<T>(cfg.norm_eps));
  linear<T>(out, ldo, hp, D, *lm_head, rows, T(0));
}

// ------------------------------------------------------------------ Decoder
Decoder::Decoder(const DecoderWeights& weights, DType dtype, const DecoderOptions& options)
    : impl_(std::make_unique<Impl>(weights, dtype, options)) {}
Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;

Tensor Decoder::prefill(std::span<const int32_t> ids, int64_t seq_len, bool all_positions) {
  Impl& m = *impl_;
  ATTN_CHECK(seq_len >= 1, "prefill needs at least one token per sequence, got T={}", seq_len);
  ATTN_CHECK(static_cast<int64_t>(ids.size()) == m.B * seq_len,
             "prefill: {} token ids for a batch of B={} × T={}", ids.size(), m.B, seq_len);
  m.check_room(seq_len, "prefill");
  m.check_ids(ids);
  Tensor out = all_positions ? Tensor::empty({m.B, seq_len, m.V}, m.dtype)
                             : Tensor::empty({m.B, m.V}, m.dtype);
  m.Bn = m.B;
  m.seq0 = 0;
  dispatch_dtype(m.dtype, [&]<typename T>() {
    for (int64_t c0 = 0; c0 < seq_len; c0 += m.chunk) {
      const int64_t len = std::min(m.chunk, seq_len - c0);
      for (int64_t b = 0; b < m.B; ++b)
        std::copy_n(ids.data() + b * seq_len + c0, len, m.chunk_ids.data() + b * len);
      m.run<T>(m.chunk_ids.data(), len);
      if (all_positions)
        for (int64_t b = 0; b < m.B; ++b)
          m.head_rows<T>(out.data<T>() + (b * seq_len + c0) * m.V, m.V,
                         m.x.data<T>() + b * len * m.D, len);
      m.pos += len;
      if (!all_positions && c0 + len == seq_len) {
        // The last row of each sequence: gather, normalise, project.
        T* last = m.last_h.data<T>();
        for (int64_t b = 0; b < m.B; ++b)
          std::memcpy(last + b * m.D, m.x.data<T>() + (b * len + len - 1) * m.D, m.D * sizeof(T));
        m.head_rows<T>(out.data<T>(), m.V, last, m.B);
      }
    }
  });
  return out;
}

Tensor Decoder::prefill_each(std::span<const int32_t> ids, int64_t seq_len) {
  Impl& m = *impl_;
  ATTN_CHECK(seq_len >= 1, "prefill needs at least one token per sequence, got T={}", seq_len);
  ATTN_CHECK(static_cast<int64_t>(ids.size()) == m.B * seq_len,
             "prefill: {} token ids for a batch of B={} × T={}", ids.size(), m.B, seq_len);
  m.check_room(seq_len, "prefill");
  m.check_ids(ids);
  Tensor out = Tensor::empty({m.B, m.V}, m.dtype);
  const int64_t start = m.pos;
  m.Bn = 1;
  dispatch_dtype(m.dtype, [&]<typename T>() {
    for (int64_t b = 0; b < m.B; ++b) {
      // Sequence b alone, in the chunks (and so the products) of a decoder of batch 1.
      m.seq0 = b;
      m.pos = start;
      for (int64_t c0 = 0; c0 < seq_len; c0 += m.chunk_one) {
        const int64_t len = std::min(m.chunk_one, seq_len - c0);
        m.run<T>(ids.data() + b * seq_len + c0, len);
        m.pos += len;
        if (c0 + len == seq_len)
          m.head_rows<T>(out.data<T>() + b * m.V, m.V, m.x.data<T>() + (len - 1) * m.D, 1);
      }
    }
  });
  m.Bn = m.B;
  m.seq0 = 0;
  m.pos = start + seq_len;
  return out;
}

const Tensor& Decoder::step(std::span<const int32_t> ids) {
  Impl& m = *impl_;
  ATTN_CHECK(static_cast<int64_t>(ids.size()) == m.B, "step: {} token ids for a batch of B={}",
             ids.size(), m.B);
  m.check_room(1, "step");
  m.check_ids(ids);
  m.Bn = m.B;
  m.seq0 = 0;
  dispatch_dtype(m.dtype, [&]<typename T>() {
    m.run<T>(ids.data(), 1);
    m.head_rows<T>(m.step_logits.data<T>(), m.V, m.x.data<T>(), m.B);
  });
  m.pos += 1;
  return m.step_logits;
}

void Decoder::reset() {
  Impl& m = *impl_;
  m.pos = 0;
  std::fill(m.routed.begin(), m.routed.end(), 0);
  for (auto& c : m.choice_count) std::fill(c.begin(), c.end(), 0);
  for (auto& p : m.prob_sum) std::fill(p.begin(), p.end(), 0.0);
}

const ModelConfig& Decoder::config() const {
  return impl_->cfg;
}
DType Decoder::dtype() const {
  return impl_->dtype;
}
int64_t Decoder::batch() const {
  return impl_->B;
}
int64_t Decoder::max_len() const {
  return impl_->max_len;
}
int64_t Decoder::position() const {
  return impl_->pos;
}

KvCacheFormat Decoder::kv_cache_format() const {
  return impl_->cache16 ? KvCacheFormat::BF16 : KvCacheFormat::F32;
}

int64_t Decoder::cache_bytes_per_token() const {
  int64_t bytes = 0;
  for (const KvCache& c : impl_->kv) bytes += c.bytes_per_token();
  for (const LatentKvCache& c : impl_->latent) bytes += c.bytes_per_token();
  return bytes;
}
int64_t Decoder::cache_bytes() const {
  return impl_->B * impl_->pos * cache_bytes_per_token();
}
int64_t Decoder::cache_capacity_bytes() const {
  int64_t bytes = 0;
  for (const KvCache& c : impl_->kv) bytes += c.capacity_bytes();
  for (const LatentKvCache& c : impl_->latent) bytes += c.capacity_bytes();
  return bytes;
}
const KvCache* Decoder::kv_cache(int64_t layer) const {
  return impl_->mla ? nullptr : &impl_->kv.at(layer);
}
const LatentKvCache* Decoder::latent_cache(int64_t layer) const {
  return impl_->mla ? &impl_->latent.at(layer) : nullptr;
}

const Tensor& Decoder::attention_record(int64_t layer) const {
  ATTN_CHECK(impl_->record, "the decoder records attention only with record_attention");
  return impl_->attention_record.at(layer);
}
const std::vector<int32_t>& Decoder::routing_record(int64_t layer) const {
  ATTN_CHECK(impl_->record, "the decoder records routing only with record_attention");
  return impl_->routing_record.at(layer);
}

double Decoder::aux_loss() const {
  const Impl& m = *impl_;
  double aux = 0;
  for (size_t l = 0; l < m.routed.size(); ++l) {
    if (m.routed[l] == 0) continue;
    const double n = static_cast<double>(m.routed[l]);
    double sum = 0;
    for (int64_t e = 0; e < m.E; ++e)
      sum += static_cast<double>(m.choice_count[l][e]) / (n * static_cast<double>(m.top_k)) *
             (m.prob_sum[l][e] / n);
    aux += static_cast<double>(m.E) * sum;
  }
  return aux;
}

// ------------------------------------------------------------------ helpers
Tensor decode_logits(Decoder& decoder, std::span<const int32_t> ids, int64_t seq_len,
                     int64_t prefill_tokens) {
  const int64_t B = decoder.batch(), V = decoder.config().vocab_size;
  ATTN_CHECK(prefill_tokens >= 1 && prefill_tokens <= seq_len,
             "decode_logits: prefill_tokens must lie in 1 … T = {}, got {}", seq_len,
             prefill_tokens);
  ATTN_CHECK(static_cast<int64_t>(ids.size()) == B * seq_len,
             "decode_logits: {} token ids for a batch of B={} × T={}", ids.size(), B, seq_len);
  decoder.reset();
  Tensor out = Tensor::empty({B, seq_len, V}, decoder.dtype());
  std::vector<int32_t> part(B * prefill_tokens);
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(ids.data() + b * seq_len, prefill_tokens, part.data() + b * prefill_tokens);
  out.narrow(1, 0, prefill_tokens).copy_(decoder.prefill(part, prefill_tokens, true));
  std::vector<int32_t> one(B);
  for (int64_t t = prefill_tokens; t < seq_len; ++t) {
    for (int64_t b = 0; b < B; ++b) one[b] = ids[b * seq_len + t];
    out.select(1, t).copy_(decoder.step(one));
  }
  return out;
}

double logits_relative_error(const Tensor& a, const Tensor& ref) {
  check_same_shape(a, ref, "logits_relative_error");
  const int64_t V = ref.dim() == 0 ? 1 : ref.size(-1);
  const std::vector<double> av = a.to_vector(), rv = ref.to_vector();
  double worst = 0;
  for (size_t r0 = 0; r0 < rv.size(); r0 += V) {
    double diff = 0, size = 0;
    for (int64_t j = 0; j < V; ++j) {
      diff = std::max(diff, std::abs(av[r0 + j] - rv[r0 + j]));
      size = std::max(size, std::abs(rv[r0 + j]));
    }
    const double rel = diff / std::max(size, std::numeric_limits<double>::min());
    if (std::isnan(rel)) return rel;
    worst = std::max(worst, rel);
  }
  return worst;
}

}  // namespace attnlab
