// `attnlab plot`: two runs overlaid in one SVG that parses as XML, with a
// legend naming both, the loss, learning-rate and gradient-norm panels, the
// last values written at the curve ends; --x tokens and time; the output's
// directory is created, and a file plot did not write is kept without --force.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/cli/cli_test_util.hpp"
#include "tests/models/decoder_test_util.hpp"

namespace attnlab {
namespace {

using test::contains;
using testing::CommandResult;
using testing::read_text_file;
using testing::run_attnlab;
using testing::run_command;
using testing::shell_quote;
using testing::TempDir;

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST_CASE("attnlab plot overlays two runs in one SVG that parses as XML") {
  TempDir dir("attnlab-plot");
  const std::string config = dir.file("tiny.json");
  std::ofstream(config) << R"({"vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": 2,
                               "max_seq_len": 16})";
  for (const char* name : {"alpha", "beta"}) {
    const CommandResult r =
        run_attnlab({"train", "--config", config, "--out", dir.file(name), "--steps", "6",
                     "--eval-every", "3", "--eval-batches", "1", "--batch-size", "2", "--threads",
                     "1", "--quiet", "--lr", std::string(name) == "alpha" ? "1e-3" : "3e-3"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  }
  const std::string svg_path = dir.file("plots/new/loss.svg");  // its directories are created
  const CommandResult r =
      run_attnlab({"plot", dir.file("alpha"), dir.file("beta"), "--out", svg_path});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  const std::string svg = read_text_file(svg_path);
  // Parses as XML.
  const CommandResult xml =
      run_command("python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' " +
                  shell_quote(svg_path));
  CHECK_MESSAGE(xml.exit_code == 0, xml.describe());
  // Both runs: train and val loss curves, lr and grad-norm curves, in the legend.
  for (const char* run : {"alpha", "beta"}) {
    CHECK(contains(svg, std::string("data-series=\"") + run + " train\""));
    CHECK(contains(svg, std::string("data-series=\"") + run + " val\""));
    CHECK(count_of(svg, std::string("data-series=\"") + run + "\"") == 2);  // lr, grad norm
    CHECK(contains(svg, std::string(">") + run + " train "));  // its end label: name and value
  }
  CHECK(count_of(svg, "class=\"curve\"") == 8);
  CHECK(count_of(svg, "class=\"endlabel\"") == 8);
  CHECK(contains(svg, ">Learning rate</text>"));
  CHECK(contains(svg, ">Gradient norm (before clipping)</text>"));
  CHECK(contains(svg, ">step</text>"));

  // Replotting over its own file is fine; over a file it did not write, not
  // without --force.
  CHECK(run_attnlab({"plot", dir.file("alpha"), "--out", svg_path, "--x", "tokens"}).exit_code ==
        0);
  CHECK(contains(read_text_file(svg_path), ">tokens trained</text>"));
  const std::string other = dir.file("mine.svg");
  std::ofstream(other) << "<svg/>";
  const CommandResult refused = run_attnlab({"plot", dir.file("alpha"), "--out", other});
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, "exists and was not written by attnlab plot: give --force"));
  CHECK(read_text_file(other) == "<svg/>");
  CHECK(run_attnlab({"plot", dir.file("alpha"), "--out", other, "--x", "time", "--force"})
            .exit_code == 0);
  CHECK(contains(read_text_file(other), ">training time (minutes)</text>"));
  // Not a run directory.
  const CommandResult bad = run_attnlab({"plot", dir.file("plots"), "--out", dir.file("x.svg")});
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, "no metrics.csv"));
}

}  // namespace
}  // namespace attnlab
