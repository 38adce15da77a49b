// How many cores the kernels use, and who owns them.
//
// One pool owns the cores: OpenMP's. Our kernels split their work over it
// (attention over batch × heads, the row kernels over rows), and so does
// matmul: tensor/blas.cpp cuts the output of a large gemm into blocks and
// calls a single-threaded OpenBLAS on each block. OpenBLAS's own thread pool
// is kept at one thread. Two pools that both wait for work on the same two
// cores were the slowest arrangement measured here: each pool's idle threads
// took the core the other pool's working thread needed.
//
// The rule that makes results independent of the thread count: every
// parallel kernel cuts its work into pieces by the shapes alone, never by
// the number of threads (or the tuner's choice below), and the threads only
// take pieces from that fixed list; one thread runs the same pieces in turn.
// Each element is computed by the same calls in the same order whatever the
// thread count, and a sum over pieces adds their partial results in piece
// order on one thread. The pieces: a gemm's blocks of C (blas::gemm_blocks),
// the row kernels' blocks of kBlockElements (kernels::parallel_blocks),
// rms_norm's chunks of 32 rows for dw, attention's (batch, head) tasks,
// AdamW's blocks of 4096, the decoder's products (through blas::gemm).
// What this promises: the same bits on one machine with one OpenBLAS kernel
// for any thread count and any load. Across CPUs, or across the kernels
// OpenBLAS picks (OPENBLAS_CORETYPE), results agree to rounding only: a
// block of rows gives other last bits with OpenBLAS's Haswell kernel than
// with its SkylakeX one.
#pragma once

#include <cstdint>
#include <vector>

namespace attnlab {

// n ≥ 1 threads for our pool; 0 means every core of the machine. OpenBLAS
// stays single-threaded whatever n is.
void set_num_threads(int n);
int num_threads();

// OpenMP threads that finish a kernel wait for the next one. A baby training
// step runs several hundred kernels of 10–100 µs each, so how a thread waits
// decides much of the step time. Measured here (baby mha, 2 threads, ms per
// step), by libgomp's GOMP_SPINCOUNT, the pause instructions an idle thread
// spins before it sleeps on a futex:
//
//   GOMP_SPINCOUNT           0 (sleep)   300    1000   2000   20000
//   idle machine                34        32     24     23     22
//   two other busy processes    43        44     48     53     130
//   (1 thread: 38–41 ms in every case)
//
// and decoding the baby model at batch 1 (tokens/s) while one other process,
// at the lowest priority (nice 19), kept one core busy:
//
//   GOMP_SPINCOUNT           0 (sleep)   100    500    2000   20000
//   2 threads                 4500      3800   2400   1000    135
//   1 thread                  6400 in every case (idle machine, 2 threads: 15000)
//
// Waking a sleeping thread costs tens of microseconds on this machine, so a
// short spin pays on an idle machine. On a busy one, a spinning thread waits
// for a partner that the scheduler has taken off its core, and two threads
// are slower than one whatever the policy. The default spin (kSpinCount) is
// the shortest that gets most of the idle gain; ThreadCountTuner (below)
// falls back to one thread when the cores are not free.
//
// The wait policy is the program's choice; the library never makes it.
// libgomp reads GOMP_SPINCOUNT (or OMP_WAIT_POLICY) once, from the
// environment, when it loads, so a program that links attnlab chooses it in
// the environment it starts with: `GOMP_SPINCOUNT=2000 ./my_program` (the
// spin measured best above, kSpinCount); libgomp's own default spins far
// longer (the 20000+ column). The attnlab program re-executes itself once
// with GOMP_SPINCOUNT=kSpinCount unless the user set either variable
// (cli/openmp_wait.hpp); a library must not do that to the program that
// embeds it.

/// Spins of an idle OpenMP thread before it sleeps (about 100 µs here): the
/// GOMP_SPINCOUNT the attnlab program runs with (see above).
inline constexpr const char* kSpinCount = "2000";

// Chooses, while a loop runs, between one thread and every core: `--threads
// 0` in train and sample. On an idle machine every core is faster (a baby
// step 21 ms instead of 37, decoding twice as fast); on a machine where
// anything else wants a core it is slower than one thread, and decoding, a
// few microseconds of work between two waits, up to 10x slower (the tables
// above). Neither fixed choice is safe, so the loop measures: every
// `period` iterations it runs `probes` of them on every core and `probes` on
// one thread, and keeps the faster (by the median) until the next
// measurement. Results do not depend on the number of threads (the rule at
// the top of this file), so switching changes only the speed.
class ThreadCountTuner {
 public:
  // requested: the user's --threads. 0 tunes between 1 and every core;
  // n ≥ 1 is fixed at n (before/after then only keep the pool at n).
  explicit ThreadCountTuner(int requested, int64_t period = 200, int64_t probes = 5);
  void before();               // sizes the pool for the next iteration
  void after(double seconds);  // that iteration's duration
  int threads() const { return current_; }

 private:
  int64_t phase() const;

  int many_ = 1, current_ = 1, chosen_ = 1;
  bool tune_ = false;
  int64_t period_, probes_, iteration_ = 0;
  std::vector<double> many_times_, one_times_;
};

}  // namespace attnlab
