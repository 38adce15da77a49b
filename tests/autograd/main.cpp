// The gradient-check suite's main: runs every test, then (when run without options,
// so that no test was filtered out) checks that each op of differentiable_ops() was covered by a
// passing gradcheck, and that no op recorded a name missing from that list.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>

#include "attnlab/autograd/gradcheck.hpp"
#include "attnlab/autograd/ops.hpp"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int failed = context.run();
  if (context.shouldExit() || failed) return failed;
  if (argc > 1) return 0;  // options may filter tests: coverage is only judged on a full run
  const auto& listed = attnlab::differentiable_ops();
  const auto& seen = attnlab::gradchecked_ops();
  int missing = 0;
  for (std::string_view op : listed)
    if (std::find(seen.begin(), seen.end(), op) == seen.end()) {
      std::fprintf(stderr, "op '%.*s' has no passing gradcheck test\n", int(op.size()), op.data());
      ++missing;
    }
  for (const std::string& op : seen)
    if (op.rfind("test.", 0) != 0 && std::find(listed.begin(), listed.end(), op) == listed.end()) {
      std::fprintf(stderr, "op '%s' is recorded but missing from differentiable_ops()\n",
                   op.c_str());
      ++missing;
    }
  if (missing)
    std::fprintf(stderr, "%d op(s) not covered by the gradient-check suite\n", missing);
  else
    std::printf("all %zu differentiable ops are gradchecked\n", listed.size());
  return missing ? 1 : 0;
}
