// What every fuzz target shares: the rule that an attnlab::Error is a correct
// refusal of bad input and anything else is a finding.
//
// A target calls the reader inside refuse_or_run(); an Error is swallowed (the
// reader said no, with a message: what it should do), and an exception of any
// other type escapes, which libFuzzer reports as a crash ("deadly signal"
// after std::terminate) with the input saved. Crashes, ASan/UBSan reports,
// timeouts (-timeout) and huge allocations (-malloc_limit_mb) are findings too.
// FUZZ_EXPECT checks a property of an accepted input (a round trip, say).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "attnlab/tensor/error.hpp"

namespace attnlab::fuzz {

// Runs f; true when it returned, false when it refused with an Error.
template <typename Fn>
bool refuse_or_run(Fn&& f) {
  try {
    f();
    return true;
  } catch (const Error& e) {
    // Every refusal names its problem: an empty message is a finding.
    if (std::string_view(e.what()).empty()) {
      std::fprintf(stderr, "fuzz: an Error with an empty message\n");
      std::abort();
    }
    return false;
  }
}

}  // namespace attnlab::fuzz

// A property that must hold for every input the reader accepted.
#define FUZZ_EXPECT(cond)                                                                      \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz: property failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)
