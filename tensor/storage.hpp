// Storage: one reference-counted, 64-byte-aligned buffer that any number of
// tensor views share. Buffers come from a size-bucketed pool: when the last
// view of a buffer dies, it goes back to the pool, and the next request of
// the same size takes it again. After the first training step every shape is
// known, so the steady-state step allocates nothing from the system.
#pragma once

#include <cstddef>
#include <memory>

namespace attnlab {

class Storage {
 public:
  explicit Storage(size_t bytes);  // uninitialised memory
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

struct PoolStats {
  size_t system_allocations = 0;  // buffers the pool had to get from the system
  size_t reuses = 0;              // requests served from the pool
  size_t cached_bytes = 0;        // bytes waiting in the pool now
};
PoolStats storage_pool_stats();
void storage_pool_release();  // give every cached buffer back to the system

}  // namespace attnlab
