// `attnlab inspect` against an independent implementation of docs/MODEL-SPEC.md.
//
// tests/data/reference/<case>/ holds a tiny checkpoint (model.safetensors), a
// batch (batch.safetensors) and what the PyTorch reference computed for them
// in float64 (expected.safetensors: logits, loss, ce, aux and grad.<name> of
// every parameter). bench/make_reference_data.py writes them from
// bench/reference_model.py, which was written from the spec, not from this
// code. The cases cover mha, gqa, mqa and mla, full and partial RoPE, swiglu
// and relu FFNs, MoE with top_k 1 and 2, shared experts, an expert no token
// chooses, exact routing ties, tied and untied embeddings, an odd head_dim.
//
// For every case, attnlab inspect runs in f32 and in f64 and must give the
// same set of tensors with the same shapes, each within a relative error of
// 1e-4 (f32) or 1e-9 (f64), measured per tensor as
//     max|actual − expected| / max(max|expected|, 1e-30).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "attnlab/models/safetensors.hpp"
#include "tests/cli/cli_test_util.hpp"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::reference_cases;
using testing::run_attnlab;
using testing::TempDir;

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// How `actual` differs from `expected`: structural problems (missing or extra
// tensors, a wrong shape or dtype), and the worst relative error.
struct Comparison {
  std::vector<std::string> problems;
  std::string worst_name;
  double worst = 0.0;
};

Comparison compare(const SafetensorsFile& actual, const SafetensorsFile& expected,
                   const std::string& want_dtype) {
  Comparison c;
  std::set<std::string> missing, extra;
  for (const auto& e : expected.entries)
    if (!actual.find(e.name)) missing.insert(e.name);
  for (const auto& a : actual.entries)
    if (!expected.find(a.name)) extra.insert(a.name);
  if (!missing.empty()) c.problems.push_back("missing tensors: " + join(missing));
  if (!extra.empty()) c.problems.push_back("unexpected tensors: " + join(extra));

  for (const auto& e : expected.entries) {
    const SafetensorsEntry* a = actual.find(e.name);
    if (!a) continue;
    if (a->shape != e.shape) {
      c.problems.push_back(e.name + ": shape " + shape_str(a->shape) + ", expected " +
                           shape_str(e.shape));
      continue;
    }
    if (a->dtype != want_dtype)
      c.problems.push_back(e.name + ": dtype " + a->dtype + ", expected " + want_dtype);
    const Tensor at = to_tensor(*a, DType::F64), et = to_tensor(e, DType::F64);
    const double* x = at.data<double>();
    const double* y = et.data<double>();
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; i < e.numel(); ++i) {
      const double d = std::abs(x[i] - y[i]);
      diff = std::isnan(d) ? INFINITY : std::max(diff, d);
      scale = std::max(scale, std::abs(y[i]));
    }
    const double err = diff / std::max(scale, 1e-30);
    if (c.worst_name.empty() || err > c.worst) {
      c.worst = err;
      c.worst_name = e.name;
    }
  }
  return c;
}

TEST_CASE("attnlab inspect matches the PyTorch reference on every case of tests/data/reference") {
  const std::vector<fs::path> cases = reference_cases();
  REQUIRE_MESSAGE(!cases.empty(), "no case directories under tests/data/reference");
  TempDir tmp("attnlab-inspect-ref");

  struct Mode {
    const char* dtype;
    const char* stored;  // the dtype inspect writes its outputs in
    double rtol;
  };
  for (const fs::path& dir : cases) {
    const std::string name = dir.filename().string();
    const SafetensorsFile expected = read_safetensors((dir / "expected.safetensors").string());
    for (const Mode mode : {Mode{"f32", "F32", 1e-4}, Mode{"f64", "F64", 1e-9}}) {
      INFO("case " << name << ", --dtype " << std::string(mode.dtype));
      const std::string out = tmp.file(name + "." + mode.dtype + ".safetensors");
      const CommandResult r =
          run_attnlab({"inspect", "--checkpoint", (dir / "model.safetensors").string(), "--batch",
                       (dir / "batch.safetensors").string(), "--out", out, "--dtype", mode.dtype});
      CHECK_MESSAGE(r.exit_code == 0, r.describe());
      if (r.exit_code != 0) continue;

      const Comparison c = compare(read_safetensors(out), expected, mode.stored);
      for (const std::string& p : c.problems) FAIL_CHECK(p);
      CHECK_MESSAGE(c.worst <= mode.rtol, "worst tensor " << c.worst_name << ": relative error "
                                                          << c.worst << " > " << mode.rtol);
    }
  }
}

}  // namespace
}  // namespace attnlab
