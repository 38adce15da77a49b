#include "attnlab/train/canonical_sum.hpp"

#include "attnlab/tensor/error.hpp"

namespace attnlab {
namespace {

// The ops that sum the whole subtree [lo, hi), leaves in order.
void emit_subtree(int64_t lo, int64_t hi, std::vector<int64_t>& ops) {
  if (hi - lo == 1) {
    ops.push_back(lo);
    return;
  }
  const int64_t mid = tree_split(lo, hi);
  emit_subtree(lo, mid, ops);
  emit_subtree(mid, hi, ops);
  ops.push_back(LocalSumPlan::kAdd);
}

// Walks S from [lo, hi) down to the subtrees that lie inside [first, last).
void collect(int64_t lo, int64_t hi, int64_t first, int64_t last, LocalSumPlan& plan) {
  if (hi <= first || lo >= last) return;
  if (lo >= first && hi <= last) {
    emit_subtree(lo, hi, plan.ops);
    plan.nodes.push_back({lo, hi});
    return;
  }
  const int64_t mid = tree_split(lo, hi);
  collect(lo, mid, first, last, plan);
  collect(mid, hi, first, last, plan);
}

}  // namespace

LocalSumPlan plan_local_sum(int64_t total, int64_t first, int64_t last) {
  ATTN_CHECK(total >= 1 && 0 <= first && first <= last && last <= total,
             "plan_local_sum: micro-batches [{}, {}) out of {}", first, last, total);
  LocalSumPlan plan;
  collect(0, total, first, last, plan);
  return plan;
}

MicroBatchSpan micro_batches_of(int64_t total, int ranks, int rank) {
  ATTN_CHECK(ranks >= 1 && rank >= 0 && rank < ranks && total % ranks == 0,
             "micro_batches_of: {} micro-batches among {} ranks", total, ranks);
  const int64_t per_rank = total / ranks;
  return {rank * per_rank, (rank + 1) * per_rank};
}

}  // namespace attnlab
