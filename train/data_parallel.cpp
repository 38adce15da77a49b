#include "attnlab/train/data_parallel.hpp"

#include <cstring>
#include <map>

#include "attnlab/tensor/ops.hpp"
#include "attnlab/train/grad_clip.hpp"

namespace attnlab {
namespace {

std::vector<int64_t> bytes_of_shares(int64_t n, int ranks, size_t item_bytes) {
  std::vector<int64_t> bytes;
  for (int r = 0; r < ranks; ++r)
    bytes.push_back(share_of(n, ranks, r).size() * static_cast<int64_t>(item_bytes));
  return bytes;
}

char* bytes_at(const Tensor& flat, int64_t element) {
  return static_cast<char*>(flat.storage()->data()) +
         (flat.offset() + element) * static_cast<int64_t>(dtype_size(flat.dtype()));
}

// S(lo, hi) of one shard, from the nodes' parts (views into one buffer,
// added into in place: each part is read once).
Tensor combine(int64_t lo, int64_t hi, const std::map<std::pair<int64_t, int64_t>, Tensor>& parts) {
  if (auto it = parts.find({lo, hi}); it != parts.end()) return it->second;
  ATTN_CHECK(hi - lo >= 2, "DataParallel: no rank sent micro-batch {}", lo);
  const int64_t mid = tree_split(lo, hi);
  Tensor a = combine(lo, mid, parts);
  add_(a, combine(mid, hi, parts));
  return a;
}

}  // namespace

ItemRange share_of(int64_t n, int ranks, int rank) {
  return {rank * n / ranks, (rank + 1) * n / ranks};
}

std::vector<double> all_gather_values(Communicator& ranks, std::span<const double> mine,
                                      int64_t n) {
  const ItemRange r = share_of(n, ranks.size(), ranks.rank());
  ATTN_CHECK(static_cast<int64_t>(mine.size()) == r.size(),
             "all_gather_values: {} values for a share of {}", mine.size(), r.size());
  std::vector<double> all(static_cast<size_t>(n));
  std::copy(mine.begin(), mine.end(), all.begin() + r.begin);
  if (ranks.size() > 1)
    ranks.all_gather(all.data(), bytes_of_shares(n, ranks.size(), sizeof(double)));
  return all;
}

uint64_t fingerprint(std::string_view bytes, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

void check_ranks_agree(Communicator& ranks,
                       const std::vector<std::pair<std::string, uint64_t>>& facts) {
  const int n = ranks.size();
  if (n == 1) return;
  const size_t k = facts.size();
  std::vector<uint64_t> all(static_cast<size_t>(n) * k);
  for (size_t f = 0; f < k; ++f) all[static_cast<size_t>(ranks.rank()) * k + f] = facts[f].second;
  ranks.all_gather(all.data(), std::vector<int64_t>(static_cast<size_t>(n),
                                                    static_cast<int64_t>(k * sizeof(uint64_t))));
  for (size_t f = 0; f < k; ++f)
    for (int r = 1; r < n; ++r)
      if (all[static_cast<size_t>(r) * k + f] != all[f])
        fail_on_every_rank(
            ranks, fmt::format("the {} processes disagree: rank {} has another {} than rank 0; "
                               "every rank must run the same attnlab with the same flags and the "
                               "same data",
                               n, r, facts[f].first));
}

DataParallel::DataParallel(Communicator& ranks, NamedParameters params, int64_t accum)
    : ranks_(ranks), params_(std::move(params)), accum_(accum) {
  const int n = ranks_.size();
  if (accum % n != 0)
    fail_on_every_rank(
        ranks_, fmt::format("--accum {} is not a multiple of the number of processes {}: a step's "
                            "micro-batches are dealt evenly to the processes (try --accum {})",
                            accum, n, (accum / n + 1) * n));
  ATTN_CHECK(!params_.empty(), "DataParallel: no parameters");
  offsets_.push_back(0);
  for (const auto& [name, p] : params_) {
    ATTN_CHECK(p.value().is_contiguous() && p.dtype() == params_[0].second.dtype(),
               "DataParallel: parameter {} is not contiguous or not of the model's dtype", name);
    offsets_.push_back(offsets_.back() + p.numel());
  }
  // Rank r's shard begins at the first parameter that starts at or past r·P/N.
  const int64_t total = offsets_.back();
  for (int r = 0; r < n; ++r) {
    size_t i = r == 0 ? 0 : shard_first_.back();
    while (i < params_.size() && offsets_[i] * n < r * total) ++i;
    shard_first_.push_back(i);
  }
  shard_first_.push_back(params_.size());
  const auto [first, last] = shard(ranks_.rank());
  owned_.assign(params_.begin() + static_cast<std::ptrdiff_t>(first),
                params_.begin() + static_cast<std::ptrdiff_t>(last));
  mine_ = micro_batches_of(accum, n, ranks_.rank());
  plan_ = plan_local_sum(accum, mine_.lo, mine_.hi);
  for (int r = 0; r < n; ++r) {
    const MicroBatchSpan span = micro_batches_of(accum, n, r);
    nodes_.push_back(plan_local_sum(accum, span.lo, span.hi).nodes);
  }
}

Tensor DataParallel::take_buffer() {
  if (free_.empty()) return Tensor::zeros({offsets_.back()}, params_[0].second.dtype());
  Tensor t = std::move(free_.back());
  free_.pop_back();
  return t;
}

void DataParallel::release(Tensor buffer) {
  free_.push_back(std::move(buffer));
}

void DataParallel::add_micro_batch(int64_t i) {
  if (next_op_ == 0) {  // the step's first: the last step's sum is no longer used
    has_grad_.assign(params_.size(), 0);
    if (received_.defined() && ranks_.size() == 1) release(std::move(received_));
    received_ = Tensor();
  }
  ATTN_CHECK(next_op_ < plan_.ops.size() && plan_.ops[next_op_] == i,
             "DataParallel: micro-batch {} is not this rank's next", i);
  Tensor flat = take_buffer();
  for (size_t k = 0; k < params_.size(); ++k) {
    Variable& p = params_[k].second;
    Tensor region = flat.narrow(0, offsets_[k], p.numel()).view(p.shape());
    if (p.grad().defined()) {
      region.copy_(p.grad());
      has_grad_[k] = 1;
    } else {
      region.fill_(0.0);
    }
    p.zero_grad();
  }
  stack_.push_back(std::move(flat));
  ++next_op_;
  while (next_op_ < plan_.ops.size() && plan_.ops[next_op_] == LocalSumPlan::kAdd) {
    Tensor b = std::move(stack_.back());
    stack_.pop_back();
    add_(stack_.back(), b);
    release(std::move(b));
    ++next_op_;
  }
}

void DataParallel::discard_step() {
  for (Tensor& t : stack_) release(std::move(t));
  stack_.clear();
  next_op_ = 0;
}

void DataParallel::reduce_gradients() {
  ATTN_CHECK(next_op_ == plan_.ops.size() && stack_.size() == plan_.nodes.size(),
             "DataParallel: reduce_gradients before every micro-batch of the step was added");
  next_op_ = 0;
  const int n = ranks_.size(), me = ranks_.rank();
  const size_t np = params_.size();
  Tensor shard_grad;
  if (n == 1) {  // one node, S(0, A): nothing to exchange
    received_ = std::move(stack_[0]);
    stack_.clear();
    shard_grad = received_;
  } else {
    // Which parameters have a gradient: this rank's flags, all-gathered and OR-ed.
    std::vector<uint8_t> flags(static_cast<size_t>(n) * np);
    std::copy(has_grad_.begin(), has_grad_.end(), flags.begin() + static_cast<ptrdiff_t>(me * np));
    ranks_.all_gather(flags.data(),
                      std::vector<int64_t>(static_cast<size_t>(n), static_cast<int64_t>(np)));
    for (int r = 0; r < n; ++r)
      for (size_t k = 0; k < np; ++k) has_grad_[k] |= flags[static_cast<size_t>(r) * np + k];

    // Reduce-scatter: the part of every node of this rank that falls in shard s goes to rank s.
    const auto esize = static_cast<int64_t>(dtype_size(params_[0].second.dtype()));
    const int64_t my_len = shard_end(me) - shard_begin(me);
    std::vector<int64_t> send_bytes, recv_bytes;
    int64_t total_nodes = 0;
    for (int s = 0; s < n; ++s) {
      send_bytes.push_back(static_cast<int64_t>(stack_.size()) * (shard_end(s) - shard_begin(s)) *
                           esize);
      recv_bytes.push_back(static_cast<int64_t>(nodes_[static_cast<size_t>(s)].size()) * my_len *
                           esize);
      total_nodes += static_cast<int64_t>(nodes_[static_cast<size_t>(s)].size());
    }
    send_.resize(
        static_cast<size_t>(static_cast<int64_t>(stack_.size()) * offsets_.back() * esize));
    char* out = send_.data();
    for (int s = 0; s < n; ++s)
      for (const Tensor& node : stack_) {
        const int64_t bytes = (shard_end(s) - shard_begin(s)) * esize;
        std::memcpy(out, bytes_at(node, shard_begin(s)), static_cast<size_t>(bytes));
        out += bytes;
      }
    if (!received_.defined() || received_.numel() != total_nodes * my_len)
      received_ = Tensor::zeros({total_nodes * my_len}, params_[0].second.dtype());
    ranks_.all_to_all(send_.data(), send_bytes,
                      received_.numel() ? bytes_at(received_, 0) : nullptr, recv_bytes);
    for (Tensor& node : stack_) release(std::move(node));
    stack_.clear();
    std::map<std::pair<int64_t, int64_t>, Tensor> parts;
    int64_t at = 0;
    for (const auto& rank_nodes : nodes_)
      for (const MicroBatchSpan& node : rank_nodes) {
        parts[{node.lo, node.hi}] = received_.narrow(0, at, my_len);
        at += my_len;
      }
    shard_grad = combine(0, accum_, parts);
  }
  const int64_t base = shard_begin(me);
  const size_t first = shard(me).first;
  for (size_t k = 0; k < owned_.size(); ++k) {
    Variable& p = owned_[k].second;
    if (has_grad_[first + k])
      p.set_grad(shard_grad.narrow(0, offsets_[first + k] - base, p.numel()).view(p.shape()));
    else
      p.zero_grad();
  }
}

double DataParallel::global_grad_norm() {
  const int n = ranks_.size();
  std::vector<double> pieces(params_.size());
  const std::vector<double> mine = gradient_sums_of_squares(owned_);
  std::copy(mine.begin(), mine.end(),
            pieces.begin() + static_cast<ptrdiff_t>(shard(ranks_.rank()).first));
  if (n > 1) {
    std::vector<int64_t> bytes;
    for (int r = 0; r < n; ++r)
      bytes.push_back(static_cast<int64_t>((shard(r).second - shard(r).first) * sizeof(double)));
    ranks_.all_gather(pieces.data(), bytes);
  }
  return global_norm_of(pieces);
}

void DataParallel::gather_weights() {
  const int n = ranks_.size();
  if (n == 1) return;
  if (!flat_.defined()) flat_ = Tensor::zeros({offsets_.back()}, params_[0].second.dtype());
  const size_t first = shard(ranks_.rank()).first;
  for (size_t k = 0; k < owned_.size(); ++k) {
    Tensor region = flat_.narrow(0, offsets_[first + k], owned_[k].second.numel())
                        .view(owned_[k].second.shape());
    region.copy_(owned_[k].second.value());
  }
  const auto esize = static_cast<int64_t>(dtype_size(flat_.dtype()));
  std::vector<int64_t> bytes;
  for (int r = 0; r < n; ++r) bytes.push_back((shard_end(r) - shard_begin(r)) * esize);
  ranks_.all_gather(bytes_at(flat_, 0), bytes);
  const auto [mine_first, mine_last] = shard(ranks_.rank());
  for (size_t k = 0; k < params_.size(); ++k) {
    if (k >= mine_first && k < mine_last) continue;
    Variable& p = params_[k].second;
    p.mutable_value().copy_(flat_.narrow(0, offsets_[k], p.numel()).view(p.shape()));
  }
}

std::vector<Tensor> DataParallel::gather_to_root(const std::vector<Tensor>& owned) {
  ATTN_CHECK(owned.size() == owned_.size(), "gather_to_root: {} tensors for {} owned parameters",
             owned.size(), owned_.size());
  const int n = ranks_.size();
  if (n == 1) return owned;
  Tensor flat = Tensor::zeros({offsets_.back()}, params_[0].second.dtype());
  const size_t first = shard(ranks_.rank()).first;
  for (size_t k = 0; k < owned.size(); ++k) {
    Tensor region = flat.narrow(0, offsets_[first + k], owned[k].numel()).view(owned[k].shape());
    region.copy_(owned[k]);
  }
  const auto esize = static_cast<int64_t>(dtype_size(flat.dtype()));
  std::vector<int64_t> bytes;
  for (int r = 0; r < n; ++r) bytes.push_back((shard_end(r) - shard_begin(r)) * esize);
  ranks_.gather_to_root(bytes_at(flat, 0), bytes);
  if (!ranks_.is_root()) return {};
  std::vector<Tensor> all;
  for (size_t k = 0; k < params_.size(); ++k)
    all.push_back(
        flat.narrow(0, offsets_[k], params_[k].second.numel()).view(params_[k].second.shape()));
  return all;
}

}  // namespace attnlab
