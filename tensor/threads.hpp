// How many cores the kernels use. Two pools share the cores: OpenMP (our
// kernels: attention over batch × heads, rows of the row kernels) and
// OpenBLAS's own threads (matmul). They never run at the same time (a kernel
// finishes before the next starts), so both are sized to the same count.
#pragma once

namespace attnlab {

// n ≥ 1 threads for both pools; 0 means every core of the machine.
void set_num_threads(int n);
int num_threads();

}  // namespace attnlab

namespace attnlab {

// OpenMP threads that wait for work spin by default (libgomp's "active" wait
// policy). On a machine whose cores are also busy with anything else — other
// programs, or OpenBLAS's own threads between two of our kernels — a spinning
// thread steals the core the working thread needs, and a training step can
// become 10–20× slower (measured here: 24 s instead of 1.3 s for 30 steps).
// The policy is read once, from the environment, when libgomp loads, so a
// program that wants sleeping threads must set OMP_WAIT_POLICY before it
// starts. This re-executes the running program once with
// OMP_WAIT_POLICY=passive, unless the user has set the variable (then their
// choice stands). Call it first thing in main().
void prefer_passive_openmp(char** argv);

}  // namespace attnlab
