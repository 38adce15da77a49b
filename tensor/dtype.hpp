// The element types a Tensor can hold. f32 is for training and inference; f64
// is for gradient checking, where finite differences need the extra digits.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

#include "attnlab/tensor/error.hpp"

namespace attnlab {

enum class DType { F32, F64 };

inline size_t dtype_size(DType d) {
  return d == DType::F32 ? 4 : 8;
}
inline std::string_view dtype_name(DType d) {
  return d == DType::F32 ? "f32" : "f64";
}

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}

// Calls fn.template operator()<T>() with T = float or double, matching d:
//   dispatch_dtype(t.dtype(), [&]<typename T>() { use(t.data<T>()); });
template <typename Fn>
decltype(auto) dispatch_dtype(DType d, Fn&& fn) {
  if (d == DType::F32) return std::forward<Fn>(fn).template operator()<float>();
  return std::forward<Fn>(fn).template operator()<double>();
}

}  // namespace attnlab
