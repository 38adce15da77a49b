// docs/guide/: the ten chapters exist, each shows a command, and every code
// reference they make names a file that exists and a function it holds.
//
// The syntax (docs/guide/README.md): a reference is a backticked span
// `path/file.ext` or `path/file.ext:function`, where function may be
// qualified (`Class::method`); paths are relative to the repository root.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = ATTNLAB_SOURCE_DIR;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Reference {
  std::string file, function;  // function may be empty
};

bool is_path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
         c == '-';
}

// The backticked spans of text that look like a reference: a path with a
// slash and a source extension, optionally ":function".
std::vector<Reference> references_in(const std::string& text) {
  std::vector<Reference> out;
  size_t at = 0;
  while ((at = text.find('`', at)) != std::string::npos) {
    const size_t end = text.find('`', at + 1);
    if (end == std::string::npos) break;
    const std::string span = text.substr(at + 1, end - at - 1);
    at = end + 1;
    const size_t colon = span.find(':');
    const std::string file = span.substr(0, colon);
    const bool source = file.find('/') != std::string::npos &&
                        std::all_of(file.begin(), file.end(), is_path_char) &&
                        (file.ends_with(".cpp") || file.ends_with(".hpp") || file.ends_with(".md"));
    if (!source) continue;
    out.push_back({file, colon == std::string::npos ? "" : span.substr(colon + 1)});
  }
  return out;
}

// Whether `code` defines or declares `function` (Name or Class::name): the
// qualified name followed by '(' for a definition out of its class, or the
// last component followed by '(' otherwise.
bool names_function(const std::string& code, const std::string& function) {
  if (code.find(function + "(") != std::string::npos) return true;
  const size_t last = function.rfind("::");
  return last != std::string::npos &&
         code.find(function.substr(last + 2) + "(") != std::string::npos;
}

}  // namespace

TEST_CASE("docs/guide: ten chapters, each with a command and code references that exist") {
  std::vector<fs::path> chapters;
  for (const auto& entry : fs::directory_iterator(kRoot / "docs/guide"))
    if (entry.path().filename().string()[0] >= '1' && entry.path().filename().string()[0] <= '9' &&
        entry.path().extension() == ".md")
      chapters.push_back(entry.path());
  std::sort(chapters.begin(), chapters.end());
  REQUIRE(chapters.size() == 10);
  int functions = 0;
  for (const fs::path& chapter : chapters) {
    CAPTURE(chapter.filename().string());
    const std::string text = read(chapter);
    CHECK(text.find("```sh") != std::string::npos);  // a command to run
    const std::vector<Reference> refs = references_in(text);
    CHECK(refs.size() >= 3);
    for (const Reference& r : refs) {
      CAPTURE(r.file);
      CAPTURE(r.function);
      const fs::path file = kRoot / r.file;
      REQUIRE(fs::is_regular_file(file));
      if (r.function.empty()) continue;
      ++functions;
      CHECK(names_function(read(file), r.function));
    }
  }
  CHECK(functions >= 30);
}

TEST_CASE("docs/guide checker: finds references, and rejects a name the file does not hold") {
  const auto refs = references_in("see `nn/moe_routing.cpp:route_top_k` and `x.cpp`, `a/b.hpp`");
  REQUIRE(refs.size() == 2);
  CHECK(refs[0].file == "nn/moe_routing.cpp");
  CHECK(refs[0].function == "route_top_k");
  CHECK(refs[1].file == "a/b.hpp");
  const std::string code = read(kRoot / "nn/moe_routing.cpp");
  CHECK(names_function(code, "route_top_k"));
  CHECK(!names_function(code, "route_bottom_k"));
  CHECK(names_function("void Decoder::step() {", "Decoder::step"));
}
