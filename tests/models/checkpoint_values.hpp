// A checkpoint's values as one flat list, for the tests that compare two runs
// bit for bit (a resumed run against an uninterrupted one, say).
#pragma once

#include <vector>

#include "attnlab/models/checkpoint.hpp"

namespace attnlab::test {

// Every weight, then (with_optimizer) every AdamW moment, in file order.
inline std::vector<double> checkpoint_values(const Checkpoint& ck, bool with_optimizer = true) {
  std::vector<double> out;
  for (const auto& [name, t] : ck.parameters)
    for (double v : t.to_vector()) out.push_back(v);
  if (with_optimizer)
    for (const auto& [name, t] : ck.optimizer)
      for (double v : t.to_vector()) out.push_back(v);
  return out;
}

}  // namespace attnlab::test
