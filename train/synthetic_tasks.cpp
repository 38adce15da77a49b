#include "attnlab/train/synthetic_tasks.hpp"

#include <algorithm>
#include <numeric>

#include "attnlab/tensor/error.hpp"
#include "attnlab/tensor/random.hpp"

namespace attnlab {
namespace {

// splitmix64's finaliser: nearby inputs give unrelated outputs.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t sequence_seed(uint64_t seed, TaskStream stream, int64_t index) {
  const uint64_t salt = stream == TaskStream::kTrain ? 0x7261696eull : 0x68656c64ull;
  return mix(mix(mix(seed) ^ salt) + static_cast<uint64_t>(index));
}

int64_t key_count(const SyntheticTask& t) {
  return (t.vocab_size - 1) / 2;
}

// One sequence of T + 1 tokens and the places of its answers in it (the index
// t of the input whose next token x[t + 1] is the answer).
void recall_sequence(const SyntheticTask& t, Rng& rng, std::vector<int32_t>& x,
                     std::vector<int64_t>& answers) {
  const int64_t P = t.size, K = key_count(t), values = t.vocab_size - 1 - K;
  std::vector<int32_t> keys(static_cast<size_t>(K));
  std::iota(keys.begin(), keys.end(), 1);
  for (int64_t i = 0; i < P; ++i)  // a partial Fisher–Yates: P distinct keys
    std::swap(keys[static_cast<size_t>(i)],
              keys[static_cast<size_t>(i + static_cast<int64_t>(rng.below(K - i)))]);
  std::vector<int32_t> value(static_cast<size_t>(P));
  for (int64_t i = 0; i < P; ++i) {
    value[static_cast<size_t>(i)] =
        static_cast<int32_t>(1 + K + static_cast<int64_t>(rng.below(values)));
    x[static_cast<size_t>(2 * i)] = keys[static_cast<size_t>(i)];
    x[static_cast<size_t>(2 * i + 1)] = value[static_cast<size_t>(i)];
  }
  std::vector<int64_t> order(static_cast<size_t>(P));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = P - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[rng.below(static_cast<uint64_t>(i + 1))]);
  const int64_t queries = t.seq_len + 1 - 2 * P;  // where the queries start
  for (int64_t j = 0; j < P; ++j) {
    const size_t pair = static_cast<size_t>(order[static_cast<size_t>(j)]);
    x[static_cast<size_t>(queries + 2 * j)] = keys[pair];
    x[static_cast<size_t>(queries + 2 * j + 1)] = value[pair];
    answers.push_back(queries + 2 * j);
  }
}

void induction_sequence(const SyntheticTask& t, Rng& rng, std::vector<int32_t>& x,
                        std::vector<int64_t>& answers) {
  const int64_t L = t.size, copy = t.seq_len + 1 - L;
  for (int64_t i = 0; i < L; ++i) {
    const auto s = static_cast<int32_t>(1 + rng.below(static_cast<uint64_t>(t.vocab_size - 1)));
    x[static_cast<size_t>(i)] = x[static_cast<size_t>(copy + i)] = s;
    answers.push_back(copy + i - 1);
  }
}

}  // namespace

void SyntheticTask::validate() const {
  ATTN_CHECK(vocab_size >= 3 && vocab_size <= (int64_t{1} << 24),
             "a {} task needs a vocabulary of 3 … 2^24 tokens, got {}", name(), vocab_size);
  ATTN_CHECK(seq_len >= 2, "a {} task needs a context of at least 2 tokens, got {}", name(),
             seq_len);
  ATTN_CHECK(size >= 1, "a {} task needs {} ≥ 1, got {}", name(), size_name(), size);
  if (kind == TaskKind::kRecall) {
    ATTN_CHECK(size <= key_count(*this),
               "recall with {} pairs needs {} distinct keys, but a vocabulary of {} has {} (keys "
               "are ids 1 … (V − 1)/2): raise --vocab",
               size, size, vocab_size, key_count(*this));
    ATTN_CHECK(seq_len + 1 >= 4 * size,
               "recall with {} pairs needs a context of at least {} tokens (4 per pair, less one), "
               "got {}: raise --context or lower --pairs",
               size, 4 * size - 1, seq_len);
  } else {
    ATTN_CHECK(seq_len + 1 >= 2 * size,
               "induction copying {} tokens needs a context of at least {} tokens, got {}", size,
               2 * size - 1, seq_len);
  }
}

std::string SyntheticTask::name() const {
  return kind == TaskKind::kRecall ? "recall" : "induction";
}

std::string SyntheticTask::size_name() const {
  return kind == TaskKind::kRecall ? "pairs" : "copied length";
}

TaskKind task_kind_from_name(const std::string& name) {
  if (name == "recall") return TaskKind::kRecall;
  ATTN_CHECK(name == "induction", "unknown synthetic task '{}' (recall or induction)", name);
  return TaskKind::kInduction;
}

TaskBatch task_batch(const SyntheticTask& task, uint64_t seed, TaskStream stream, int64_t first,
                     int64_t batch_size) {
  task.validate();
  ATTN_CHECK(first >= 0 && batch_size >= 1, "task batch: first {} and size {} must be ≥ 0 and ≥ 1",
             first, batch_size);
  const int64_t T = task.seq_len;
  TaskBatch b;
  b.batch_size = batch_size;
  b.seq_len = T;
  b.inputs.resize(static_cast<size_t>(batch_size * T));
  b.targets.resize(static_cast<size_t>(batch_size * T));
  std::vector<int32_t> x(static_cast<size_t>(T + 1));
  std::vector<int64_t> answers;
  for (int64_t r = 0; r < batch_size; ++r) {
    Rng rng(sequence_seed(seed, stream, first + r));
    std::fill(x.begin(), x.end(), 0);
    answers.clear();
    if (task.kind == TaskKind::kRecall)
      recall_sequence(task, rng, x, answers);
    else
      induction_sequence(task, rng, x, answers);
    std::copy(x.begin(), x.end() - 1, b.inputs.begin() + r * T);
    std::copy(x.begin() + 1, x.end(), b.targets.begin() + r * T);
    for (size_t j = 0; j < answers.size(); ++j) {
      b.answer_rows.push_back(static_cast<int32_t>(r * T + answers[j]));
      b.answer_index.push_back(static_cast<int32_t>(j));
    }
  }
  return b;
}

}  // namespace attnlab
