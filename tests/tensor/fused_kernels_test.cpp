// The fused kernels (rms_norm, rope, swiglu, attention, cross_entropy) against
// their plain-loop twins of tensor/reference/ (straight from the formulas, in
// double), in f32 and f64, on every SIMD target this CPU supports; plus their errors.
#include <doctest/doctest.h>
#include <hwy/targets.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "attnlab/tensor/attention.hpp"
#include "attnlab/tensor/cross_entropy.hpp"
#include "attnlab/tensor/reference/attention_reference.hpp"
#include "attnlab/tensor/reference/cross_entropy_reference.hpp"
#include "attnlab/tensor/reference/rms_norm_reference.hpp"
#include "attnlab/tensor/reference/rope_reference.hpp"
#include "attnlab/tensor/reference/swiglu_reference.hpp"
#include "attnlab/tensor/rms_norm.hpp"
#include "attnlab/tensor/rope.hpp"
#include "attnlab/tensor/swiglu.hpp"

using namespace attnlab;

namespace {

using Values = std::vector<double>;

Tensor randn(const Shape& shape, DType dtype, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  return Tensor::normal(shape, rng, 0.0, scale, dtype);
}

// Checks max_i |got_i − want_i| / (1 + |want_i|) ≤ tol, reporting the worst element.
void check_close(const Values& got, const Values& want, double tol, const char* what) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t where = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - want[i]) / (1 + std::abs(want[i]));
    if (!(err <= worst)) worst = err, where = i;
  }
  INFO(what << ": worst error " << worst << " at element " << where << " (got "
            << (got.empty() ? 0 : got[where]) << ", want " << (want.empty() ? 0 : want[where])
            << ")");
  CHECK(worst <= tol);
}

void check_close(const Values& got, const Tensor& want, double tol, const char* what) {
  check_close(got, want.to_vector(), tol, what);
}

double tolerance(DType dtype) {
  return dtype == DType::F32 ? 2e-5 : 1e-12;
}

// Runs fn once per SIMD target compiled in and supported by this CPU, so the
// scalar fallback and every vector width are tested, not only the best one.
template <typename Fn>
void for_each_simd_target(Fn&& fn) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    INFO("SIMD target " << hwy::TargetName(target));
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

// The references are the library's plain-loop twins (tensor/reference/),
// in double, written straight from the formulas.

struct AttentionCase {
  int64_t B, Tq, Tk, H, Hkv, dk, dv;
};

void check_attention(const AttentionCase& c, DType dtype, double scale) {
  INFO("B=" << c.B << " Tq=" << c.Tq << " Tk=" << c.Tk << " H=" << c.H << " Hkv=" << c.Hkv
            << " dk=" << c.dk << " dv=" << c.dv << " " << dtype_name(dtype));
  const Tensor q = randn({c.B, c.Tq, c.H, c.dk}, dtype, 1);
  const Tensor k = randn({c.B, c.Tk, c.Hkv, c.dk}, dtype, 2);
  const Tensor v = randn({c.B, c.Tk, c.Hkv, c.dv}, dtype, 3);
  const Tensor dout = randn({c.B, c.Tq, c.H, c.dv}, dtype, 4);
  const reference::AttentionOutput want = reference::attention_forward(q, k, v, scale);
  const reference::AttentionGradients want_grads =
      reference::attention_backward(dout, q, k, v, scale);
  // The backward gets only what a Node saves: q, k, v, out and lse.
  const AttentionResult fwd = attention_forward(q, k, v, scale);
  const AttentionGrads grads = attention_backward(dout, q, k, v, fwd.out, fwd.lse, scale);
  const double tol = tolerance(dtype) * (dtype == DType::F32 ? 5 : 1);
  check_close(fwd.out.to_vector(), want.out.to_vector(), tol, "out");
  check_close(fwd.lse.to_vector(), want.lse.to_vector(), tol, "lse");
  check_close(grads.dq.to_vector(), want_grads.dq.to_vector(), tol, "dq");
  check_close(grads.dk.to_vector(), want_grads.dk.to_vector(), tol, "dk");
  check_close(grads.dv.to_vector(), want_grads.dv.to_vector(), tol, "dv");
}

}  // namespace

// ---------------------------------------------------------------- rms_norm

TEST_CASE("rms_norm forward and backward match the formulas") {
  for_each_simd_target([] {
    for (DType dt : {DType::F32, DType::F64})
      for (int64_t D : {1, 7, 64, 300}) {
        INFO("D=" << D << " " << dtype_name(dt));
        const Shape shape{3, 5, D};
        const Tensor x = randn(shape, dt, 10), w = randn({D}, dt, 11), g = randn(shape, dt, 12);
        const double eps = 1e-5;
        const auto want = reference::rms_norm_forward(x, w, eps);
        const auto want_grads = reference::rms_norm_backward(g, x, w, eps);
        Tensor rstd;
        const Tensor y = rms_norm_forward(x, w, eps, &rstd);
        CHECK(y.shape() == shape);
        CHECK(rstd.shape() == Shape{3, 5});
        check_close(y.to_vector(), want.y, tolerance(dt), "y");
        check_close(rstd.to_vector(), want.rstd, tolerance(dt), "rstd");
        const RmsNormGrads grads = rms_norm_backward(g, x, w, rstd);
        check_close(grads.dx.to_vector(), want_grads.dx, tolerance(dt), "dx");
        check_close(grads.dweight.to_vector(), want_grads.dweight, 4 * tolerance(dt), "dweight");
        // Without the rstd output (the decoder's call) the result is the same.
        CHECK(rms_norm_forward(x, w, eps).to_vector() == y.to_vector());
      }
  });
}

TEST_CASE("rms_norm: strided input, many rows, results independent of the thread count") {
  const Tensor base = randn({300, 2, 96}, DType::F32, 20);
  const Tensor x = base.transpose(0, 1);  // [2, 300, 96], not contiguous
  const Tensor w = randn({96}, DType::F32, 21), g = randn({2, 300, 96}, DType::F32, 22);
  const auto want = reference::rms_norm_forward(x, w, 1e-6);
  const auto want_grads = reference::rms_norm_backward(g, x, w, 1e-6);
  Tensor rstd;
  check_close(rms_norm_forward(x, w, 1e-6, &rstd).to_vector(), want.y, 2e-5, "y");
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const RmsNormGrads one = rms_norm_backward(g, x, w, rstd);
  omp_set_num_threads(std::max(2, threads));
  const RmsNormGrads many = rms_norm_backward(g, x, w, rstd);
  omp_set_num_threads(threads);
  check_close(one.dweight.to_vector(), want_grads.dweight, 1e-4, "dweight");
  CHECK(one.dweight.to_vector() == many.dweight.to_vector());
  CHECK(one.dx.to_vector() == many.dx.to_vector());
}

TEST_CASE("rms_norm errors name the shapes") {
  const Tensor x = Tensor::zeros({2, 4}), w = Tensor::ones({5});
  CHECK_THROWS_WITH_AS(rms_norm_forward(x, w, 1e-6),
                       doctest::Contains("weight [5] must be [D] for x [2, 4]"), Error);
  CHECK_THROWS_WITH_AS(rms_norm_forward(x, Tensor::ones({4}, DType::F64), 1e-6),
                       doctest::Contains("rms_norm"), Error);
  CHECK_THROWS_WITH_AS(rms_norm_forward(x, Tensor::ones({4}), -1), doctest::Contains("eps"), Error);
}

// ----------------------------------------------------------------- swiglu

TEST_CASE("swiglu forward and backward match the formulas") {
  for_each_simd_target([] {
    for (DType dt : {DType::F32, DType::F64})
      for (int64_t n : {0, 1, 7, 16, 17, 64, 1000, 40003}) {
        INFO("n=" << n << " " << dtype_name(dt));
        const Tensor a = randn({n}, dt, 30, 3.0), b = randn({n}, dt, 31), g = randn({n}, dt, 32);
        const Tensor want = reference::swiglu_forward(a, b);
        const auto want_grads = reference::swiglu_backward(g, a, b);
        check_close(swiglu_forward(a, b).to_vector(), want, tolerance(dt), "y");
        const SwiGluGrads grads = swiglu_backward(g, a, b);
        check_close(grads.dgate.to_vector(), want_grads.dgate, tolerance(dt), "dgate");
        check_close(grads.dup.to_vector(), want_grads.dup, tolerance(dt), "dup");
      }
  });
}

TEST_CASE("swiglu: extreme gates, strided views, results independent of the thread count") {
  const Tensor a = Tensor::from_data({4}, {-1000.0, -50.0, 50.0, 1000.0}, DType::F32);
  const Tensor b = Tensor::ones({4});
  const auto y = swiglu_forward(a, b).to_vector();
  CHECK(y[0] == 0.0);  // silu(−inf-ish) = 0, not NaN
  CHECK(y[3] == 1000.0);
  const Tensor base = randn({300, 2, 96}, DType::F32, 33);
  const Tensor x = base.transpose(0, 1), u = randn({2, 300, 96}, DType::F32, 34);
  const Tensor g = randn({2, 300, 96}, DType::F32, 35);
  const Tensor want = reference::swiglu_forward(x, u);
  const auto want_grads = reference::swiglu_backward(g, x, u);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const SwiGluGrads one = swiglu_backward(g, x, u);
  const Tensor y1 = swiglu_forward(x, u);
  omp_set_num_threads(std::max(2, threads));
  const SwiGluGrads many = swiglu_backward(g, x, u);
  CHECK(swiglu_forward(x, u).to_vector() == y1.to_vector());
  omp_set_num_threads(threads);
  check_close(y1.to_vector(), want, 2e-5, "y");
  check_close(one.dgate.to_vector(), want_grads.dgate, 2e-5, "dgate");
  CHECK(one.dgate.to_vector() == many.dgate.to_vector());
  CHECK(one.dup.to_vector() == many.dup.to_vector());
  CHECK_THROWS_WITH_AS(swiglu_forward(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})),
                       doctest::Contains("swiglu"), Error);
}

// ------------------------------------------------------------------- rope

TEST_CASE("rope matches the formula of docs/MODEL-SPEC.md at explicit positions") {
  struct Case {
    int64_t B, T, H, d, r, offset;
    double theta;
  };
  for (DType dt : {DType::F32, DType::F64})
    for (const Case& c :
         {Case{2, 5, 3, 8, 8, 0, 10000.0}, Case{1, 1, 2, 8, 8, 7, 10000.0},
          Case{2, 4, 2, 12, 6, 3, 500.0}, Case{1, 3, 1, 10, 0, 2, 10000.0},
          Case{1, 70, 2, 64, 32, 1000, 10000.0}, Case{1, 2, 1, 4, 4, 100000, 10000.0}}) {
      INFO("B=" << c.B << " T=" << c.T << " H=" << c.H << " d=" << c.d << " r=" << c.r
                << " offset=" << c.offset << " " << dtype_name(dt));
      const Tensor x = randn({c.B, c.T, c.H, c.d}, dt, 30);
      const Tensor y = rope_forward(x, c.r, c.theta, c.offset);
      // f32 tolerance: angles up to 1e5 rad are computed in double, then rounded.
      check_close(y.to_vector(), reference::rope_forward(x, c.r, c.theta, c.offset), tolerance(dt),
                  "rope");
      // Channels r … d pass unchanged, bit for bit.
      for (int64_t ch = c.r; ch < c.d; ++ch) CHECK(y.at({0, 0, 0, ch}) == x.at({0, 0, 0, ch}));
      // The backward is the inverse rotation.
      check_close(rope_backward(y, c.r, c.theta, c.offset).to_vector(), x.to_vector(),
                  tolerance(dt), "rope_backward(rope(x))");
    }
}

TEST_CASE("rope: a position is the same whether reached by offset or by index") {
  // Token t of a sequence and a single token at offset t (the KV-cached decoder).
  const Tensor x = randn({1, 9, 2, 16}, DType::F32, 31);
  const Tensor full = rope_forward(x, 16, 10000.0, 0);
  for (int64_t t : {0, 4, 8}) {
    const Tensor one = rope_forward(x.narrow(1, t, 1), 16, 10000.0, t);
    CHECK(one.to_vector() == full.narrow(1, t, 1).to_vector());
  }
  // In place on raw memory.
  Tensor y = x.clone();
  rope_forward(y.data<float>(), y.data<float>(), RopeDims{1, 9, 2, 16, 16, 10000.0, 0});
  CHECK(y.to_vector() == full.to_vector());
  // A non-contiguous view is read correctly.
  const Tensor xt = randn({1, 2, 9, 16}, DType::F32, 32).transpose(1, 2);
  check_close(rope_forward(xt, 8, 10000.0, 2).to_vector(),
              reference::rope_forward(xt, 8, 10000.0, 2), 2e-5, "strided rope");
}

TEST_CASE("rope errors name rotary_dims and the shape") {
  const Tensor x = Tensor::zeros({1, 2, 3, 8});
  CHECK_THROWS_WITH_AS(rope_forward(x, 5, 10000.0),
                       doctest::Contains("rotary_dims must be even and in [0, d = 8], got 5"),
                       Error);
  CHECK_THROWS_WITH_AS(rope_forward(x, 10, 10000.0), doctest::Contains("got 10 (x [1, 2, 3, 8])"),
                       Error);
  CHECK_THROWS_WITH_AS(rope_forward(x, -2, 10000.0), doctest::Contains("got -2"), Error);
  CHECK_THROWS_WITH_AS(rope_forward(Tensor::zeros({2, 8}), 8, 10000.0),
                       doctest::Contains("[B, T, heads, d], got shape [2, 8]"), Error);
  CHECK_THROWS_WITH_AS(rope_forward(x, 8, 0.0), doctest::Contains("theta"), Error);
  CHECK_THROWS_WITH_AS(rope_forward(x, 8, 10000.0, -1), doctest::Contains("position_offset"),
                       Error);
}

// -------------------------------------------------------------- attention

TEST_CASE("attention matches materialised scores for tile-edge lengths") {
  for_each_simd_target([] {
    for (DType dt : {DType::F32, DType::F64})
      for (int64_t T : {1, 63, 64, 65, 130}) {
        check_attention({2, T, T, 4, 2, 16, 16}, dt, 0.25);
      }
  });
}

TEST_CASE("attention: MHA, MQA, GQA, dk != dv, odd widths, any scale") {
  for (DType dt : {DType::F32, DType::F64}) {
    check_attention({1, 5, 5, 3, 3, 8, 8}, dt, 1 / std::sqrt(8.0));  // MHA
    check_attention({2, 17, 17, 4, 1, 32, 32}, dt, 0.2);             // MQA
    check_attention({1, 70, 70, 6, 3, 24, 16}, dt, 0.3);             // GQA, dk ≠ dv (MLA-like)
    check_attention({1, 9, 9, 2, 1, 5, 3}, dt, 1.7);                 // widths below a vector
    check_attention({1, 66, 66, 2, 2, 40, 72}, dt, 0.125);           // vectors + leftovers
  }
}

TEST_CASE("attention with fewer queries than keys: the queries are the last positions") {
  for (DType dt : {DType::F32, DType::F64}) {
    check_attention({2, 1, 70, 4, 2, 16, 16}, dt, 0.25);    // one decoding step
    check_attention({1, 5, 64, 2, 1, 8, 12}, dt, 0.3);      // a few new tokens
    check_attention({1, 65, 130, 2, 2, 16, 16}, dt, 0.25);  // tiles misaligned with positions
    check_attention({1, 3, 3, 1, 1, 4, 4}, dt, 0.5);        // Tq = Tk
  }
  // Each new token's output equals the row of the full pass at its position.
  const Tensor q = randn({1, 80, 4, 16}, DType::F32, 40), k = randn({1, 80, 2, 16}, DType::F32, 41);
  const Tensor v = randn({1, 80, 2, 16}, DType::F32, 42);
  const Tensor full = attention_forward(q, k, v, 0.25).out;
  for (int64_t t : {0, 63, 64, 79}) {
    const Tensor step =
        attention_forward(q.narrow(1, t, 1), k.narrow(1, 0, t + 1), v.narrow(1, 0, t + 1), 0.25)
            .out;
    check_close(step.to_vector(), full.narrow(1, t, 1).to_vector(), 1e-6, "step vs full");
  }
}

TEST_CASE("attention reads strided views in place: slices of a fused projection") {
  // qkv [B, T, H + 2·Hkv, d] as one Linear would give it; q, k, v are narrowed views.
  const int64_t B = 2, T = 67, H = 4, Hkv = 2, d = 16;
  const Tensor qkv = randn({B, T, H + 2 * Hkv, d}, DType::F64, 50);
  const Tensor q = qkv.narrow(2, 0, H), k = qkv.narrow(2, H, Hkv), v = qkv.narrow(2, H + Hkv, Hkv);
  REQUIRE(!q.is_contiguous());
  const Tensor dout = randn({B, T, H, d}, DType::F64, 51);
  const reference::AttentionOutput want = reference::attention_forward(q, k, v, 0.25);
  const reference::AttentionGradients want_grads =
      reference::attention_backward(dout, q, k, v, 0.25);
  const AttentionResult fwd = attention_forward(q, k, v, 0.25);
  const AttentionGrads grads = attention_backward(dout, q, k, v, fwd.out, fwd.lse, 0.25);
  check_close(fwd.out.to_vector(), want.out, 1e-12, "out");
  check_close(grads.dq.to_vector(), want_grads.dq, 1e-12, "dq");
  check_close(grads.dk.to_vector(), want_grads.dk, 1e-12, "dk");
  check_close(grads.dv.to_vector(), want_grads.dv, 1e-12, "dv");
  // A view whose last axis is not contiguous is copied first, and still right.
  const Tensor qt = randn({B, T, d, H}, DType::F64, 52).transpose(2, 3);
  check_close(attention_forward(qt, k, v, 0.25).out.to_vector(),
              reference::attention_forward(qt, k, v, 0.25).out, 1e-12, "transposed q");
}

TEST_CASE("attention backward needs only q, k, v, out and lse, and is thread-count independent") {
  // By construction: attention_backward takes exactly the forward's inputs,
  // its output and the per-row log-sum-exp [B, H, T] — nothing T×T — and
  // recomputes the probabilities from them (check_attention runs it so).
  const Tensor q = randn({3, 100, 4, 32}, DType::F32, 60),
               k = randn({3, 100, 2, 32}, DType::F32, 61);
  const Tensor v = randn({3, 100, 2, 32}, DType::F32, 62),
               dout = randn({3, 100, 4, 32}, DType::F32, 63);
  const AttentionResult fwd = attention_forward(q, k, v, 0.2);
  CHECK(fwd.lse.shape() == Shape{3, 4, 100});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const AttentionGrads one = attention_backward(dout, q, k, v, fwd.out, fwd.lse, 0.2);
  const Tensor out_one = attention_forward(q, k, v, 0.2).out;
  omp_set_num_threads(std::max(2, threads));
  const AttentionGrads many = attention_backward(dout, q, k, v, fwd.out, fwd.lse, 0.2);
  omp_set_num_threads(threads);
  CHECK(out_one.to_vector() == fwd.out.to_vector());
  CHECK(one.dq.to_vector() == many.dq.to_vector());
  CHECK(one.dk.to_vector() == many.dk.to_vector());
  CHECK(one.dv.to_vector() == many.dv.to_vector());
}

TEST_CASE("attention errors name the shapes") {
  const Tensor q = Tensor::zeros({1, 4, 3, 8}), k = Tensor::zeros({1, 4, 2, 8});
  const Tensor v = Tensor::zeros({1, 4, 2, 8});
  CHECK_THROWS_WITH_AS(
      attention_forward(q, k, v, 1.0),
      doctest::Contains("3 query heads are not a multiple of 2 KV heads (q [1, 4, 3, 8], k [1, 4, "
                        "2, 8], v [1, 4, 2, 8])"),
      Error);
  const Tensor q4 = Tensor::zeros({1, 4, 4, 8});
  CHECK_THROWS_WITH_AS(attention_forward(q4, Tensor::zeros({1, 4, 2, 6}), v, 1.0),
                       doctest::Contains("q and k differ in head width (8 vs 6"), Error);
  CHECK_THROWS_WITH_AS(attention_forward(q4, k, Tensor::zeros({1, 5, 2, 8}), 1.0),
                       doctest::Contains("k and v differ"), Error);
  CHECK_THROWS_WITH_AS(attention_forward(Tensor::zeros({1, 5, 4, 8}), k, v, 1.0),
                       doctest::Contains("5 queries but only 4 keys"), Error);
  CHECK_THROWS_WITH_AS(attention_forward(Tensor::zeros({4, 4, 8}), k, v, 1.0),
                       doctest::Contains("got q [4, 4, 8]"), Error);
  CHECK_THROWS_WITH_AS(attention_forward(q4, Tensor::zeros({2, 4, 2, 8}), v, 1.0),
                       doctest::Contains("batch sizes differ"), Error);
  CHECK_THROWS_WITH_AS(attention_forward(q4, k, v.to(DType::F64), 1.0),
                       doctest::Contains("dtypes f32, f32, f64"), Error);
  const AttentionResult fwd = attention_forward(q4, k, v, 1.0);
  CHECK_THROWS_WITH_AS(
      attention_backward(Tensor::zeros({1, 4, 4, 7}), q4, k, v, fwd.out, fwd.lse, 1.0),
      doctest::Contains("dout [1, 4, 4, 7]"), Error);
}

// ---------------------------------------------------------- cross_entropy

TEST_CASE("cross_entropy matches -log softmax, and its gradient softmax - onehot") {
  for_each_simd_target([] {
    for (DType dt : {DType::F32, DType::F64})
      for (int64_t V : {1, 5, 16, 67, 1000}) {
        INFO("V=" << V << " " << dtype_name(dt));
        const int64_t N = 6;
        const Tensor logits = randn({2, 3, V}, dt, 70, 3.0);
        std::vector<int32_t> targets(N);
        for (int64_t i = 0; i < N; ++i) targets[i] = static_cast<int32_t>((i * 7 + 3) % V);
        const double want = reference::cross_entropy_forward(logits, targets);
        const Tensor want_grad = reference::cross_entropy_backward(logits, targets, 2.0);
        const CrossEntropyResult r = cross_entropy_forward(logits, targets);
        CHECK(r.loss.shape() == Shape{});
        CHECK(r.loss.dtype() == dt);
        CHECK(r.loss.item() == doctest::Approx(want).epsilon(tolerance(dt)));
        const Tensor grad = cross_entropy_backward(logits, targets, r.lse, 2.0);
        check_close(grad.to_vector(), want_grad, tolerance(dt), "dlogits");
      }
  });
}

TEST_CASE("cross_entropy is stable for large logits") {
  const Tensor logits = Tensor::from_data({2, 3}, {1000, 0, -1000, 50, 60, 70}, DType::F32);
  const std::vector<int32_t> targets{0, 1};
  const CrossEntropyResult r = cross_entropy_forward(logits, targets);
  // Row 0: ≈ 0; row 1: 70 + log(1 + e^-10 + e^-20) − 60.
  const double row1 = 10 + std::log1p(std::exp(-10.0) + std::exp(-20.0));
  CHECK(r.loss.item() == doctest::Approx(row1 / 2).epsilon(1e-6));
}

TEST_CASE("cross_entropy errors name the row and the value") {
  const Tensor logits = Tensor::zeros({2, 3, 5});
  const std::vector<int32_t> bad{0, 1, 2, 5, 0, 1};
  CHECK_THROWS_WITH_AS(cross_entropy_forward(logits, bad),
                       doctest::Contains("target 5 of row 3 is outside [0, 5)"), Error);
  const std::vector<int32_t> negative{0, -1, 2, 3, 0, 1};
  CHECK_THROWS_WITH_AS(cross_entropy_forward(logits, negative),
                       doctest::Contains("target -1 of row 1"), Error);
  const std::vector<int32_t> few{0, 1, 2};
  CHECK_THROWS_WITH_AS(cross_entropy_forward(logits, few),
                       doctest::Contains("3 targets for 6 rows of logits [2, 3, 5]"), Error);
}
