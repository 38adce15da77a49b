#include "tensor/storage.hpp"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace attnlab {
namespace {

constexpr size_t kAlignment = 64;  // a cache line, and a whole AVX-512 register

// Free buffers by exact (rounded) size. Training reuses the same handful of
// shapes every step, so exact-size buckets hit nearly always.
struct Pool {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free;
  PoolStats stats;

  ~Pool() { release(); }
  void release() {
    for (auto& [bytes, buffers] : free)
      for (void* p : buffers) std::free(p);
    free.clear();
    stats.cached_bytes = 0;
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: tensors may outlive static destructors
  return *p;
}

size_t round_up(size_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

}  // namespace

Storage::Storage(size_t bytes) : bytes_(bytes) {
  const size_t rounded = round_up(bytes == 0 ? 1 : bytes);
  Pool& p = pool();
  {
    std::lock_guard lock(p.mutex);
    auto it = p.free.find(rounded);
    if (it != p.free.end() && !it->second.empty()) {
      data_ = it->second.back();
      it->second.pop_back();
      p.stats.reuses++;
      p.stats.cached_bytes -= rounded;
      return;
    }
    p.stats.system_allocations++;
  }
  data_ = std::aligned_alloc(kAlignment, rounded);
  if (data_ == nullptr) throw std::bad_alloc();
}

Storage::~Storage() {
  const size_t rounded = round_up(bytes_ == 0 ? 1 : bytes_);
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  p.free[rounded].push_back(data_);
  p.stats.cached_bytes += rounded;
}

PoolStats storage_pool_stats() {
  std::lock_guard lock(pool().mutex);
  return pool().stats;
}

void storage_pool_release() {
  std::lock_guard lock(pool().mutex);
  pool().release();
}

}  // namespace attnlab
