// The progress displays write to the stream their caller gives (never to
// stdout unasked): a redrawn line on a terminal, plain lines otherwise.
#include "attnlab/train/progress.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

namespace attnlab {
namespace {

// What `draw` writes to a stream of its own.
template <typename Draw>
std::string written(Draw draw) {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  draw(f);
  std::fflush(f);
  std::string text(static_cast<size_t>(std::ftell(f)), '\0');
  std::rewind(f);
  const size_t n = std::fread(text.data(), 1, text.size(), f);
  std::fclose(f);
  text.resize(n);
  return text;
}

TEST_CASE("CountProgress: a plain line at each quarter, or one line redrawn and erased") {
  const std::string plain = written([](std::FILE* f) {
    CountProgress p(f, /*interactive=*/false, "evaluating", 10);
    for (int64_t i = 1; i <= 10; ++i) p.update(i);
    p.finish();
  });
  CHECK(plain == "evaluating: 3/10\nevaluating: 5/10\nevaluating: 8/10\nevaluating: 10/10\n");

  const std::string bar = written([](std::FILE* f) {
    CountProgress p(f, /*interactive=*/true, "evaluating", 4);
    p.update(1);
    p.update(4);
    p.finish();
  });
  CHECK(bar ==
        "\revaluating [######------------------] 1/4\033[K"
        "\revaluating [########################] 4/4\033[K\r\033[K");
}

TEST_CASE("ProgressDisplay writes to its stream") {
  const std::string text = written([](std::FILE* f) {
    ProgressDisplay p(f, 4, /*interactive=*/false, 2);
    p.update(1, 2.5, 1500, 3);
    p.update(2, 2.25, 1500, 2);
    p.note("step 2: val loss 2.0000");
    p.finish();
  });
  CHECK(text ==
        "step 1/4: loss 2.5000, 1.5k tok/s, 0:03 left\n"
        "step 2/4: loss 2.2500, 1.5k tok/s, 0:02 left\n"
        "step 2: val loss 2.0000\n");
}

}  // namespace
}  // namespace attnlab
