// Our f32 gemm (tensor/kernels/gemm.cpp) against its contract, bit for bit,
// on every SIMD target compiled and supported here: every element of C is
//   acc = 0; for p = 0..k−1: acc = std::fma(op(A)[i, p], op(B)[p, j], acc)
//   C[i, j] = beta == 0 ? alpha · acc : std::fma(beta, C[i, j], alpha · acc)
// whatever the transposes, sizes, strides and the target's vector width.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <limits>
#include <vector>

#include "attnlab/tensor/blas.hpp"
#include "attnlab/tensor/random.hpp"
#include "kernel_test_util.hpp"

using namespace attnlab;

namespace {

struct Case {
  bool ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  float alpha, beta;
};

// The contract, as the plainest loop.
void reference(const Case& s, const float* a, const float* b, float* c) {
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < s.k; ++p) {
        const float x = s.ta ? a[p * s.lda + i] : a[i * s.lda + p];
        const float y = s.tb ? b[j * s.ldb + p] : b[p * s.ldb + j];
        acc = std::fma(x, y, acc);
      }
      float& out = c[i * s.ldc + j];
      const float scaled = s.alpha * acc;
      out = s.beta == 0.0f ? scaled : std::fma(s.beta, out, scaled);
    }
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// Runs one case on the current target and compares every float of C's
// storage (the gaps between rows too: they must be left alone).
void check_case(const Case& s) {
  CAPTURE(s.ta);
  CAPTURE(s.tb);
  CAPTURE(s.m);
  CAPTURE(s.n);
  CAPTURE(s.k);
  CAPTURE(s.alpha);
  CAPTURE(s.beta);
  Rng rng(static_cast<uint64_t>(s.m * 1000003 + s.n * 1009 + s.k));
  const int64_t a_rows = s.ta ? s.k : s.m, b_rows = s.tb ? s.n : s.k;
  std::vector<float> a(static_cast<size_t>(a_rows * s.lda)), b(static_cast<size_t>(b_rows * s.ldb));
  // Values of mixed magnitude, so that the order of the FMAs shows in the bits.
  for (float& x : a)
    x = static_cast<float>(rng.normal() * std::exp2(static_cast<int>(rng.uniform() * 12) - 6));
  for (float& x : b) x = static_cast<float>(rng.normal());
  std::vector<float> want(static_cast<size_t>(s.m * s.ldc)), got(want.size());
  if (s.beta == 0.0f) {
    // C is never read: NaN garbage in it must not reach the result.
    std::fill(want.begin(), want.end(), std::numeric_limits<float>::quiet_NaN());
  } else {
    for (float& x : want) x = static_cast<float>(rng.normal());
  }
  got = want;
  reference(s, a.data(), b.data(), want.data());
  kernels::gemm_f32(s.ta, s.tb, s.m, s.n, s.k, s.alpha, a.data(), s.lda, b.data(), s.ldb, s.beta,
                    got.data(), s.ldc);
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.ldc; ++j) {
      const size_t at = static_cast<size_t>(i * s.ldc + j);
      if (bits(got[at]) != bits(want[at]) && !(std::isnan(got[at]) && std::isnan(want[at]))) {
        FAIL_CHECK("C[" << i << ", " << j << "]: got " << std::setprecision(9) << got[at]
                        << ", want " << want[at]);
        return;
      }
    }
}

}  // namespace

TEST_CASE("gemm_f32 gives the bits of sequential std::fma over k, on every target") {
  const int64_t sizes[] = {1, 2, 7, 17, 33, 100, 257};
  test::for_each_target([&] {
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t m : sizes)
          for (int64_t n : sizes)
            for (int64_t k : {int64_t(1), int64_t(7), int64_t(33), int64_t(257)}) {
              if (m * n * k > 1'000'000) continue;  // the scalar reference's time
              // Strides wider than the rows (by an odd amount), and a stride
              // that puts every row 4 KiB apart.
              const int64_t pad = (m + n + k) % 2 ? 3 : 1024 - (ta ? m : k) % 1024;
              Case s{ta, tb, m, n, k, (ta ? m : k) + pad, (tb ? k : n) + 5, n + 2, 1.0f, 0.0f};
              check_case(s);
            }
  });
}

TEST_CASE("gemm_f32: alpha and beta, beta 0 never reads C, and long k in passes") {
  test::for_each_target([&] {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        for (float alpha : {1.0f, -0.375f, 3.1f})
          for (float beta : {0.0f, 1.0f, 0.7f}) {
            check_case({ta, tb, 19, 50, 40, ta ? 19 : 40, tb ? 40 : 50, 50, alpha, beta});
          }
        // k past one pass (gemm.cpp's kPass = 768), with beta ≠ 0: the
        // accumulators wait between passes and C is read once, at the end.
        check_case({ta, tb, 37, 70, 1700, ta ? 37 : 1700, tb ? 1700 : 70, 71, 0.5f, 1.0f});
        check_case({ta, tb, 9, 130, 800, ta ? 9 : 800, tb ? 800 : 130, 130, 1.0f, 0.0f});
        // Enough rows and k for op(A) to be packed (m · k ≥ 2^18).
        check_case({ta, tb, 300, 100, 900, ta ? 300 : 900, tb ? 900 : 100, 100, 1.0f, 0.0f});
        // k = 0: C = beta · C.
        check_case({ta, tb, 3, 5, 0, ta ? 3 : 1, tb ? 1 : 5, 5, 1.0f, 0.5f});
      }
  });
}
