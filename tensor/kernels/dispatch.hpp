// The dispatch plumbing every Highway kernel file shares, so that a file
// states each kernel once, as a template over the element type:
//
//   namespace attnlab::HWY_NAMESPACE {        // compiled once per SIMD target
//   template <typename T> void Forward(T* y, const T* x, int64_t n) { ... }
//   ATTNLAB_KERNEL_F32_F64(Forward);          // ForwardF32, ForwardF64
//   }
//   #if HWY_ONCE
//   ATTNLAB_EXPORT_F32_F64(Forward);          // their dispatch tables
//   ... ATTNLAB_DISPATCH(T, Forward)(y, x, n); // the best target's Forward<T>
//
// Why names per type: HWY_EXPORT takes the plain name of one function, not a
// template, so Forward<float> and Forward<double> get one each (references to
// the instances, no wrapper code). Internal to tensor/, like kernels.hpp.
#pragma once

#include <type_traits>

namespace attnlab::kernels {

// f when T is float, d when T is double: the table entry for T.
template <typename T, class F, class D>
constexpr auto float_or_double(F f, D d) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  if constexpr (std::is_same_v<T, float>)
    return f;
  else
    return d;
}

}  // namespace attnlab::kernels

// Inside HWY_NAMESPACE, after the template Name: NameF32 and NameF64.
#define ATTNLAB_KERNEL_F32_F64(Name)                               \
  [[maybe_unused]] static constexpr auto& Name##F32 = Name<float>; \
  [[maybe_unused]] static constexpr auto& Name##F64 = Name<double>

// In the HWY_ONCE part (one namespace for the file): the dispatch tables.
#define ATTNLAB_EXPORT_F32_F64(Name) \
  HWY_EXPORT(Name##F32);             \
  HWY_EXPORT(Name##F64)

// The chosen SIMD target's Name<T> (T float or double), to call.
#define ATTNLAB_DISPATCH(T, Name)                                         \
  ::attnlab::kernels::float_or_double<T>(HWY_DYNAMIC_DISPATCH(Name##F32), \
                                         HWY_DYNAMIC_DISPATCH(Name##F64))
