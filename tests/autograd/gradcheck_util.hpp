// Helpers for the gradient-check tests.
#pragma once

#include <doctest/doctest.h>

#include "attnlab/autograd/gradcheck.hpp"
#include "attnlab/autograd/ops.hpp"

namespace attnlab::testing {

// A random f64 tensor (seeded by the shape, so each test is reproducible).
inline Tensor rand64(const Shape& shape, uint64_t seed = 1, double scale = 1.0) {
  Rng rng(seed * 7919 + shape_numel(shape));
  return Tensor::normal(shape, rng, 0.0, scale, DType::F64);
}

// Asserts that f's backward matches finite differences on these inputs.
#define CHECK_GRADCHECK(f, ...)                                  \
  do {                                                           \
    const auto result_ = ::attnlab::gradcheck((f), __VA_ARGS__); \
    INFO(result_.message);                                       \
    CHECK(result_.ok);                                           \
  } while (0)

}  // namespace attnlab::testing
