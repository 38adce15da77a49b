// How many cores the kernels use, and who owns them.
//
// One pool owns the cores: OpenMP's. Our kernels split their work over it
// (attention over batch × heads, the row kernels over rows), and so does
// matmul: tensor/matmul.cpp cuts the output of a large gemm into one block per
// thread and calls a single-threaded OpenBLAS on each block. OpenBLAS's own
// thread pool is kept at one thread. Two pools that both wait for work on the
// same two cores were the slowest arrangement measured here: each pool's idle
// threads took the core the other pool's working thread needed.
#pragma once

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
// Waking a sleeping thread costs tens of microseconds on this machine, so a
// short spin pays on an idle machine. On a busy one, a spinning thread waits
// for a partner that the scheduler has taken off its core, and two threads
// are no faster than one whatever the policy: use --threads 1 there. The
// default spin (kSpinCount) is the shortest that gets most of the idle gain.
// libgomp reads GOMP_SPINCOUNT once, from the environment, when it loads, so
// this re-executes the running program once with it set, unless the user set
// GOMP_SPINCOUNT or OMP_WAIT_POLICY (then their choice stands). Call it first
// thing in main().
void bound_openmp_spinning(char** argv);

// Spins of an idle thread before it sleeps (about 100 µs here).
inline constexpr const char* kSpinCount = "2000";

}  // namespace attnlab
