#include "tensor/threads.hpp"

#include <cblas.h>
#include <omp.h>

#include <thread>

namespace attnlab {

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() {
  return omp_get_max_threads();
}

}  // namespace attnlab

#include <unistd.h>

#include <cstdlib>

namespace attnlab {

void prefer_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
  // Only reached when exec failed: carry on with the default policy.
}

}  // namespace attnlab
