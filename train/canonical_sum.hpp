// The one order in which a step's micro-batch gradients are added, whatever
// the number of processes (ranks) that compute them.
//
// Floating-point addition is not associative, so "the sum of the A
// micro-batch gradients" has as many values as there are ways to bracket it.
// attnlab fixes one: a balanced binary tree over the micro-batch index,
//
//   S(lo, hi) = g_lo                               when hi − lo = 1
//             = S(lo, mid) + S(mid, hi),  mid = lo + ⌊(hi − lo)/2⌋  otherwise
//
// and the step's gradient is S(0, A) (A = --accum; each g_i is the gradient of
// loss_i / A, so S is the gradient of the mean loss). With N ranks, rank r
// computes the micro-batches [r·A/N, (r+1)·A/N) (A must be a multiple of N).
// Its range is a union of whole subtrees of S: the largest ones are its
// "nodes", which it sums locally, bracketed as S brackets them. The nodes of
// all ranks are then brought together and added with the same bracketing up
// to the root. When N is a power of two, each rank's range is exactly one
// node (the tree splits [0, A) in halves, then quarters, …), so each rank
// sends one partial sum: the traffic of an ordinary reduce-scatter. For
// other N, a rank has a few nodes (at most about 2·log₂(A/N)).
//
// Every N thus computes exactly the same additions on the same values: the
// bits of the gradient, hence of the whole run, do not depend on N. One
// process (N = 1) sums the same tree.
#pragma once

#include <cstdint>
#include <vector>

namespace attnlab {

// A subtree of S: the micro-batches [lo, hi).
struct MicroBatchSpan {
  int64_t lo = 0, hi = 0;
  bool operator==(const MicroBatchSpan&) const = default;
};

// Where S splits [lo, hi) (hi − lo ≥ 2).
inline int64_t tree_split(int64_t lo, int64_t hi) {
  return lo + (hi - lo) / 2;
}

// How one rank sums its micro-batches, as a little stack machine run in
// micro-batch order: kLeaf pushes the next micro-batch's gradient, kAdd pops
// b, pops a, and pushes a + b. At the end the stack holds the gradients of
// `nodes`, in order.
struct LocalSumPlan {
  static constexpr int64_t kAdd = -1;
  std::vector<int64_t> ops;           // a micro-batch index (kLeaf), or kAdd
  std::vector<MicroBatchSpan> nodes;  // the maximal subtrees of S inside [first, last)
};

// The plan of the rank that owns micro-batches [first, last) out of [0, total).
LocalSumPlan plan_local_sum(int64_t total, int64_t first, int64_t last);

// The micro-batches [first, last) of `rank` among `ranks` (total a multiple of ranks).
MicroBatchSpan micro_batches_of(int64_t total, int ranks, int rank);

}  // namespace attnlab
