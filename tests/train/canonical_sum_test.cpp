// The canonical order of summing micro-batch gradients (canonical_sum.hpp):
// whatever the number of ranks, the local sums of the ranks combined as the
// tree S brackets them give the bits of S computed by one process.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>

#include "attnlab/train/canonical_sum.hpp"
#include "attnlab/train/data_parallel.hpp"

namespace attnlab {
namespace {

// S(lo, hi) over float leaves, straight from its definition.
float tree_sum(const std::vector<float>& g, int64_t lo, int64_t hi) {
  if (hi - lo == 1) return g[static_cast<size_t>(lo)];
  const int64_t mid = tree_split(lo, hi);
  return tree_sum(g, lo, mid) + tree_sum(g, mid, hi);
}

// One rank's stack machine over its micro-batches: the sums of its nodes.
std::vector<float> run_plan(const LocalSumPlan& plan, const std::vector<float>& g) {
  std::vector<float> stack;
  for (int64_t op : plan.ops) {
    if (op == LocalSumPlan::kAdd) {
      const float b = stack.back();
      stack.pop_back();
      stack.back() += b;
    } else {
      stack.push_back(g[static_cast<size_t>(op)]);
    }
  }
  return stack;
}

// The root from the nodes of every rank, bracketed as S.
float combine(int64_t lo, int64_t hi, const std::map<std::pair<int64_t, int64_t>, float>& parts) {
  if (auto it = parts.find({lo, hi}); it != parts.end()) return it->second;
  const int64_t mid = tree_split(lo, hi);
  return combine(lo, mid, parts) + combine(mid, hi, parts);
}

}  // namespace

TEST_CASE("canonical sum: every number of ranks gives the bits of one process") {
  std::mt19937 gen(7);
  // Values of very different sizes, so that another bracketing would change the bits.
  std::uniform_real_distribution<float> mantissa(-1, 1), exponent(-12, 12);
  for (int64_t total : {1, 2, 3, 4, 6, 8, 12, 16, 24, 36}) {
    std::vector<float> g;
    for (int64_t i = 0; i < total; ++i) g.push_back(mantissa(gen) * std::exp2(exponent(gen)));
    const float one = tree_sum(g, 0, total);
    CAPTURE(total);
    for (int ranks = 1; ranks <= total; ++ranks) {
      if (total % ranks != 0) continue;
      CAPTURE(ranks);
      std::map<std::pair<int64_t, int64_t>, float> parts;
      int64_t covered = 0;
      for (int r = 0; r < ranks; ++r) {
        const MicroBatchSpan span = micro_batches_of(total, ranks, r);
        CHECK(span.hi - span.lo == total / ranks);
        const LocalSumPlan plan = plan_local_sum(total, span.lo, span.hi);
        const std::vector<float> sums = run_plan(plan, g);
        REQUIRE(sums.size() == plan.nodes.size());
        for (size_t k = 0; k < sums.size(); ++k) {
          const MicroBatchSpan node = plan.nodes[k];
          CHECK(node.lo >= span.lo);
          CHECK(node.hi <= span.hi);
          covered += node.hi - node.lo;
          // A node's local sum is S over it, exactly.
          CHECK(sums[k] == tree_sum(g, node.lo, node.hi));
          parts[{node.lo, node.hi}] = sums[k];
        }
        // A power-of-two number of ranks: each rank's range is one node.
        if ((ranks & (ranks - 1)) == 0) CHECK(plan.nodes.size() == 1);
      }
      CHECK(covered == total);
      CHECK(combine(0, total, parts) == one);
    }
  }
}

TEST_CASE("canonical sum: the tree differs from a left fold (the order matters)") {
  // 1 + 2^-24 + 2^-24 + ... : a left fold loses each tiny term against 1; the
  // tree adds the tiny ones together first.
  std::vector<float> g = {1.0f, 0x1p-24f, 0x1p-24f, 0x1p-24f};
  float fold = 0;
  for (float x : g) fold += x;
  CHECK(fold == 1.0f);
  CHECK(tree_sum(g, 0, 4) == 1.0f + 0x1p-23f);
}

TEST_CASE("share_of deals n items in contiguous blocks that cover them once") {
  for (int64_t n : {0, 1, 5, 100, 101})
    for (int ranks : {1, 2, 3, 4, 7}) {
      int64_t next = 0;
      for (int r = 0; r < ranks; ++r) {
        const ItemRange s = share_of(n, ranks, r);
        CHECK(s.begin == next);
        CHECK(s.size() >= n / ranks);
        CHECK(s.size() <= n / ranks + 1);
        next = s.end;
      }
      CHECK(next == n);
    }
}

TEST_CASE("plan_local_sum refuses a range outside the micro-batches") {
  CHECK_THROWS_AS(plan_local_sum(4, 2, 5), Error);
  CHECK_THROWS_AS(micro_batches_of(6, 4, 0), Error);
}

}  // namespace attnlab
