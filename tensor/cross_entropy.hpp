// Fused softmax cross-entropy over the last axis, one integer target per row:
//
//   lse_i  = log Σ_c e^(x_ic)                 (computed as m + log Σ e^(x − m))
//   loss_i = lse_i − x_i,target_i              (= −log softmax(x_i)[target_i])
//   loss   = mean_i loss_i
//
// Backward in one pass over the logits, recomputing softmax from the saved lse:
//
//   dx_ic = (e^(x_ic − lse_i) − [c = target_i]) · dloss / N
//
// so the N×V probabilities are never stored. Rows are split over OpenMP
// threads; the mean is summed in double in row order (thread-count
// independent). SIMD: Highway, dispatched at run time.
//
// The same in plain loops, to read first: tensor/reference/cross_entropy_reference.hpp
// (the tests hold this kernel to it).
#pragma once

#include <cstdint>
#include <span>

#include "attnlab/tensor/tensor.hpp"

namespace attnlab {

// ------------------------------------------------------------- raw kernels
// T is float or double; arrays contiguous; targets must lie in [0, V).
// losses (N), lse (N) ← logits (N, V), targets (N). losses may be null.
template <typename T>
void cross_entropy_forward(T* losses, T* lse, const T* logits, const int32_t* targets, int64_t N,
                           int64_t V);
// dlogits (N, V) ← logits (N, V), targets (N), lse (N), and the gradient of
// the mean loss, dloss (so each row gets dloss / N).
template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const int32_t* targets, const T* lse,
                            int64_t N, int64_t V, T dloss);

// ------------------------------------------------------- on tensors
// logits [..., V]; targets one per row (Error naming the row and value for a
// target outside [0, V), and both counts when they differ).
struct CrossEntropyResult {
  Tensor loss;  // [], the mean over rows, in logits' dtype
  Tensor lse;   // [N], log-sum-exp of each row, for backward
};
CrossEntropyResult cross_entropy_forward(const Tensor& logits, std::span<const int32_t> targets);
// dlogits shaped like logits.
Tensor cross_entropy_backward(const Tensor& logits, std::span<const int32_t> targets,
                              const Tensor& lse, double dloss);

}  // namespace attnlab
