// attnlab eval --by-position and --seq-len beyond the trained context, on a
// tiny checkpoint of each variant (mha, gqa, mqa, mla, and a MoE).
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli/cli_test_util.hpp"

using namespace attnlab::testing;

namespace {

std::vector<double> losses_of(const std::string& csv) {
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  CHECK(line == "position,loss");
  std::vector<double> out;
  for (int64_t t = 0; std::getline(in, line); ++t) {
    CHECK(line.rfind(std::to_string(t) + ",", 0) == 0);
    out.push_back(std::stod(line.substr(line.find(',') + 1)));
  }
  return out;
}

}  // namespace

TEST_CASE("eval --by-position at 1× and 2× the trained context, every variant") {
  TempDir dir("attnlab-by-position");
  const std::vector<std::vector<std::string>> variants = {
      {"--attention", "mha"},
      {"--attention", "gqa"},
      {"--attention", "mqa"},
      {"--attention", "mla"},
      {"--attention", "mla", "--experts", "4", "--top-k", "2"}};
  for (size_t v = 0; v < variants.size(); ++v) {
    CAPTURE(v);
    const std::string run = dir.file("run" + std::to_string(v));
    std::vector<std::string> args = {
        "train",          "--preset", "tiny",      "--steps", "2",       "--eval-every", "0",
        "--eval-batches", "1",        "--threads", "1",       "--quiet", "--out",        run};
    args.insert(args.end(), variants[v].begin(), variants[v].end());
    const CommandResult trained = run_attnlab(args);
    REQUIRE_MESSAGE(trained.exit_code == 0, trained.describe());
    const std::string ck = run + "/last.safetensors";

    // At the trained context (64): no note.
    const std::string at1 = dir.file("pos1-" + std::to_string(v));
    const CommandResult r1 =
        run_attnlab({"eval", "--checkpoint", ck, "--batches", "2", "--batch-size", "2", "--threads",
                     "1", "--by-position", at1});
    REQUIRE_MESSAGE(r1.exit_code == 0, r1.describe());
    CHECK(r1.err.find("never seen") == std::string::npos);
    const std::vector<double> l1 = losses_of(read_text_file(at1 + "/loss_by_position.csv"));
    CHECK(l1.size() == 64u);

    // At 2×: allowed, said on stderr; 128 positions, each a finite loss near
    // ln 65 (a model trained 2 steps barely differs from a uniform guess).
    const std::string at2 = dir.file("pos2-" + std::to_string(v));
    const CommandResult r2 =
        run_attnlab({"eval", "--checkpoint", ck, "--batches", "2", "--batch-size", "2", "--seq-len",
                     "128", "--threads", "1", "--by-position", at2});
    REQUIRE_MESSAGE(r2.exit_code == 0, r2.describe());
    CHECK(r2.err.find("--seq-len 128 is beyond the context the model was trained on "
                      "(max_seq_len 64)") != std::string::npos);
    CHECK(r2.out.find("2×128") != std::string::npos);
    const std::vector<double> l2 = losses_of(read_text_file(at2 + "/loss_by_position.csv"));
    REQUIRE(l2.size() == 128u);
    double mean = 0;
    for (double l : l2) {
      CHECK(std::isfinite(l));
      CHECK(l > 0);
      mean += l / 128;
    }
    CHECK(mean == doctest::Approx(std::log(65.0)).epsilon(0.15));
    // The val loss printed is the mean of the by-position losses (same windows).
    const size_t at = r2.out.find("val loss ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stod(r2.out.substr(at + 9)) == doctest::Approx(mean).epsilon(1e-3));
    const std::string svg = read_text_file(at2 + "/loss_by_position.svg");
    CHECK(svg.find("<svg") != std::string::npos);
    CHECK(svg.find("class=\"marker\"") != std::string::npos);  // the trained context
    CHECK(svg.rfind("</svg>") != std::string::npos);
  }
}
