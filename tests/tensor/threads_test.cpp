// ThreadCountTuner: --threads 0 measures every core against one thread and
// keeps the faster; a fixed count stays fixed. The durations here are made
// up, so the test does not depend on this machine's load.
#include <doctest/doctest.h>

#include <thread>

#include "attnlab/tensor/threads.hpp"

using namespace attnlab;

namespace {
// Runs `iterations` of a loop whose iterations take `one` seconds on one
// thread and `many` on more; returns the thread count of the last one.
int run(ThreadCountTuner& tuner, int iterations, double one, double many) {
  int last = 0;
  for (int i = 0; i < iterations; ++i) {
    tuner.before();
    last = tuner.threads();
    CHECK(num_threads() == last);
    tuner.after(last == 1 ? one : many);
  }
  return last;
}
}  // namespace

TEST_CASE("ThreadCountTuner keeps the faster of one thread and every core") {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int before = num_threads();
  ThreadCountTuner tuner(0, /*period=*/20, /*probes=*/3);
  if (cores <= 1) {  // nothing to choose from
    CHECK(run(tuner, 30, 1.0, 2.0) == 1);
    set_num_threads(before);
    return;
  }
  // Iteration 0 warms up on every core; 1-3 measure every core, 4-6 one thread.
  tuner.before();
  CHECK(tuner.threads() == cores);
  tuner.after(100.0);  // a slow warm-up is not held against every core
  CHECK(run(tuner, 3, 0, 0.5) == cores);
  CHECK(run(tuner, 3, 1.0, 0) == 1);
  // Every core was faster: the rest of the period runs on every core.
  CHECK(run(tuner, 13, 1.0, 0.5) == cores);
  // The machine gets busy: the next measurement switches to one thread...
  CHECK(run(tuner, 20, 1.0, 3.0) == 1);
  // ...and back once the cores are free again.
  CHECK(run(tuner, 20, 1.0, 0.5) == cores);
  set_num_threads(before);
}

TEST_CASE("ThreadCountTuner with a fixed count never changes it") {
  const int before = num_threads();
  ThreadCountTuner tuner(3);
  CHECK(run(tuner, 50, 0.1, 10.0) == 3);
  set_num_threads(before);
}
