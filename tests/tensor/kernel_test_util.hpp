// Helpers for the kernel tests: run a check on every compiled Highway target,
// the lengths that exercise vector tails, random inputs, and a closeness
// check that reports the first bad element instead of a million CHECKs.
#pragma once

#include <doctest/doctest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attnlab/tensor/kernels/kernels.hpp"
#include "attnlab/tensor/tensor.hpp"

namespace attnlab::test {

// Runs body() once per SIMD target that this CPU supports and the library
// was compiled for (e.g. AVX3, AVX2, SSE4, SSSE3, SCALAR), so a bug in one
// target's code path cannot hide behind the best target of the test machine.
template <typename Body>
void for_each_target(Body&& body) {
  struct Restore {
    ~Restore() { hwy::SetSupportedTargetsForTest(0); }
  } restore;
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string target_name = hwy::TargetName(target);
    CAPTURE(target_name);
    REQUIRE(kernels::simd_target_name() == target_name);
    body();
  }
}

// Lengths around every vector width that matters, and one large length that
// also takes the multi-threaded path.
inline std::vector<int64_t> tail_lengths(DType dtype) {
  std::vector<int64_t> n = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100003};
  const int64_t lanes = kernels::simd_lanes(dtype);
  for (int64_t k : {lanes - 1, lanes, lanes + 1, 4 * lanes - 1, 4 * lanes + 1}) n.push_back(k);
  std::sort(n.begin(), n.end());
  n.erase(std::unique(n.begin(), n.end()), n.end());
  return n;
}

inline constexpr DType kDTypes[] = {DType::F32, DType::F64};

// |got - want| <= atol + rtol·|want| everywhere (NaN matches NaN, inf matches
// the same inf). One CHECK, naming the first element that fails.
inline void check_close(const std::vector<double>& got, const std::vector<double>& want,
                        double rtol, double atol = 0.0) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok;
    if (std::isnan(w))
      ok = std::isnan(g);
    else if (std::isinf(w))
      ok = g == w;
    else
      ok = std::abs(g - w) <= atol + rtol * std::abs(w);
    if (!ok) {
      FAIL_CHECK("element " << i << " of " << got.size() << ": got " << g << ", want " << w);
      return;
    }
  }
}

inline double tolerance(DType dtype) {
  return dtype == DType::F32 ? 1e-5 : 1e-12;
}

}  // namespace attnlab::test
