#include "attnlab/tensor/storage.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace attnlab {
namespace {

constexpr size_t kAlignment = 64;  // a cache line, and a whole AVX-512 register
// The automatic limit of cached bytes never goes below this: a small program
// keeps all its buffers.
constexpr size_t kMinCacheLimit = size_t{64} << 20;

struct FreeBuffer {
  void* data;
  uint64_t freed_at;  // the pool's clock when it came back (for oldest-first eviction)
};

// Free buffers by size class (size_class below). Training reuses the same
// handful of shapes every step, so the buckets hit nearly always.
//
// The cache is bounded: when it holds more than `limit()` bytes, the buffers
// freed longest ago go back to the system until it holds 3/4 of the limit.
// The automatic limit is the most bytes ever in use at once (at least
// kMinCacheLimit), so the pool's memory stays within twice the peak of live
// tensors whatever sizes come and go. A steady training step, whose live and
// cached bytes together stay near that peak, never reaches it. A MoE step
// (expert sizes change every step) does, and then gives back and takes again
// a few buffers per step; measured with bench_train_step (2 threads):
//
//   limit                    1x peak (now)     2x peak
//   baby mha MoE  step, RSS  46-48 ms, 157 MB  46-47 ms, 168 MB
//   small mha MoE step, RSS  1.46-1.51 s, 2.3 GB  1.48 s, 2.8-3.0 GB
//
// so the time is the same within noise and the memory up to a fifth less
// (with twice the peak, small MoE's RSS crept past PyTorch's 3.0 GB over 30
// steps).
struct Pool {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<FreeBuffer>> free;
  PoolStats stats;
  size_t live_bytes = 0;       // handed out and not yet returned (size classes)
  size_t peak_live_bytes = 0;  // the most live_bytes ever
  size_t fixed_limit = 0;      // 0: automatic
  uint64_t clock = 0;

  ~Pool() { release(); }
  void release() {
    for (auto& [bytes, buffers] : free)
      for (const FreeBuffer& b : buffers) std::free(b.data);
    free.clear();
    stats.cached_bytes = 0;
  }
  size_t limit() const {
    return fixed_limit != 0 ? fixed_limit : std::max(kMinCacheLimit, peak_live_bytes);
  }
  void take(size_t bytes) {
    live_bytes += bytes;
    peak_live_bytes = std::max(peak_live_bytes, live_bytes);
  }
  // Frees the oldest cached buffers until at most `target` bytes stay cached.
  void evict_to(size_t target) {
    struct Entry {
      uint64_t freed_at;
      size_t bytes;
    };
    std::vector<Entry> all;
    for (const auto& [bytes, buffers] : free)
      for (const FreeBuffer& b : buffers) all.push_back({b.freed_at, bytes});
    std::sort(all.begin(), all.end(),
              [](const Entry& x, const Entry& y) { return x.freed_at < y.freed_at; });
    // Every bucket is ordered oldest first (buffers are pushed at the back
    // with a rising clock and reused from the back), so the oldest buffer of
    // a bucket is always its front.
    for (const Entry& e : all) {
      if (stats.cached_bytes <= target) break;
      std::vector<FreeBuffer>& bucket = free[e.bytes];
      std::free(bucket.front().data);
      bucket.erase(bucket.begin());
      stats.cached_bytes -= e.bytes;
      stats.evictions++;
    }
    std::erase_if(free, [](const auto& kv) { return kv.second.empty(); });
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: tensors may outlive static destructors
  return *p;
}

size_t round_up(size_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

// The bucket of a request: up to 4 KiB, whole cache lines; above, 8 size
// classes per power of two (at most 12.5% of a buffer unused). Tensors whose
// sizes change from step to step (the tokens a MoE layer routes to each
// expert) then share a few buckets; with exact sizes, every new size added a
// buffer that was never used again, and the pool grew without bound.
size_t size_class(size_t bytes) {
  const size_t r = round_up(bytes == 0 ? 1 : bytes);
  if (r <= 4096) return r;
  const int top = 63 - __builtin_clzll(r);  // 2^top ≤ r < 2^(top+1)
  const size_t step = size_t{1} << (top - 3);
  return (r + step - 1) / step * step;
}

}  // namespace

Storage::Storage(size_t bytes) : bytes_(bytes) {
  const size_t rounded = size_class(bytes);
  Pool& p = pool();
  {
    std::lock_guard lock(p.mutex);
    p.take(rounded);
    auto it = p.free.find(rounded);
    if (it != p.free.end() && !it->second.empty()) {
      data_ = it->second.back().data;
      it->second.pop_back();
      p.stats.reuses++;
      p.stats.cached_bytes -= rounded;
      return;
    }
    p.stats.system_allocations++;
  }
  data_ = std::aligned_alloc(kAlignment, rounded);
  if (data_ == nullptr) {
    std::lock_guard lock(p.mutex);
    p.live_bytes -= rounded;
    throw std::bad_alloc();
  }
}

Storage::~Storage() {
  const size_t rounded = size_class(bytes_);
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  p.live_bytes -= rounded;
  p.free[rounded].push_back({data_, p.clock++});
  p.stats.cached_bytes += rounded;
  if (p.stats.cached_bytes > p.limit()) p.evict_to(p.limit() / 4 * 3);
}

PoolStats storage_pool_stats() {
  std::lock_guard lock(pool().mutex);
  return pool().stats;
}

void storage_pool_release() {
  std::lock_guard lock(pool().mutex);
  pool().release();
}

void storage_pool_set_limit(size_t bytes) {
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  p.fixed_limit = bytes;
  if (p.stats.cached_bytes > p.limit()) p.evict_to(p.limit());
}

size_t storage_pool_limit() {
  std::lock_guard lock(pool().mutex);
  return pool().limit();
}

}  // namespace attnlab
