// Data parallelism with the optimizer state sharded (ZeRO stage 1,
// Rajbhandari et al. 2020), whose results do not depend on the number of
// ranks. Every rank holds the whole model; a step's A = --accum micro-batches
// are dealt to the N ranks, A/N each, in contiguous blocks (canonical_sum.hpp).
// One step, on every rank (Trainer::step):
//
//   for each of its micro-batches i:     forward, backward into fresh gradients,
//                                        add_micro_batch(i)  (summed as the tree S says)
//   reduce_gradients()   reduce-scatter: every rank sends each shard's part of its
//                        partial sums to the shard's owner, which adds them as S
//                        does: the owner now has the exact S(0, A) of its shard
//   global_grad_norm()   ‖g‖₂: each shard's per-parameter Σg², all-gathered and
//                        added in parameter order (as one process adds them)
//   clip, AdamW step     of the owned parameters only: the moments of the others
//                        are not even held, so optimizer memory per rank is ~1/N
//   gather_weights()     all-gather of the updated parameters
//
// A shard is a contiguous run of whole parameters (in named_parameters()
// order), cut where the running element count crosses r·P/N, so AdamW and the
// norm see whole tensors exactly as in one process. The parameters are laid end to
// end in a flat buffer of P elements for the exchanges.
//
// With one rank, the same code runs with nothing to exchange: same bits.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "attnlab/autograd/variable.hpp"
#include "attnlab/train/canonical_sum.hpp"
#include "attnlab/train/communicator.hpp"

namespace attnlab {

// Items [begin, end) of n dealt in contiguous blocks to `ranks`: rank r gets
// [r·n/N, (r+1)·n/N) (evaluation batches, which need not divide evenly).
struct ItemRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
ItemRange share_of(int64_t n, int ranks, int rank);

// Every rank's values of n items, each rank holding the items of
// share_of(n, N, rank): afterwards every rank has all n, in item order.
std::vector<double> all_gather_values(Communicator& ranks, std::span<const double> mine, int64_t n);

// FNV-1a, 64 bits: a fingerprint of bytes (settings, data, the program).
uint64_t fingerprint(std::string_view bytes, uint64_t seed = 14695981039346656037ULL);

// Refuses ranks that differ in any of the named facts (every rank passes the
// same names, in the same order): an ErrorOnEveryRank naming the first fact
// and the first rank that differs from rank 0.
void check_ranks_agree(Communicator& ranks,
                       const std::vector<std::pair<std::string, uint64_t>>& facts);

class DataParallel {
 public:
  using NamedParameters = std::vector<std::pair<std::string, Variable>>;
  // accum: micro-batches per step, a multiple of ranks.size() (else an
  // ErrorOnEveryRank: every rank has the same settings).
  DataParallel(Communicator& ranks, NamedParameters params, int64_t accum);

  Communicator& ranks() { return ranks_; }
  // This rank's micro-batches of each step.
  MicroBatchSpan micro_batches() const { return mine_; }
  // The parameters whose optimizer state this rank keeps, in order.
  const NamedParameters& owned_parameters() const { return owned_; }
  // Indices [first, last) into the parameters of rank r's shard.
  std::pair<size_t, size_t> shard(int rank) const {
    return {shard_first_[static_cast<size_t>(rank)], shard_first_[static_cast<size_t>(rank) + 1]};
  }

  // Takes the gradients that micro-batch i's backward left in the parameters
  // (this rank's next micro-batch, in order) and clears them.
  void add_micro_batch(int64_t i);
  // Drops the partial sums of a step that will not be finished (a non-finite loss).
  void discard_step();
  // After all of this rank's micro-batches: leaves the step's gradient S(0, A)
  // in the .grad of each owned parameter (undefined for a parameter that no
  // micro-batch of any rank gave a gradient: an expert nobody chose), and no
  // gradient in the others.
  void reduce_gradients();
  // The global norm of the step's gradient, the same bits on every rank and
  // for every N. Call after reduce_gradients.
  double global_grad_norm();
  // After the owned parameters were updated: every rank gets them all.
  void gather_weights();
  // Per-parameter tensors shaped like the owned parameters (AdamW's
  // moments): rank 0 gets those of every parameter, the other ranks nothing.
  std::vector<Tensor> gather_to_root(const std::vector<Tensor>& owned);

 private:
  Tensor take_buffer();
  void release(Tensor buffer);
  int64_t shard_begin(int rank) const { return offsets_[shard(rank).first]; }
  int64_t shard_end(int rank) const { return offsets_[shard(rank).second]; }

  Communicator& ranks_;
  NamedParameters params_;
  NamedParameters owned_;
  std::vector<int64_t> offsets_;     // params_[i] starts at offsets_[i]; offsets_.back() = P
  std::vector<size_t> shard_first_;  // rank r owns params [shard_first_[r], shard_first_[r+1])
  int64_t accum_;
  MicroBatchSpan mine_;
  LocalSumPlan plan_;                               // this rank's
  std::vector<std::vector<MicroBatchSpan>> nodes_;  // every rank's plan nodes
  size_t next_op_ = 0;
  std::vector<Tensor> stack_;      // partial sums (flat, P elements)
  std::vector<Tensor> free_;       // spare flat buffers
  std::vector<uint8_t> has_grad_;  // this step, per parameter
  std::vector<char> send_;         // the nodes' parts, by destination
  Tensor received_;                // the nodes' parts of this rank's shard
  Tensor flat_;                    // the flat parameters, for gathers
};

}  // namespace attnlab
