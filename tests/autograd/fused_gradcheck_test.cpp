// f64 gradient checks of the fused layers: rms_norm, rope, swiglu, causal_attention,
// cross_entropy, on the edge cases of each (size-1 axes, tile edges, grouped
// heads, strided views) and chained as in a transformer block.
#include <cmath>

#include "tests/autograd/gradcheck_util.hpp"

using namespace attnlab;
using testing::rand64;
using Vars = std::vector<Variable>;

TEST_CASE("gradcheck: rms_norm") {
  // D = 1 (rstd = 1/sqrt(x² + eps): eps large enough that x matters).
  CHECK_GRADCHECK([](const Vars& v) { return rms_norm(v[0], v[1], 0.5); },
                  {rand64({4, 1}, 1), rand64({1}, 2)});
  CHECK_GRADCHECK([](const Vars& v) { return rms_norm(v[0], v[1], 1e-6); },
                  {rand64({7}, 3), rand64({7}, 4)});
  // Batch axes, a width that is not a whole number of vectors.
  CHECK_GRADCHECK([](const Vars& v) { return rms_norm(v[0], v[1], 1e-5); },
                  {rand64({2, 3, 19}, 5), rand64({19}, 6)});
  // A non-contiguous input (a transposed view).
  CHECK_GRADCHECK([](const Vars& v) { return rms_norm(transpose(v[0], 0, 1), v[1], 1e-5); },
                  {rand64({6, 2, 5}, 7), rand64({5}, 8)});
  // A weight that needs no gradient.
  const Tensor w = rand64({5}, 9);
  CHECK_GRADCHECK([&](const Vars& v) { return rms_norm(v[0], Variable(w), 1e-5); },
                  {rand64({3, 5}, 10)});
}

TEST_CASE("gradcheck: rope") {
  const Tensor x = rand64({2, 3, 2, 8}, 11);
  CHECK_GRADCHECK([](const Vars& v) { return rope(v[0], 8, 10000.0); }, {x});      // r = d
  CHECK_GRADCHECK([](const Vars& v) { return rope(v[0], 4, 10000.0, 5); }, {x});   // r = d/2
  CHECK_GRADCHECK([](const Vars& v) { return rope(v[0], 0, 10000.0, 3); }, {x});   // identity
  CHECK_GRADCHECK([](const Vars& v) { return rope(v[0], 6, 100.0, 1000); }, {x});  // r < d
  CHECK_GRADCHECK([](const Vars& v) { return rope(v[0], 8, 10000.0, 17); },        // T = 1
                  {rand64({3, 1, 2, 8}, 12)});
  // A non-contiguous input: [B, heads, T, d] transposed to [B, T, heads, d].
  CHECK_GRADCHECK([](const Vars& v) { return rope(transpose(v[0], 1, 2), 4, 10000.0, 2); },
                  {rand64({1, 2, 3, 6}, 13)});
}

namespace {

// q [B,T,H,dk], k [B,T,Hkv,dk], v [B,T,Hkv,dv], as f64 tensors.
void check_attention_grad(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t dk, int64_t dv,
                          double scale) {
  CAPTURE(B);
  CAPTURE(T);
  CAPTURE(H);
  CAPTURE(Hkv);
  CAPTURE(dk);
  CAPTURE(dv);
  CAPTURE(scale);
  CHECK_GRADCHECK(
      [=](const Vars& v) { return causal_attention(v[0], v[1], v[2], scale); },
      {rand64({B, T, H, dk}, 20), rand64({B, T, Hkv, dk}, 21), rand64({B, T, Hkv, dv}, 22)});
}

}  // namespace

TEST_CASE("gradcheck: swiglu") {
  CHECK_GRADCHECK([](const Vars& v) { return swiglu(v[0], v[1]); },
                  {rand64({3, 19}, 40, 3.0), rand64({3, 19}, 41)});
  CHECK_GRADCHECK([](const Vars& v) { return swiglu(v[0], v[1]); },
                  {rand64({1}, 42), rand64({1}, 43)});
  // A non-contiguous gate, and an up that needs no gradient.
  const Tensor up = rand64({4, 2, 5}, 44);
  CHECK_GRADCHECK([&](const Vars& v) { return swiglu(transpose(v[0], 0, 1), Variable(up)); },
                  {rand64({2, 4, 5}, 45)});
}

TEST_CASE("gradcheck: causal_attention") {
  check_attention_grad(1, 1, 2, 2, 4, 4, 0.5);                 // T = 1
  check_attention_grad(2, 5, 4, 4, 3, 3, 1 / std::sqrt(3.0));  // MHA
  check_attention_grad(2, 5, 4, 1, 3, 3, 0.9);                 // MQA
  check_attention_grad(1, 5, 4, 2, 3, 3, 0.7);                 // GQA, H/Hkv = 2
  check_attention_grad(1, 5, 2, 1, 5, 3, 0.4);                 // dk ≠ dv (MLA)
  check_attention_grad(1, 67, 2, 1, 2, 2, 0.8);                // across a tile edge
}

TEST_CASE("gradcheck: causal_attention on strided views and with fewer queries than keys") {
  // q, k, v narrowed out of one fused projection [B, T, H + 2·Hkv, d]: the
  // kernel reads them in place, and narrow's backward routes the gradients.
  CHECK_GRADCHECK(
      [](const Vars& v) {
        return causal_attention(narrow(v[0], 2, 0, 2), narrow(v[0], 2, 2, 1), narrow(v[0], 2, 3, 1),
                                0.6);
      },
      {rand64({2, 4, 4, 3}, 23)});
  // The same input used as q, k and v: the three gradients add up.
  CHECK_GRADCHECK([](const Vars& v) { return causal_attention(v[0], v[0], v[0], 0.5); },
                  {rand64({1, 4, 2, 3}, 24)});
  // 3 queries at the last positions of 7 keys (a prefill after a cached prefix).
  CHECK_GRADCHECK([](const Vars& v) { return causal_attention(v[0], v[1], v[2], 0.5); },
                  {rand64({1, 3, 2, 4}, 25), rand64({1, 7, 1, 4}, 26), rand64({1, 7, 1, 3}, 27)});
}

TEST_CASE("gradcheck: cross_entropy") {
  const std::vector<int32_t> t4 = {2, 0, 4, 4};
  CHECK_GRADCHECK([&](const Vars& v) { return cross_entropy(v[0], t4); },
                  {rand64({4, 5}, 30, 2.0)});
  const std::vector<int32_t> t6 = {0, 6, 3, 1, 1, 5};
  CHECK_GRADCHECK([&](const Vars& v) { return cross_entropy(v[0], t6); },
                  {rand64({2, 3, 7}, 31, 2.0)});
  const std::vector<int32_t> t1 = {0};
  CHECK_GRADCHECK([&](const Vars& v) { return cross_entropy(v[0], t1); }, {rand64({1, 3}, 32)});
  // Logits as a transposed view (non-contiguous).
  const std::vector<int32_t> t3 = {1, 0, 3};
  CHECK_GRADCHECK([&](const Vars& v) { return cross_entropy(transpose(v[0], 0, 1), t3); },
                  {rand64({4, 3}, 33)});
  // Scaled by a later op: the incoming gradient is not 1.
  CHECK_GRADCHECK([&](const Vars& v) { return mul_scalar(cross_entropy(v[0], t4), -2.5); },
                  {rand64({4, 5}, 34)});
}

TEST_CASE("gradcheck: the fused ops chained as in a transformer block") {
  // x [1, 4, 6] → RMSNorm → q, k, v (GQA: 2 query heads, 1 KV head, dh = 3)
  // → RoPE on q, k → attention → output projection → logits → cross-entropy.
  const std::vector<int32_t> targets = {1, 0, 4, 2};
  CHECK_GRADCHECK(
      [&](const Vars& v) {
        const Variable h = rms_norm(v[0], v[1], 1e-6);
        const Variable q = rope(reshape(linear(h, v[2]), {1, 4, 2, 3}), 2, 10000.0);
        const Variable k = rope(reshape(linear(h, v[3]), {1, 4, 1, 3}), 2, 10000.0);
        const Variable val = reshape(linear(h, v[4]), {1, 4, 1, 3});
        const Variable o = reshape(causal_attention(q, k, val, 1 / std::sqrt(3.0)), {1, 4, 6});
        return cross_entropy(linear(add(v[0], o), v[5]), targets);
      },
      {rand64({1, 4, 6}, 40), rand64({6}, 41), rand64({6, 6}, 42, 0.5), rand64({3, 6}, 43, 0.5),
       rand64({3, 6}, 44, 0.5), rand64({5, 6}, 45, 0.5)});
}
