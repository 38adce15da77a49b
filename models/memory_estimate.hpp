// How much memory a training run or a sampling session needs, estimated from
// the config and the sizes asked for, before anything is allocated; and how
// much the machine has. `attnlab info` prints the estimate, `attnlab train`
// (and sample) refuse, with it, a run that does not fit.
//
// The estimate is a deliberately generous upper bound in f32 (4 bytes a number;
// P parameters, N = B·T tokens a step, L layers):
//
//   weights, AdamW m and v                   12·P bytes
//   gradients                                12·P bytes: the gradients (4·P) and room
//                                            for twice as much again (temporaries of
//                                            the backward pass and of the checkpoint
//                                            writes; a model of many experts, measured
//                                            below, needs it)
//   activations kept for the backward pass   L · A_layer   (below)
//   + one layer's activation gradients       A_layer      (the backward's working set)
//   logits                                   3·N·V floats: logits, softmax, their gradient
//   + embedding, final norm                  3·N·D floats
//   data                                     5 bytes per corpus byte (the text while it
//                                            is tokenized, then 4-byte token ids)
//   evaluation batches                       8 bytes per token id of the fixed val batches
//   a fixed overhead                         32 MiB (code, OpenBLAS and OpenMP buffers)
//
// then × 1.25 for the tensor pool's slack (freed buffers are cached by size).
// A_layer, in floats, with Hd = H·dh, Kd = Hkv·dh, F the FFN width:
//   norms       4·N·D   (the input and output of both RMSNorms)
//   attention   3·N·Hd + 3·N·Kd + N·H + 2·N·D   (mha/gqa/mqa: q, k, v, roped
//               q and k, the output, the log-sum-exp, wo's output and the residual)
//               mla: N·(dcq + dc + 2·dr) + N·H·(5·dh + 2·dr) + 2·N·H·(dh + dr)
//                    + N·H + 2·N·D
//               with dropout > 0 the T×T scores are materialised: + 5·B·H·T²
//               (scores, mask, softmax, dropout mask, dropped probabilities)
//   ffn         swiglu 4·N·F + 2·N·D (gate, up, silu, product, down, residual);
//               relu 3·N·F + 3·N·D; a MoE layer: 2·N·E for the router,
//               1.5·N·(k + S)·(FFN + 3·D): N·(k + S) tokens each through an
//               expert FFN, gathered, gated and concatenated, × 1.5 because
//               the expert sizes change every step (more pool buckets)
//   dropout     + 4·N·D (the masks of the two residual branches)
// Measured peaks (maximum resident set of `attnlab train --threads 2`) lie
// below it: baby 64 MiB (estimate 124 MiB); small 795 MiB (1.3 GiB); small
// mla, B=16: 1.1 GiB (1.8 GiB); small with 4 experts + 1 shared, B=16, 20
// steps: 4.3 GiB (5.2 GiB); small gqa with 8 experts, top-1, B=8: 2.0 GiB
// (2.6 GiB); baby with 4 + 1 experts, B=16, 150 steps: 325 MiB (376 MiB).
//
// Sampling (a KV-cached decoder, batch of S sequences, context C):
//   weights     the decoder's, 4·P bytes (nothing when they are in memory
//               already: the check of `attnlab sample` runs after loading)
//   KV cache    S·C · kv_cache_floats_per_token() floats
//   a prefill   one layer's activations without gradients for R = min(S·C, 4096)
//               rows (the decoder prefills in chunks of at most 4096 rows), and
//               2·R·V floats of logits and probabilities
//   + the 32 MiB overhead, × 1.25.
// Loading takes more for a moment: a training checkpoint (weights and AdamW
// state, read in f64, then absorbed) about 40·P bytes, a converted decoder
// checkpoint about 8·P (sampling_load_bytes).
//
// All arithmetic is in double, so an absurd config gives an absurd (finite)
// number rather than an overflow.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "attnlab/models/config.hpp"
#include "attnlab/models/kv_cache.hpp"

namespace attnlab {

struct MemoryEstimate {
  double weights_bytes = 0;
  double gradients_bytes = 0;
  double optimizer_bytes = 0;    // AdamW m and v
  double activations_bytes = 0;  // everything that grows with B·T, logits included
  double cache_bytes = 0;        // the KV cache (sampling)
  double data_bytes = 0;         // the corpus and evaluation batches
  double overhead_bytes = 0;     // fixed, and the pool's slack
  double total_bytes = 0;

  // "weights 12.0 MiB, gradients 12.0 MiB, AdamW state 24.0 MiB, ...": the non-zero parts.
  std::string parts() const;
  // "about 1.3 GiB (weights 12.0 MiB, ...)": the total and its parts.
  std::string describe() const;
};

// A training step of batch_size sequences of seq_len tokens (dropout > 0
// materialises attention scores), on a corpus of corpus_bytes bytes with
// eval_batches fixed validation batches.
MemoryEstimate estimate_training_memory(const ModelConfig& config, int64_t batch_size,
                                        int64_t seq_len, double dropout, int64_t corpus_bytes,
                                        int64_t eval_batches = 100);
// Decoding batch_size sequences with a KV cache of context_len tokens each,
// in kv_cache's numbers (bf16: 2 bytes each, f32: 4); weights_loaded: the
// weights are in memory already (not counted).
MemoryEstimate estimate_sampling_memory(const ModelConfig& config, int64_t batch_size,
                                        int64_t context_len, bool weights_loaded = false,
                                        KvCacheFormat kv_cache = KvCacheFormat::F32);
// The most memory loading a checkpoint for sampling takes at once, in bytes:
// 40·P from a training checkpoint, 8·P from a converted decoder checkpoint.
double sampling_load_bytes(const ModelConfig& config, bool training_checkpoint);

// What this process may still allocate: the smallest of MemAvailable
// (/proc/meminfo), the cgroup's memory.max less its memory.current, and
// RLIMIT_AS / RLIMIT_DATA less what is in use. nullopt when none is known.
struct AvailableMemory {
  double bytes = 0;
  std::string source;  // "MemAvailable in /proc/meminfo", "RLIMIT_AS (ulimit -v)", ...
};
std::optional<AvailableMemory> available_memory();

// Refuses (an Error) an estimate larger than what is available:
//   "<what> needs about 83.2 TiB of memory (weights …), but only 21.3 GiB is
//    available (MemAvailable in /proc/meminfo): <advice>"
// Does nothing when available is nullopt (nothing known: let it try).
void check_memory_fits(const MemoryEstimate& estimate, const std::string& what,
                       const std::string& advice,
                       const std::optional<AvailableMemory>& available = available_memory());

// 1536 → "1.5 KiB"; bytes below 1 KiB as "512 B"; up to EiB, then in EiB.
std::string format_bytes(double bytes);

}  // namespace attnlab
