// Synthetic tasks that measure what attention is for, finding and copying
// information from the context, generated on the fly from a seed (no files).
//
// Token ids: 0 is filler; the other V − 1 ids are the task's symbols. Each
// sequence has T + 1 tokens x[0..T]: the model reads x[0..T−1] and predicts
// x[1..T], and only the *answer* positions count (loss and accuracy).
//
// recall — multi-query associative recall, MQAR (Zoology, Arora et al. 2023):
//     k1 v1 k2 v2 … kP vP  0 0 … 0  q1 a1 q2 a2 … qP aP
//   P key–value pairs (keys distinct, drawn from ids 1 … K, K = (V − 1)/2;
//   values from K + 1 … V − 1, repeats allowed), filler, then every key once
//   as a query qj in a random order, each followed by its value aj. The
//   answer positions are the queries: reading qj, predict aj. The filler
//   puts the queries at the end of the context, so the distance from a query
//   to its pair grows with T. Needs T + 1 ≥ 4P and P ≤ K.
//
// induction — copy a random sequence (induction heads, Olsson et al. 2022):
//     s1 s2 … sL  0 0 … 0  s1 s2 … sL
//   L symbols drawn uniformly from 1 … V − 1, filler, then the same L again
//   ending at x[T]. The answers are the second copy: every token of it is
//   predicted from the token before (the first from the filler before it,
//   whose place is fixed). Needs T + 1 ≥ 2L.
//
// Sequence i of a stream comes from a generator seeded by (seed, stream, i)
// alone: the same seed gives the same sequences on every machine, and the
// held-out stream (evaluation) never shares a generator seed with the
// training stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

enum class TaskKind { kRecall, kInduction };
enum class TaskStream { kTrain, kHeldOut };

struct SyntheticTask {
  TaskKind kind = TaskKind::kRecall;
  int64_t vocab_size = 128;  // V, the filler 0 included
  int64_t seq_len = 128;     // T, the context the model reads
  int64_t size = 8;          // recall: pairs P; induction: copied length L

  // Refuses (Error) a task that does not fit (see the rules above).
  void validate() const;
  // Answers per sequence: P for recall, L for induction.
  int64_t answers_per_sequence() const { return size; }
  std::string name() const;  // "recall", "induction"
  // "pairs" for recall, "copied length" for induction: the difficulty axis.
  std::string size_name() const;
};

TaskKind task_kind_from_name(const std::string& name);  // "recall", "induction"

// B sequences, row-major [B, T]: inputs and targets as a language model's
// batch; answer_rows[n] is the flat index b·T + t of the n-th answer (the
// target there is its answer), answer_index[n] its rank j within its sequence
// (query j of recall, token j of the copy), in the same order.
struct TaskBatch {
  int64_t batch_size = 0, seq_len = 0;
  std::vector<int32_t> inputs, targets;
  std::vector<int32_t> answer_rows;
  std::vector<int32_t> answer_index;
};

// Sequences first, first + 1, …, first + batch_size − 1 of the stream.
TaskBatch task_batch(const SyntheticTask& task, uint64_t seed, TaskStream stream, int64_t first,
                     int64_t batch_size);

}  // namespace attnlab
