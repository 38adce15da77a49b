// attnlab survey --quick end to end: the files, four rows, SVG charts that are
// well-formed XML with one curve per variant, and cache figures that agree
// with attnlab info.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli/cli_test_util.hpp"

using namespace attnlab::testing;

namespace {

// A small well-formedness check of XML: every tag closes in order, attributes
// are quoted, nothing is left open. (No XML library is a dependency here.)
bool well_formed_xml(const std::string& text, std::string* why) {
  std::vector<std::string> open;
  size_t i = text.find('<');
  while (i != std::string::npos) {
    const size_t end = text.find('>', i);
    if (end == std::string::npos) return *why = "unclosed '<'", false;
    std::string tag = text.substr(i + 1, end - i - 1);
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name)
        return *why = "closing </" + name + "> does not match", false;
      open.pop_back();
    } else if (!tag.empty() && tag[0] != '?' && tag[0] != '!') {
      if (std::count(tag.begin(), tag.end(), '"') % 2 != 0)
        return *why = "unbalanced quotes in <" + tag + ">", false;
      const bool self_closing = tag.back() == '/';
      const std::string name = tag.substr(0, tag.find_first_of(" /"));
      if (!self_closing) open.push_back(name);
    }
    i = text.find('<', end);
  }
  if (!open.empty()) return *why = "<" + open.back() + "> never closed", false;
  return true;
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("survey --quick writes the table, the CSV and six charts") {
  TempDir dir("attnlab-survey");
  const std::string out = dir.file("survey");
  const CommandResult r =
      run_attnlab({"survey", "--quick", "--steps", "20", "--threads", "1", "--out", out});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());

  const std::string md = read_text_file(out + "/survey.md");
  CHECK(md.find("Command: `attnlab survey --quick") != std::string::npos);
  CHECK(md.find("Machine: ") != std::string::npos);
  for (const char* v : {"| mha |", "| gqa |", "| mqa |", "| mla |"})
    CHECK_MESSAGE(md.find(v) != std::string::npos, v);

  const std::string csv = read_text_file(out + "/survey.csv");
  std::vector<std::string> lines;
  std::istringstream in(csv);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 5);  // header + four variants
  CHECK(lines[0].rfind("variant,runs,final_val_loss", 0) == 0);

  for (const char* chart : {"val_loss.svg", "kv_cache.svg", "train_throughput.svg",
                            "decode_throughput.svg", "loss_per_cache_byte.svg", "length.svg"}) {
    CAPTURE(chart);
    const std::string svg = read_text_file(out + "/" + chart);
    std::string why;
    CHECK_MESSAGE(well_formed_xml(svg, &why), why);
    CHECK(svg.find("<svg") != std::string::npos);
  }
  CHECK(count(read_text_file(out + "/val_loss.svg"), "class=\"curve\"") == 4);
  CHECK(count(read_text_file(out + "/kv_cache.svg"), "class=\"bar\"") == 4);
  CHECK(count(read_text_file(out + "/kv_cache.svg"), "% of mha<") == 4);
  CHECK(count(read_text_file(out + "/loss_per_cache_byte.svg"), "class=\"point\"") == 4);
  CHECK(count(read_text_file(out + "/length.svg"), "class=\"curve\"") == 4);
  CHECK(read_text_file(out + "/val_loss.svg").find("class=\"subtitle\"") != std::string::npos);
  for (const char* v : {"mha", "gqa", "mqa", "mla"})
    CHECK(std::filesystem::exists(out + "/runs/" + v + "/seed-1337/metrics.csv"));

  // The cache bytes per token in the table are those attnlab info reports.
  for (size_t row = 1; row < lines.size(); ++row) {
    std::vector<std::string> f;
    std::istringstream cells(lines[row]);
    for (std::string c; std::getline(cells, c, ',');) f.push_back(c);
    REQUIRE(f.size() == 20);
    // Speed: median ± spread; loss at 1×, 2×, 4× the context, finite and positive.
    CHECK(std::stod(f[15]) >= 0);
    CHECK(std::stod(f[16]) >= 0);
    for (size_t i = 17; i < 20; ++i) CHECK(std::stod(f[i]) > 0);
    const CommandResult info =
        run_attnlab({"info", "--preset", "baby", "--attention", f[0], "--vocab-size", "65"});
    REQUIRE_MESSAGE(info.exit_code == 0, info.describe());
    // "KV cache per token: N numbers, B bytes in f32": B, read by hand (GCC 12
    // warns of <regex> under the asan preset, -Wmaybe-uninitialized).
    const std::string label = "KV cache per token: ";
    const size_t at = info.out.find(label);
    REQUIRE(at != std::string::npos);
    const size_t comma = info.out.find(", ", at);
    REQUIRE(comma != std::string::npos);
    const size_t end = info.out.find(" bytes", comma);
    REQUIRE(end != std::string::npos);
    CHECK_MESSAGE(info.out.substr(comma + 2, end - comma - 2) == f[9], f[0]);
  }
}

TEST_CASE("survey refuses bad flags") {
  const CommandResult r = run_attnlab({"survey", "--experts-per-token", "2"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--experts-per-token goes with --experts") != std::string::npos);
}

TEST_CASE("survey --task recall --quick: accuracy per variant, recall_accuracy, three charts") {
  TempDir dir("attnlab-survey-recall");
  const std::string out = dir.file("recall");
  const CommandResult r = run_attnlab({"survey", "--task", "recall", "--quick", "--steps", "3",
                                       "--pairs", "2,4", "--threads", "1", "--out", out});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  const std::string md = read_text_file(out + "/survey.md");
  CHECK(md.find("| variant | KV cache bytes/token | accuracy, 2 pairs | accuracy, 4 pairs |") !=
        std::string::npos);
  std::vector<std::string> lines;
  std::istringstream in(read_text_file(out + "/survey.csv"));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 9);  // header + four variants × two settings
  CHECK(lines[0].rfind("variant,task,pairs,runs,recall_accuracy,recall_accuracy_std,", 0) == 0);
  for (size_t row = 1; row < lines.size(); ++row) {
    std::vector<std::string> f;
    std::istringstream cells(lines[row]);
    for (std::string c; std::getline(cells, c, ',');) f.push_back(c);
    REQUIRE(f.size() == 13);
    CHECK(f[1] == "recall");
    const double accuracy = std::stod(f[4]);
    CHECK(accuracy >= 0);
    CHECK(accuracy <= 1);
  }
  for (const char* chart :
       {"accuracy_sweep.svg", "accuracy_by_answer.svg", "accuracy_per_cache_byte.svg"}) {
    CAPTURE(chart);
    const std::string svg = read_text_file(out + "/" + chart);
    std::string why;
    CHECK_MESSAGE(well_formed_xml(svg, &why), why);
  }
  CHECK(count(read_text_file(out + "/accuracy_sweep.svg"), "class=\"curve\"") == 4);
  CHECK(count(read_text_file(out + "/accuracy_per_cache_byte.svg"), "class=\"point\"") == 4);
}

TEST_CASE("survey --task induction --variants: only those, per copied length") {
  TempDir dir("attnlab-survey-induction");
  const std::string out = dir.file("induction");
  const CommandResult r =
      run_attnlab({"survey", "--task", "induction", "--quick", "--steps", "2", "--copy-length", "4",
                   "--context", "16", "--variants", "mqa,mla", "--threads", "1", "--out", out});
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  const std::string csv = read_text_file(out + "/survey.csv");
  CHECK(csv.rfind("variant,task,copied_length,runs,induction_accuracy,", 0) == 0);
  CHECK(csv.find("\nmqa,induction,4,1,") != std::string::npos);
  CHECK(csv.find("\nmla,induction,4,1,") != std::string::npos);
  CHECK(csv.find("\nmha,") == std::string::npos);
}

TEST_CASE("survey refuses task flags that do not fit") {
  struct Row {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Row& row : std::vector<Row>{
           {{"survey", "--pairs", "4"}, "--pairs goes with --task recall or induction"},
           {{"survey", "--task", "recall", "--copy-length", "4"},
            "--copy-length goes with --task induction"},
           {{"survey", "--task", "recall", "--pairs", "40"},
            "recall with 40 pairs needs 40 distinct keys"},
           {{"survey", "--task", "induction", "--copy-length", "40"},
            "needs a context of at least 79"},
           {{"survey", "--task", "recall", "--variants", "xla"},
            "--variants: xla is not one of the survey's variants"},
           {{"survey", "--variants", "mha,mqa+moe"},
            "--variants: mqa+moe is not one of the survey's variants"}}) {
    TempDir dir("attnlab-survey-refused");
    std::vector<std::string> args = row.args;
    args.insert(args.end(), {"--out", dir.file("out")});
    const CommandResult r = run_attnlab(args);
    CAPTURE(row.message);
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(r.err.find(row.message) != std::string::npos, r.err);
    CHECK(!std::filesystem::exists(dir.file("out")));  // nothing written
  }
}

TEST_CASE("survey writes into a folder holding earlier surveys in subfolders, not other files") {
  // docs/survey holds the language-model survey and, in recall/ and
  // induction/, the task surveys: regenerating the first must not be refused.
  TempDir dir("attnlab-survey-nested");
  const std::string out = dir.file("survey");
  std::filesystem::create_directories(out + "/induction");
  std::ofstream(out + "/induction/survey.md") << "# an earlier survey\n";
  const std::vector<std::string> args = {
      "survey",    "--task", "recall",    "--quick", "--steps",    "1",
      "--pairs",   "2",      "--context", "16",      "--variants", "mha",
      "--threads", "1",      "--quiet",   "--out",   out};
  const CommandResult r = run_attnlab(args);
  REQUIRE_MESSAGE(r.exit_code == 0, r.describe());
  CHECK(std::filesystem::exists(out + "/survey.csv"));

  std::ofstream(out + "/induction/notes.txt") << "mine\n";
  const CommandResult refused = run_attnlab(args);
  CHECK(refused.exit_code == 1);
  CHECK_MESSAGE(refused.err.find("holds files attnlab survey did not write") != std::string::npos,
                refused.err);
}
