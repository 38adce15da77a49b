// The synthetic tasks' generator: deterministic from the seed, answers right
// by construction (checked against the sequence itself), held-out sequences
// apart from the training ones, refusals of tasks that do not fit.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/synthetic_tasks.hpp"

using namespace attnlab;

namespace {

std::string error_of(const SyntheticTask& t) {
  try {
    t.validate();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The T + 1 tokens of row r: inputs then the last target.
std::vector<int32_t> sequence(const TaskBatch& b, int64_t r) {
  std::vector<int32_t> x(b.inputs.begin() + r * b.seq_len, b.inputs.begin() + (r + 1) * b.seq_len);
  x.push_back(b.targets[static_cast<size_t>((r + 1) * b.seq_len - 1)]);
  return x;
}

}  // namespace

TEST_CASE("a task batch is a function of the seed, the stream and the sequence index") {
  for (TaskKind kind : {TaskKind::kRecall, TaskKind::kInduction}) {
    const SyntheticTask t{kind, 64, 64, 8};
    const TaskBatch a = task_batch(t, 7, TaskStream::kTrain, 0, 6);
    const TaskBatch again = task_batch(t, 7, TaskStream::kTrain, 0, 6);
    CHECK(a.inputs == again.inputs);
    CHECK(a.targets == again.targets);
    CHECK(a.answer_rows == again.answer_rows);
    // Sequence 4 is the same drawn in a batch from 0 or from 4.
    const TaskBatch later = task_batch(t, 7, TaskStream::kTrain, 4, 1);
    CHECK(sequence(later, 0) == sequence(a, 4));
    CHECK(task_batch(t, 8, TaskStream::kTrain, 0, 6).inputs != a.inputs);
    // Targets are the inputs shifted by one.
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t i = 0; i + 1 < t.seq_len; ++i)
        CHECK(a.targets[static_cast<size_t>(r * 64 + i)] ==
              a.inputs[static_cast<size_t>(r * 64 + i + 1)]);
  }
}

TEST_CASE("recall: each query's answer is the value paired with its key") {
  for (int64_t pairs : {1, 4, 16}) {
    CAPTURE(pairs);
    const SyntheticTask t{TaskKind::kRecall, 64, 64, pairs};
    const TaskBatch b = task_batch(t, 1337, TaskStream::kTrain, 0, 20);
    REQUIRE(b.answer_rows.size() == static_cast<size_t>(20 * pairs));
    const int32_t keys = 31;  // (64 − 1) / 2
    for (int64_t r = 0; r < 20; ++r) {
      const std::vector<int32_t> x = sequence(b, r);
      std::set<int32_t> pair_keys, queried;
      for (int64_t i = 0; i < pairs; ++i) {
        CHECK(x[2 * i] >= 1);
        CHECK(x[2 * i] <= keys);
        CHECK(x[2 * i + 1] > keys);
        CHECK(x[2 * i + 1] < 64);
        pair_keys.insert(x[2 * i]);
      }
      CHECK(pair_keys.size() == static_cast<size_t>(pairs));  // distinct keys
      // Filler between the pairs and the queries.
      for (int64_t i = 2 * pairs; i < 65 - 2 * pairs; ++i) CHECK(x[i] == 0);
      for (int64_t j = 0; j < pairs; ++j) {
        const size_t n = static_cast<size_t>(r * pairs + j);
        const int32_t row = b.answer_rows[n];
        CHECK(row / 64 == r);
        CHECK(b.answer_index[n] == j);
        const int32_t key = b.inputs[static_cast<size_t>(row)];
        queried.insert(key);
        int32_t value = -1;
        for (int64_t i = 0; i < pairs; ++i)
          if (x[2 * i] == key) value = x[2 * i + 1];
        CHECK(b.targets[static_cast<size_t>(row)] == value);
      }
      CHECK(queried == pair_keys);  // every key asked once
    }
  }
}

TEST_CASE("induction: the answers are the second copy, equal to the first") {
  const SyntheticTask t{TaskKind::kInduction, 16, 40, 12};
  const TaskBatch b = task_batch(t, 3, TaskStream::kHeldOut, 5, 10);
  REQUIRE(b.answer_rows.size() == 120u);
  for (int64_t r = 0; r < 10; ++r) {
    const std::vector<int32_t> x = sequence(b, r);
    for (int64_t j = 0; j < 12; ++j) {
      const size_t n = static_cast<size_t>(r * 12 + j);
      CHECK(b.answer_index[n] == j);
      CHECK(b.answer_rows[n] == r * 40 + 41 - 12 + j - 1);
      CHECK(b.targets[static_cast<size_t>(b.answer_rows[n])] == x[j]);  // s_j of the first copy
      CHECK(x[j] >= 1);
      CHECK(x[j] < 16);
    }
    for (int64_t i = 12; i < 41 - 12; ++i) CHECK(x[i] == 0);
  }
}

TEST_CASE("held-out sequences are not training sequences") {
  const SyntheticTask t{TaskKind::kRecall, 64, 64, 4};
  const TaskBatch train = task_batch(t, 1337, TaskStream::kTrain, 0, 400);
  const TaskBatch held = task_batch(t, 1337, TaskStream::kHeldOut, 0, 400);
  std::set<std::vector<int32_t>> seen;
  for (int64_t r = 0; r < 400; ++r) seen.insert(sequence(train, r));
  CHECK(seen.size() == 400u);
  for (int64_t r = 0; r < 400; ++r) CHECK(seen.count(sequence(held, r)) == 0);
}

TEST_CASE("a task that does not fit is refused, naming what to change") {
  CHECK(error_of({TaskKind::kRecall, 64, 64, 32}).find("needs 32 distinct keys") !=
        std::string::npos);
  CHECK(error_of({TaskKind::kRecall, 128, 64, 17}).find("context of at least 67 tokens") !=
        std::string::npos);
  CHECK(error_of({TaskKind::kRecall, 128, 64, 16}).empty());  // 4·16 = 64 + 1 − 1
  CHECK(error_of({TaskKind::kInduction, 64, 64, 33}).find("at least 65 tokens") !=
        std::string::npos);
  CHECK(error_of({TaskKind::kInduction, 2, 64, 4}).find("vocabulary") != std::string::npos);
  CHECK(error_of({TaskKind::kInduction, 64, 64, 0}).find("copied length ≥ 1") != std::string::npos);
  CHECK_THROWS_AS(task_kind_from_name("copy"), Error);
}
