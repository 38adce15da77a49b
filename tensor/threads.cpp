#include "attnlab/tensor/threads.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace attnlab {

void set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(n);
  openblas_set_num_threads(1);  // matmul threads over our pool instead: threads.hpp
}

int num_threads() {
  return omp_get_max_threads();
}

namespace {
int every_core() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

ThreadCountTuner::ThreadCountTuner(int requested, int64_t period, int64_t probes)
    : period_(std::max<int64_t>(period, 2 * probes + 1)), probes_(std::max<int64_t>(probes, 1)) {
  many_ = requested > 0 ? requested : every_core();
  tune_ = requested == 0 && many_ > 1;
  current_ = chosen_ = many_;
  set_num_threads(current_);
}

// Iteration 0 warms up (first allocations, cold caches) on every core and is
// not measured; then each period begins with the two measurements.
int64_t ThreadCountTuner::phase() const {
  return iteration_ == 0 ? -1 : (iteration_ - 1) % period_;
}

void ThreadCountTuner::before() {
  int want = chosen_;
  if (tune_) {
    const int64_t p = phase();
    if (p < probes_)
      want = many_;  // warming up, or measuring every core
    else if (p < 2 * probes_)
      want = 1;  // measuring one thread
  }
  if (want != current_) {
    set_num_threads(want);
    current_ = want;
  }
}

void ThreadCountTuner::after(double seconds) {
  if (!tune_) return;
  const int64_t p = phase();
  if (p >= 0 && p < probes_)
    many_times_.push_back(seconds);
  else if (p >= probes_ && p < 2 * probes_)
    one_times_.push_back(seconds);
  if (p == 2 * probes_ - 1) {
    chosen_ = median(one_times_) < median(many_times_) ? 1 : many_;
    many_times_.clear();
    one_times_.clear();
  }
  ++iteration_;
}

}  // namespace attnlab
