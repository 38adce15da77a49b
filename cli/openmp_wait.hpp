// How the attnlab program's idle OpenMP threads wait for work: they spin
// GOMP_SPINCOUNT = kSpinCount times, then sleep (the measurements are in
// tensor/threads.hpp). libgomp reads the variable once, when it loads, so the
// program sets it and re-executes itself, once, before anything else runs;
// a GOMP_SPINCOUNT or OMP_WAIT_POLICY the user set stands. This is the
// program's choice, never the library's: the benchmarks make it too, to wait
// as attnlab does.
#pragma once

#include <unistd.h>

#include <cstdlib>

#include "attnlab/tensor/threads.hpp"

namespace attnlab::cli {

// Call first thing in main(). Returns only when there is nothing to do or the
// exec failed (then libgomp's default policy stays).
inline void bound_openmp_spinning(char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("GOMP_SPINCOUNT", kSpinCount, 1);
  execv("/proc/self/exe", argv);
}

}  // namespace attnlab::cli
