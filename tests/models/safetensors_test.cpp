// safetensors: round trips, a file written byte by byte from the format's
// description, every malformed input refused with a message, atomic writes.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/models/safetensors.hpp"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

template <typename Fn>
std::string error_of(Fn&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A fresh, empty directory for one test case.
fs::path scratch_dir(const std::string& name) {
  fs::path dir = fs::path(ATTNLAB_BINARY_DIR) / "safetensors_test" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void append_u64_le(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A safetensors file from a header text and raw data bytes, as the format says.
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> out;
  append_u64_le(out, header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::string read_error(const std::vector<uint8_t>& bytes) {
  return error_of([&] { read_safetensors_bytes(bytes, "bad.safetensors"); });
}

}  // namespace

TEST_CASE("a file written by hand from the format's description reads back") {
  // Header entries deliberately out of data order; no padding (readers must
  // not need it). Data buffer, byte by byte (little-endian):
  //   [0, 16)  "w"    F32  [2, 2]  1.0, -2.0, 0.5, 3.0
  //   [16, 22) "b"    BF16 [3]     1.0, -1.5, 0.15625
  //   [22, 30) "d"    F64  []      2.5
  //   [30, 38) "ids"  I32  [2]     -1, 7
  //   [38, 54) "pos"  I64  [2, 1]  2^40, -3
  const std::string header = R"({"pos":{"dtype":"I64","shape":[2,1],"data_offsets":[38,54]},)"
                             R"("d":{"dtype":"F64","shape":[],"data_offsets":[22,30]},)"
                             R"("__metadata__":{"format":"pt","config":"{\"d_model\": 8}"},)"
                             R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},)"
                             R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                             R"("ids":{"dtype":"I32","shape":[2],"data_offsets":[30,38]}})";
  const std::vector<uint8_t> data = {
      0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,  // 1.0f, -2.0f
      0x00, 0x00, 0x00, 0x3F, 0x00, 0x00, 0x40, 0x40,  // 0.5f, 3.0f
      0x80, 0x3F, 0xC0, 0xBF, 0x20, 0x3E,              // bf16 1.0, -1.5, 0.15625
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x40,  // f64 2.5
      0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x00, 0x00, 0x00,  // i32 -1, 7
      0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,  // i64 2^40
      0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // i64 -3
  };
  const fs::path path = scratch_dir("by_hand") / "hand.safetensors";
  {
    const std::vector<uint8_t> bytes = make_file(header, data);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  const SafetensorsFile f = read_safetensors(path.string());
  CHECK(f.what == path.string());
  CHECK(f.metadata ==
        std::map<std::string, std::string>{{"format", "pt"}, {"config", "{\"d_model\": 8}"}});
  // Entries come in data-offset order, whatever the header's order.
  std::vector<std::string> names;
  for (const auto& e : f.entries) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"w", "b", "d", "ids", "pos"});

  const SafetensorsEntry& w = f.at("w");
  CHECK(w.dtype == "F32");
  CHECK(w.shape == Shape{2, 2});
  CHECK(w.begin == 0);
  CHECK(w.end == 16);
  Tensor wt = to_tensor(w, DType::F32);
  CHECK(wt.dtype() == DType::F32);
  CHECK(wt.shape() == Shape{2, 2});
  CHECK(wt.to_vector() == std::vector<double>{1.0, -2.0, 0.5, 3.0});
  CHECK(to_tensor(w, DType::F64).to_vector() == std::vector<double>{1.0, -2.0, 0.5, 3.0});

  Tensor bt = to_tensor(f.at("b"), DType::F32);
  CHECK(bt.shape() == Shape{3});
  CHECK(bt.to_vector() == std::vector<double>{1.0, -1.5, 0.15625});
  CHECK(to_tensor(f.at("b"), DType::F64).to_vector() == std::vector<double>{1.0, -1.5, 0.15625});

  Tensor dt = to_tensor(f.at("d"), DType::F64);
  CHECK(dt.dim() == 0);
  CHECK(dt.item() == 2.5);
  CHECK(to_tensor(f.at("d"), DType::F32).item() == 2.5);

  CHECK(to_int64(f.at("ids")) == std::vector<int64_t>{-1, 7});
  CHECK(to_int64(f.at("pos")) == std::vector<int64_t>{int64_t(1) << 40, -3});
  CHECK(f.at("pos").shape == Shape{2, 1});

  // Conversions a dtype does not allow are refused, naming the tensor.
  CHECK(error_of([&] { to_tensor(f.at("ids"), DType::F32); }) ==
        "tensor 'ids' has dtype I32; only F32, F64 and BF16 convert to a float tensor");
  CHECK(error_of([&] { to_int64(f.at("w")); }) ==
        "tensor 'w' has dtype F32; only I64 and I32 convert to integers");
  CHECK(f.find("nope") == nullptr);
  CHECK(error_of([&] { f.at("nope"); }) == path.string() + ": no tensor named 'nope'");
}

TEST_CASE("write then read round-trips f32, f64, int64 and metadata") {
  const fs::path dir = scratch_dir("round_trip");
  const std::string path = (dir / "model.safetensors").string();
  Rng rng(7);
  Tensor a = Tensor::normal({3, 4}, rng);
  Tensor b = Tensor::normal({5}, rng, 0, 1, DType::F64);
  Tensor s = Tensor::scalar(-0.25);
  Tensor empty = Tensor::zeros({0, 3});
  Tensor base = Tensor::arange(24).view({2, 3, 4});
  Tensor strided = base.permute({2, 0, 1}).narrow(0, 1, 2);  // not contiguous
  REQUIRE(!strided.is_contiguous());
  const std::map<std::string, std::string> meta = {
      {"config", R"({"vocab_size": 5})"}, {"step", "12"}, {"empty", ""}, {"utf8", "héllo ✓"}};
  write_safetensors(path, {{"a", a}, {"b", b}, {"s", s}, {"empty", empty}, {"strided", strided}},
                    meta);
  CHECK(files_in(dir) == std::vector<std::string>{"model.safetensors"});

  const std::string raw = slurp(path);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);  // header padded to a multiple of 8
  CHECK(raw[8] == '{');
  CHECK(raw.find("\"__metadata__\"") == 9);  // metadata first, as the reference writes it

  const SafetensorsFile f = read_safetensors(path);
  CHECK(f.metadata == meta);
  std::vector<std::string> names;
  for (const auto& e : f.entries) names.push_back(e.name);
  // Writing order is data order ("empty" and "strided" both begin where "s"
  // ends; equal offsets sort by name).
  CHECK(names == std::vector<std::string>{"a", "b", "s", "empty", "strided"});
  CHECK(f.at("a").dtype == "F32");
  CHECK(f.at("b").dtype == "F64");
  CHECK(to_tensor(f.at("a"), DType::F32).to_vector() == a.to_vector());
  CHECK(to_tensor(f.at("b"), DType::F64).to_vector() == b.to_vector());
  CHECK(to_tensor(f.at("s"), DType::F32).item() == -0.25);
  CHECK(to_tensor(f.at("empty"), DType::F32).shape() == Shape{0, 3});
  Tensor st = to_tensor(f.at("strided"), DType::F32);
  CHECK(st.shape() == strided.shape());
  CHECK(st.to_vector() == strided.to_vector());  // logical order

  // int64 arrays (batch files of token ids), mixed with a tensor.
  const std::string batch = (dir / "batch.safetensors").string();
  write_safetensors_values(batch, {{"inputs", Int64Array{{2, 3}, {0, 1, 2, 3, 4, INT64_MAX}}},
                                   {"targets", Int64Array{{2, 3}, {1, 2, 3, 4, 5, INT64_MIN}}},
                                   {"mask", Tensor::ones({2})}});
  const SafetensorsFile bf = read_safetensors(batch);
  CHECK(bf.metadata.empty());
  CHECK(bf.at("inputs").dtype == "I64");
  CHECK(bf.at("inputs").shape == Shape{2, 3});
  CHECK(to_int64(bf.at("inputs")) == std::vector<int64_t>{0, 1, 2, 3, 4, INT64_MAX});
  CHECK(to_int64(bf.at("targets")) == std::vector<int64_t>{1, 2, 3, 4, 5, INT64_MIN});
  CHECK(to_tensor(bf.at("mask"), DType::F32).to_vector() == std::vector<double>{1, 1});

  // The bytes in memory are the bytes of the file.
  const std::vector<uint8_t> mem = safetensors_bytes({{"a", a}, {"b", b}}, meta);
  write_safetensors(path, {{"a", a}, {"b", b}}, meta);
  const std::string again = slurp(path);
  CHECK(std::string(mem.begin(), mem.end()) == again);

  // An entry keeps its bytes alive after the file object is gone.
  SafetensorsEntry kept = read_safetensors(path).at("a");
  CHECK(to_tensor(kept, DType::F32).to_vector() == a.to_vector());
}

TEST_CASE("writer refuses bad names and data before creating any file") {
  const fs::path dir = scratch_dir("writer_refusals");
  const std::string path = (dir / "x.safetensors").string();
  const Tensor t = Tensor::ones({2});
  const std::string prefix = "cannot write '" + path + "': ";
  CHECK(error_of([&] {
          write_safetensors(path, {{"a", t}, {"a", t}});
        }) == prefix + "duplicate tensor name 'a'");
  CHECK(error_of([&] { write_safetensors(path, {{"", t}}); }) == prefix + "a tensor name is empty");
  CHECK(error_of([&] {
          write_safetensors(path, {{"__metadata__", t}});
        }) == prefix + "'__metadata__' cannot name a tensor");
  CHECK(error_of([&] {
          write_safetensors(path, {{"u", Tensor()}});
        }) == prefix + "tensor 'u' is undefined");
  CHECK(error_of([&] {
          write_safetensors_values(path, {{"i", Int64Array{{2, 2}, {1, 2, 3}}}});
        }) == prefix + "tensor 'i' has 3 values for shape [2, 2]");
  CHECK(error_of([&] {
          write_safetensors(path, {{"a", t}}, {{"k", "\xff"}});
        }) == prefix + "a tensor name or metadata string is not valid UTF-8");
  CHECK(files_in(dir).empty());
}

TEST_CASE("malformed files are refused with a message naming the file and the field") {
  // A valid file to cut and corrupt: header then 4 + 8 bytes of data.
  const std::vector<uint8_t> good =
      safetensors_bytes({{"x", Tensor::ones({1})}, {"y", Tensor::ones({1}, DType::F64)}});
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(good[i]) << (8 * i);
  REQUIRE(good.size() == 8 + header_len + 12);
  CHECK_NOTHROW(read_safetensors_bytes(good, "good"));

  SUBCASE("truncated at every length") {
    for (size_t cut = 0; cut < good.size(); ++cut) {
      CAPTURE(cut);
      const std::vector<uint8_t> part(good.begin(), good.begin() + static_cast<long>(cut));
      const std::string message = read_error(part);
      CHECK(message.rfind("bad.safetensors: ", 0) == 0);
      if (cut < 8) {
        CHECK(message == fmt::format("bad.safetensors: too short to be a safetensors file ({} "
                                     "bytes; the header length alone takes 8)",
                                     cut));
      } else if (cut < 8 + header_len) {
        CHECK(message == fmt::format("bad.safetensors: header length {} runs past the end of "
                                     "the file ({} bytes after the length)",
                                     header_len, cut - 8));
      } else {
        CHECK(contains(message, "run past the end of the data buffer"));
      }
    }
  }

  SUBCASE("lying header lengths") {
    auto with_length = [&](uint64_t n) {
      std::vector<uint8_t> bad = good;
      for (int i = 0; i < 8; ++i) bad[i] = static_cast<uint8_t>(n >> (8 * i));
      return read_error(bad);
    };
    CHECK(with_length(UINT64_MAX) ==
          "bad.safetensors: header length 18446744073709551615 is "
          "absurd (more than 100 MB); not a safetensors file?");
    CHECK(contains(with_length(100'000'001), "is absurd"));
    CHECK(contains(with_length(good.size() - 7), "runs past the end of the file"));
    // Shorter than the real header: the JSON is cut.
    CHECK(contains(with_length(header_len - 10), "the header is not valid JSON"));
    CHECK(contains(with_length(0), "the header is not valid JSON"));
  }

  struct Case {
    std::string header;
    size_t data_size;
    std::string message;
  };
  const std::string f32_4 = R"("dtype":"F32","shape":[4])";
  const std::vector<Case> cases = {
      // not JSON, not UTF-8, not an object
      {R"({"x": {"dtype": "F32",)", 0,
       "bad.safetensors: the header is not valid JSON: parse error"},
      {"{\"x\xff\": 1}", 0,
       "bad.safetensors: the header is not valid UTF-8 (byte 3 of the header)"},
      {"{\"\xc0\xaf\": 1}", 0, "not valid UTF-8 (byte 2"},      // overlong '/'
      {"{\"\xed\xa0\x80\": 1}", 0, "not valid UTF-8 (byte 2"},  // a surrogate
      {"[1, 2]", 0, "bad.safetensors: the header must be a JSON object, got an array"},
      {"\"str\"", 0, "the header must be a JSON object, got a string"},
      // entries of the wrong shape
      {R"({"x": 3})", 0,
       "bad.safetensors: tensor 'x': must be an object with dtype, shape and data_offsets, got a "
       "number"},
      {R"({"x": {"shape": [1], "data_offsets": [0, 4]}})", 4, "tensor 'x': missing 'dtype'"},
      {R"({"x": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, "tensor 'x': missing 'shape'"},
      {R"({"x": {"dtype": "F32", "shape": [1]}})", 4, "tensor 'x': missing 'data_offsets'"},
      {R"({"x": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4,
       "tensor 'x': 'dtype' must be a string, got a number"},
      {R"({"x": {"dtype": "F31", "shape": [1], "data_offsets": [0, 4]}})", 4,
       "tensor 'x': unknown dtype 'F31'"},
      {R"({"x": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4,
       "tensor 'x': 'shape' must be an array of integers, got a number"},
      {R"({"x": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}})", 4,
       "tensor 'x': 'shape' must hold integers, got a number"},
      {R"({"x": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", 4,
       "tensor 'x': 'shape' must hold integers, got a string"},
      {R"({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4,
       "tensor 'x': negative dimension -1 in 'shape'"},
      {R"({"x": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 4]}})", 4,
       "tensor 'x': dimension 18446744073709551615 in 'shape' is too large"},
      {R"({"x": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", 4,
       "tensor 'x': the element count of 'shape' [4294967296,4294967296] overflows int64"},
      {R"({"x": {"dtype": "F32", "shape": [4294967296, 4294967296, 0], "data_offsets": [0, 0]}})",
       0, "overflows int64"},
      {R"({"x": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 4]}})", 4,
       "tensor 'x': the byte size of shape [4611686018427387904] overflows int64"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4,
       "tensor 'x': 'data_offsets' must be an array [begin, end], got 1 elements"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": {"a": 1}}})", 4,
       "tensor 'x': 'data_offsets' must be an array [begin, end], got an object"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4,
       "tensor 'x': 'data_offsets' must be two non-negative integers, got [-4,0]"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4.0]}})", 4,
       "'data_offsets' must be two non-negative integers"},
      // offsets against sizes
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4,
       "bad.safetensors: tensor 'x': data_offsets [4, 0] begin after they end"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 4,
       "bad.safetensors: tensor 'x': data_offsets [4, 8] run past the end of the data buffer (4 "
       "bytes)"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}})", 4,
       "'data_offsets' must be two non-negative integers"},
      {R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", 8,
       "bad.safetensors: tensor 'x': data_offsets [0, 4] hold 4 bytes, but F32 [2] needs 8 (2 × 4 "
       "bytes)"},
      {R"({"x": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 16]}})", 16,
       "tensor 'x': data_offsets [0, 16] hold 16 bytes, but BF16 [2, 2] needs 8"},
      // overlaps (empty tensors hold no bytes and overlap nothing)
      {"{\"x\": {" + f32_4 + R"(, "data_offsets": [0, 16]}, "y": {)" + f32_4 +
           R"(, "data_offsets": [8, 24]}})",
       24, "bad.safetensors: tensor 'y' (bytes [8, 24)) overlaps tensor 'x' ([0, 16))"},
      {R"({"big": {"dtype": "U8", "shape": [32], "data_offsets": [0, 32]}, "in": {)" + f32_4 +
           R"(, "data_offsets": [16, 32]}, "z": {"dtype": "U8", "shape": [0], "data_offsets": [4, 4]}})",
       32, "tensor 'in' (bytes [16, 32)) overlaps tensor 'big' ([0, 32))"},
      // duplicates (the JSON parser would keep only the last)
      {"{\"x\": {" + f32_4 + R"(, "data_offsets": [0, 16]}, "x": {)" + f32_4 +
           R"(, "data_offsets": [16, 32]}})",
       32, "bad.safetensors: duplicate tensor name 'x' in the header"},
      {R"({"x": {"dtype": "F32", "dtype": "F64", "shape": [1], "data_offsets": [0, 4]}})", 4,
       "bad.safetensors: duplicate key 'dtype' in the header"},
      // metadata
      {R"({"__metadata__": {"step": 12}})", 0,
       "bad.safetensors: '__metadata__' value of 'step' must be a string, got a number"},
      {R"({"__metadata__": ["a"]})", 0,
       "bad.safetensors: '__metadata__' must be an object of strings, got an array"},
      {R"({"__metadata__": {"a": {"b": "c"}}})", 0,
       "'__metadata__' value of 'a' must be a string, got an object"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.header);
    const std::string message = read_error(make_file(c.header, std::vector<uint8_t>(c.data_size)));
    CHECK_MESSAGE(contains(message, c.message), message);
  }

  // Edge cases that are valid: null metadata, gaps between tensors, empty
  // tensors anywhere, trailing spaces, an empty header object.
  CHECK_NOTHROW(read_safetensors_bytes(make_file(R"({"__metadata__": null})"), "ok"));
  CHECK_NOTHROW(read_safetensors_bytes(make_file("{}"), "ok"));
  CHECK_NOTHROW(read_safetensors_bytes(make_file("{}      "), "ok"));
  const SafetensorsFile gap = read_safetensors_bytes(
      make_file(R"({"a": {"dtype": "U8", "shape": [2], "data_offsets": [6, 8]},)"
                R"( "e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [7, 7]}})",
                std::vector<uint8_t>(10)),
      "ok");
  CHECK(gap.entries.size() == 2);
  CHECK(gap.entries[0].name == "a");
  CHECK(gap.entries[1].name == "e");
  CHECK(error_of([&] { to_tensor(gap.at("a"), DType::F32); }) ==
        "tensor 'a' has dtype U8; only F32, F64 and BF16 convert to a float tensor");
  CHECK(to_tensor(gap.at("e"), DType::F64).shape() == Shape{0, 5});
}

TEST_CASE("every single corrupted byte of a valid file is read or refused, never a crash") {
  const std::vector<uint8_t> good = safetensors_bytes(
      {{"w", Tensor::ones({2, 2})}, {"ids", Int64Array{{3}, {1, 2, 3}}}}, {{"k", "v"}});
  int refused = 0, read = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t v : {uint8_t(0x00), uint8_t(0xFF), uint8_t('"'), uint8_t('9'), uint8_t(0x80)}) {
      std::vector<uint8_t> bad = good;
      bad[i] = v;
      try {
        SafetensorsFile f = read_safetensors_bytes(bad, "fuzz");
        for (const auto& e : f.entries) {
          if (e.dtype == "F32" || e.dtype == "F64" || e.dtype == "BF16") to_tensor(e, DType::F32);
          if (e.dtype == "I64" || e.dtype == "I32") to_int64(e);
        }
        ++read;
      } catch (const Error&) {
        ++refused;
      }
    }
  }
  CHECK(refused > 0);
  CHECK(read > 0);
}

TEST_CASE("reading a missing file or a directory is refused") {
  const fs::path dir = scratch_dir("read_errors");
  const std::string missing = (dir / "missing.safetensors").string();
  CHECK(error_of([&] { read_safetensors(missing); }) ==
        "cannot open '" + missing + "': No such file or directory");
  CHECK(error_of([&] { read_safetensors(dir.string()); }) ==
        "cannot read '" + dir.string() + "': not a regular file");
}

TEST_CASE("atomic writes leave no temporary file and never a half-written target") {
  const fs::path dir = scratch_dir("atomic");
  const std::string path = (dir / "out.bin").string();

  write_file_atomically(path, std::string_view("first"));
  CHECK(slurp(path) == "first");
  CHECK(files_in(dir) == std::vector<std::string>{"out.bin"});
  write_file_atomically(path, [](std::ostream& out) { out << "second, " << 2; });
  CHECK(slurp(path) == "second, 2");
  CHECK(files_in(dir) == std::vector<std::string>{"out.bin"});

  // The writer fails half-way: its exception comes through unchanged, the
  // target keeps its old contents and the temporary file is gone.
  CHECK(error_of([&] {
          write_file_atomically(path, [](std::ostream& out) {
            out << "partial";
            throw Error("out of ideas");
          });
        }) == "out of ideas");
  CHECK(slurp(path) == "second, 2");
  CHECK(files_in(dir) == std::vector<std::string>{"out.bin"});

  // A directory that does not exist.
  const std::string nowhere = (dir / "no_such_dir" / "x.safetensors").string();
  const std::string message = error_of([&] {
    write_safetensors(nowhere, {{"a", Tensor::ones({1})}});
  });
  CHECK(message.rfind("cannot write '" + nowhere + "': cannot create the temporary file", 0) == 0);
  CHECK(contains(message, "No such file or directory"));
  CHECK(!fs::exists(dir / "no_such_dir"));

  // The target is a directory: the rename fails, nothing is left behind.
  fs::create_directory(dir / "occupied");
  fs::create_directory(dir / "occupied" / "child");
  const std::string occupied = (dir / "occupied").string();
  const std::string rename_message = error_of([&] {
    write_safetensors(occupied, {{"a", Tensor::ones({1})}});
  });
  CHECK(rename_message.rfind("cannot write '" + occupied + "': cannot rename", 0) == 0);
  CHECK(files_in(dir) == std::vector<std::string>{"occupied", "out.bin"});

  // A checkpoint refused (duplicate names) leaves the existing target untouched.
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  write_safetensors(ckpt, {{"a", Tensor::ones({2})}});
  const std::string before = slurp(ckpt);
  CHECK(!error_of([&] {
           write_safetensors(ckpt, {{"a", Tensor::zeros({2})}, {"a", Tensor::zeros({2})}});
         }).empty());
  CHECK(slurp(ckpt) == before);

  // Permission denied (meaningless as root, who may write anywhere).
  if (::geteuid() != 0) {
    const fs::path locked = dir / "locked";
    fs::create_directory(locked);
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    const std::string denied = (locked / "x.bin").string();
    const std::string m = error_of([&] { write_file_atomically(denied, std::string_view("x")); });
    CHECK(contains(m, "cannot write '" + denied + "'"));
    CHECK(contains(m, "Permission denied"));
    fs::permissions(locked, fs::perms::owner_all);
    CHECK(files_in(locked).empty());
  }
  std::vector<std::string> expected = {"ckpt.safetensors", "occupied", "out.bin"};
  if (::geteuid() != 0) expected.insert(expected.begin() + 1, "locked");
  CHECK(files_in(dir) == expected);
}
