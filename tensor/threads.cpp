#include "tensor/threads.hpp"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace attnlab {

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(n);
  openblas_set_num_threads(1);  // matmul threads over our pool instead: threads.hpp
}

int num_threads() {
  return omp_get_max_threads();
}

void bound_openmp_spinning(char** argv) {
  // OpenBLAS sized its pool from the environment when it loaded; from here on
  // every gemm runs on the thread that calls it.
  openblas_set_num_threads(1);
  if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("GOMP_SPINCOUNT", kSpinCount, 1);
  execv("/proc/self/exe", argv);
  // Only reached when exec failed: carry on with libgomp's default policy.
}

}  // namespace attnlab
