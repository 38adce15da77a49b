// Storage: one reference-counted, 64-byte-aligned buffer that any number of
// tensor views share. Buffers come from a size-bucketed pool: when the last
// view of a buffer dies, it goes back to the pool, and the next request of
// the same size class (storage.cpp: sizes within 12.5% share one) takes it
// again. After the first training step every shape is known, so the
// steady-state step allocates nothing from the system. The pool's cache is
// bounded (by default, by twice the most bytes ever live at once): beyond it, the
// buffers freed longest ago go back to the system.
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
  size_t evictions = 0;           // cached buffers given back to keep under the limit
};
PoolStats storage_pool_stats();
void storage_pool_release();  // give every cached buffer back to the system
// Caps the bytes the pool keeps cached (0: automatic, twice the most bytes
// ever live at once but at least 64 MiB), evicting the oldest buffers now if above it.
void storage_pool_set_limit(size_t bytes);
size_t storage_pool_limit();

}  // namespace attnlab
