// A small, explicit, seeded random generator (xoshiro256**), so that the same
// seed gives the same bits on every machine and compiler: std::normal_distribution
// is implementation-defined, this is not. Its whole state can be saved and
// restored, which is how a resumed training run continues the same stream.
#pragma once

#include <array>
#include <cstdint>

namespace attnlab {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);

  uint64_t next_u64();
  double uniform();            // [0, 1), 53 random bits
  double normal();             // standard normal (Box-Muller)
  uint64_t below(uint64_t n);  // uniform integer in [0, n), unbiased

  // Everything needed to continue the stream exactly.
  using State = std::array<uint64_t, 4>;
  State state() const { return s_; }
  void set_state(const State& s) { s_ = s; }

 private:
  State s_{};
};

}  // namespace attnlab
