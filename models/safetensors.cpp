#include "attnlab/models/safetensors.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "attnlab/models/atomic_file.hpp"

namespace attnlab {
namespace {

using nlohmann::json;

// A header longer than this is refused before anything is allocated for it
// (the reference implementation has the same limit).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// --- little-endian loads and stores, whatever the host's byte order ---

template <typename U>
U load_le(const uint8_t* p) {
  U v = 0;
  for (size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(p[i]) << (8 * i);
  return v;
}

template <typename U>
void store_le(U v, uint8_t* p) {
  for (size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Index of the first byte that breaks UTF-8 (overlong forms, surrogates and
// code points past U+10FFFF included), or npos when the text is valid.
size_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t min, cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return i;
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

// A JSON integer as int64 in [0, INT64_MAX]; nullopt otherwise (negative,
// fractional, too large or not a number).
std::optional<int64_t> non_negative_int(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return v.get<int64_t>();
  return std::nullopt;
}

std::string shape_text(const Shape& s) {
  return shape_str(s);
}

// Validates one header entry and makes it (bytes not yet attached).
SafetensorsEntry parse_entry(const std::string& what, const std::string& name, const json& info,
                             uint64_t data_size) {
  const std::string where = fmt::format("{}: tensor '{}'", what, name);
  ATTN_CHECK(info.is_object(), "{}: must be an object with dtype, shape and data_offsets, got {}",
             where, describe(info));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    ATTN_CHECK(info.contains(field), "{}: missing '{}'", where, field);

  SafetensorsEntry e;
  e.name = name;
  const json& dtype = info.at("dtype");
  ATTN_CHECK(dtype.is_string(), "{}: 'dtype' must be a string, got {}", where, describe(dtype));
  e.dtype = dtype.get<std::string>();
  const size_t elem = safetensors_dtype_size(e.dtype);
  ATTN_CHECK(elem != 0, "{}: unknown dtype '{}'", where, e.dtype);

  const json& shape = info.at("shape");
  ATTN_CHECK(shape.is_array(), "{}: 'shape' must be an array of integers, got {}", where,
             describe(shape));
  // The element count must fit in int64 even with every 0 read as 1, so that
  // no later product of sizes over this shape can overflow.
  int64_t numel = 1, bound = 1;
  for (const json& d : shape) {
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
      throw Error(fmt::format("{}: negative dimension {} in 'shape'", where, d.get<int64_t>()));
    auto dim = non_negative_int(d);
    ATTN_CHECK(dim.has_value() || !d.is_number_integer(),
               "{}: dimension {} in 'shape' is too large", where, d.dump());
    ATTN_CHECK(dim.has_value(), "{}: 'shape' must hold integers, got {}", where, describe(d));
    e.shape.push_back(*dim);
    ATTN_CHECK(!__builtin_mul_overflow(bound, std::max<int64_t>(*dim, 1), &bound),
               "{}: the element count of 'shape' {} overflows int64", where, shape.dump());
    numel *= *dim;  // ≤ bound: cannot overflow
  }
  int64_t nbytes;
  ATTN_CHECK(!__builtin_mul_overflow(numel, static_cast<int64_t>(elem), &nbytes),
             "{}: the byte size of shape {} overflows int64", where, shape_text(e.shape));

  const json& offsets = info.at("data_offsets");
  ATTN_CHECK(offsets.is_array() && offsets.size() == 2,
             "{}: 'data_offsets' must be an array [begin, end], got {}", where,
             offsets.is_array() ? fmt::format("{} elements", offsets.size()) : describe(offsets));
  auto begin = non_negative_int(offsets[0]), end = non_negative_int(offsets[1]);
  ATTN_CHECK(begin && end, "{}: 'data_offsets' must be two non-negative integers, got {}", where,
             offsets.dump());
  ATTN_CHECK(*begin <= *end, "{}: data_offsets [{}, {}] begin after they end", where, *begin, *end);
  ATTN_CHECK(static_cast<uint64_t>(*end) <= data_size,
             "{}: data_offsets [{}, {}] run past the end of the data buffer ({} bytes)", where,
             *begin, *end, data_size);
  ATTN_CHECK(*end - *begin == nbytes,
             "{}: data_offsets [{}, {}] hold {} bytes, but {} {} needs {} ({} × {} bytes)", where,
             *begin, *end, *end - *begin, e.dtype, shape_text(e.shape), nbytes, numel, elem);
  e.begin = *begin;
  e.end = *end;
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& what, const json& m) {
  std::map<std::string, std::string> out;
  if (m.is_null()) return out;  // the reference reader takes null as no metadata
  ATTN_CHECK(m.is_object(), "{}: '__metadata__' must be an object of strings, got {}", what,
             describe(m));
  for (const auto& [key, value] : m.items()) {
    ATTN_CHECK(value.is_string(), "{}: '__metadata__' value of '{}' must be a string, got {}", what,
               key, describe(value));
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// Parses and validates the whole file held in `file`.
SafetensorsFile parse_file(std::shared_ptr<const std::vector<uint8_t>> file,
                           const std::string& what) {
  const uint8_t* base = file->data();
  const uint64_t size = file->size();
  ATTN_CHECK(size >= 8,
             "{}: too short to be a safetensors file ({} bytes; the header length alone takes 8)",
             what, size);
  const uint64_t header_len = load_le<uint64_t>(base);
  ATTN_CHECK(header_len <= kMaxHeaderBytes,
             "{}: header length {} is absurd (more than 100 MB); not a safetensors file?", what,
             header_len);
  ATTN_CHECK(header_len <= size - 8,
             "{}: header length {} runs past the end of the file ({} bytes after the length)", what,
             header_len, size - 8);
  const std::string_view header(reinterpret_cast<const char*>(base + 8), header_len);
  if (size_t bad = first_invalid_utf8(header); bad != std::string_view::npos)
    throw Error(
        fmt::format("{}: the header is not valid UTF-8 (byte {} of the header)", what, bad));

  // nlohmann keeps the last of duplicate keys; a callback sees every key as it
  // is parsed, so duplicates (in any object of the header) are caught here.
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::pair<std::string, size_t>> duplicate;  // key, depth
  json::parser_callback_t on_event = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() && !duplicate) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) duplicate.emplace(key, open_objects.size());
    }
    return true;
  };
  json j;
  try {
    j = json::parse(header, on_event);
  } catch (const json::exception& e) {
    std::string detail = e.what();
    if (auto p = detail.find("] "); p != std::string::npos) detail = detail.substr(p + 2);
    throw Error(fmt::format("{}: the header is not valid JSON: {}", what, detail));
  }
  if (duplicate) {
    if (duplicate->second == 1)
      throw Error(
          fmt::format("{}: duplicate tensor name '{}' in the header", what, duplicate->first));
    throw Error(fmt::format("{}: duplicate key '{}' in the header", what, duplicate->first));
  }
  ATTN_CHECK(j.is_object(), "{}: the header must be a JSON object, got {}", what, describe(j));

  SafetensorsFile out;
  out.what = what;
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  for (const auto& [name, info] : j.items()) {
    if (name == "__metadata__") {
      out.metadata = parse_metadata(what, info);
      continue;
    }
    out.entries.push_back(parse_entry(what, name, info, data_size));
  }

  std::sort(out.entries.begin(), out.entries.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.name < b.name;
  });
  // Sorted by begin: a non-empty entry overlaps an earlier one exactly when it
  // begins before the furthest end seen so far. Empty entries hold no bytes.
  const SafetensorsEntry* furthest = nullptr;
  for (const SafetensorsEntry& e : out.entries) {
    if (e.begin == e.end) continue;
    if (furthest && e.begin < furthest->end)
      throw Error(fmt::format("{}: tensor '{}' (bytes [{}, {})) overlaps tensor '{}' ([{}, {}))",
                              what, e.name, e.begin, e.end, furthest->name, furthest->begin,
                              furthest->end));
    if (!furthest || e.end > furthest->end) furthest = &e;
  }
  for (SafetensorsEntry& e : out.entries) {
    e.bytes =
        std::span<const uint8_t>(base + data_start + e.begin, static_cast<size_t>(e.end - e.begin));
    e.owner = file;
  }
  return out;
}

// --- writing ---

// The header (padded) for `values`; validates names and metadata.
std::string build_header(const std::vector<std::pair<std::string, SafetensorsValue>>& values,
                         const std::map<std::string, std::string>& metadata,
                         const std::string& what) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::set<std::string> names;
  int64_t offset = 0;
  for (const auto& [name, value] : values) {
    ATTN_CHECK(!name.empty(), "{}: a tensor name is empty", what);
    ATTN_CHECK(name != "__metadata__", "{}: '__metadata__' cannot name a tensor", what);
    ATTN_CHECK(names.insert(name).second, "{}: duplicate tensor name '{}'", what, name);
    std::string dtype;
    Shape shape;
    int64_t nbytes = 0;
    if (const Tensor* t = std::get_if<Tensor>(&value)) {
      ATTN_CHECK(t->defined(), "{}: tensor '{}' is undefined", what, name);
      dtype = t->dtype() == DType::F32 ? "F32" : "F64";
      shape = t->shape();
      nbytes = t->numel() * static_cast<int64_t>(dtype_size(t->dtype()));
    } else if (const RawArray* r = std::get_if<RawArray>(&value)) {
      for (int64_t d : r->shape)
        ATTN_CHECK(d >= 0, "{}: tensor '{}' has a negative dimension in shape {}", what, name,
                   shape_str(r->shape));
      const size_t size = safetensors_dtype_size(r->dtype);
      ATTN_CHECK(size > 0, "{}: tensor '{}' has an unknown dtype '{}'", what, name, r->dtype);
      ATTN_CHECK(static_cast<int64_t>(r->bytes.size()) ==
                     shape_numel(r->shape) * static_cast<int64_t>(size),
                 "{}: tensor '{}' has {} bytes for {} {}", what, name, r->bytes.size(), r->dtype,
                 shape_str(r->shape));
      dtype = r->dtype;
      shape = r->shape;
      nbytes = static_cast<int64_t>(r->bytes.size());
    } else {
      const Int64Array& a = std::get<Int64Array>(value);
      for (int64_t d : a.shape)
        ATTN_CHECK(d >= 0, "{}: tensor '{}' has a negative dimension in shape {}", what, name,
                   shape_str(a.shape));
      ATTN_CHECK(static_cast<int64_t>(a.values.size()) == shape_numel(a.shape),
                 "{}: tensor '{}' has {} values for shape {}", what, name, a.values.size(),
                 shape_str(a.shape));
      dtype = "I64";
      shape = a.shape;
      nbytes = static_cast<int64_t>(a.values.size()) * 8;
    }
    header[name] = {
        {"dtype", dtype}, {"shape", shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::strict);
  } catch (const nlohmann::ordered_json::exception&) {
    throw Error(fmt::format("{}: a tensor name or metadata string is not valid UTF-8", what));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

template <typename T>
void write_le(std::ostream& out, const T* p, int64_t n) {
  if constexpr (std::endian::native == std::endian::little) {
    out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n * sizeof(T)));
  } else {
    using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    uint8_t b[sizeof(T)];
    for (int64_t i = 0; i < n; ++i) {
      store_le(std::bit_cast<U>(p[i]), b);
      out.write(reinterpret_cast<const char*>(b), sizeof(T));
    }
  }
}

void write_all(std::ostream& out, const std::string& header,
               const std::vector<std::pair<std::string, SafetensorsValue>>& values) {
  uint8_t len[8];
  store_le<uint64_t>(header.size(), len);
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& [name, value] : values) {
    if (const Tensor* t = std::get_if<Tensor>(&value)) {
      const Tensor c = t->contiguous();  // logical order
      dispatch_dtype(c.dtype(), [&]<typename T>() { write_le(out, c.data<T>(), c.numel()); });
    } else if (const RawArray* r = std::get_if<RawArray>(&value)) {
      out.write(reinterpret_cast<const char*>(r->bytes.data()),
                static_cast<std::streamsize>(r->bytes.size()));
    } else {
      const Int64Array& a = std::get<Int64Array>(value);
      write_le(out, a.values.data(), static_cast<int64_t>(a.values.size()));
    }
  }
}

std::vector<std::pair<std::string, SafetensorsValue>> as_values(
    const std::vector<std::pair<std::string, Tensor>>& tensors) {
  std::vector<std::pair<std::string, SafetensorsValue>> values;
  values.reserve(tensors.size());
  for (const auto& [name, t] : tensors) values.emplace_back(name, t);
  return values;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& d) {
  if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  if (d == "I16" || d == "U16" || d == "F16" || d == "BF16") return 2;
  if (d == "I32" || d == "U32" || d == "F32") return 4;
  if (d == "I64" || d == "U64" || d == "F64") return 8;
  return 0;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  for (const SafetensorsEntry& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

const SafetensorsEntry& SafetensorsFile::at(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  ATTN_CHECK(e != nullptr, "{}: no tensor named '{}'", what, name);
  return *e;
}

SafetensorsFile read_safetensors(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ATTN_CHECK(fd >= 0, "cannot open '{}': {}", path, std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("cannot read '{}': not a regular file", path));
  }
  // The size comes from the file system, not the file's contents: safe to allocate.
  auto file = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < file->size()) {
    ssize_t n = ::read(fd, file->data() + done, file->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      throw Error(fmt::format("cannot read '{}': {}", path,
                              n == 0 ? "the file shrank while being read" : std::strerror(e)));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return parse_file(std::move(file), path);
}

SafetensorsFile read_safetensors_bytes(std::span<const uint8_t> bytes, const std::string& what) {
  return parse_file(std::make_shared<const std::vector<uint8_t>>(bytes.begin(), bytes.end()), what);
}

Tensor to_tensor(const SafetensorsEntry& e, DType want) {
  ATTN_CHECK(e.dtype == "F32" || e.dtype == "F64" || e.dtype == "BF16",
             "tensor '{}' has dtype {}; only F32, F64 and BF16 convert to a float tensor", e.name,
             e.dtype);
  const size_t elem = safetensors_dtype_size(e.dtype);
  const int64_t n = e.numel();
  ATTN_CHECK(e.bytes.size() == static_cast<size_t>(n) * elem,
             "tensor '{}': {} bytes for {} elements of {}", e.name, e.bytes.size(), n, e.dtype);
  Tensor t = Tensor::empty(e.shape, want);
  const uint8_t* p = e.bytes.data();
  dispatch_dtype(want, [&]<typename T>() {
    T* out = t.data<T>();
    if (e.dtype == "F32") {
      for (int64_t i = 0; i < n; ++i)
        out[i] = static_cast<T>(std::bit_cast<float>(load_le<uint32_t>(p + 4 * i)));
    } else if (e.dtype == "F64") {
      for (int64_t i = 0; i < n; ++i)
        out[i] = static_cast<T>(std::bit_cast<double>(load_le<uint64_t>(p + 8 * i)));
    } else {  // BF16: the top 16 bits of an f32
      for (int64_t i = 0; i < n; ++i)
        out[i] = static_cast<T>(
            std::bit_cast<float>(static_cast<uint32_t>(load_le<uint16_t>(p + 2 * i)) << 16));
    }
  });
  return t;
}

std::vector<int64_t> to_int64(const SafetensorsEntry& e) {
  ATTN_CHECK(e.dtype == "I64" || e.dtype == "I32",
             "tensor '{}' has dtype {}; only I64 and I32 convert to integers", e.name, e.dtype);
  const size_t elem = safetensors_dtype_size(e.dtype);
  const int64_t n = e.numel();
  ATTN_CHECK(e.bytes.size() == static_cast<size_t>(n) * elem,
             "tensor '{}': {} bytes for {} elements of {}", e.name, e.bytes.size(), n, e.dtype);
  std::vector<int64_t> out(static_cast<size_t>(n));
  const uint8_t* p = e.bytes.data();
  if (e.dtype == "I64") {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(load_le<uint64_t>(p + 8 * i));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(load_le<uint32_t>(p + 4 * i));
  }
  return out;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_safetensors_values(path, as_values(tensors), metadata);
}

void write_safetensors_values(const std::string& path,
                              const std::vector<std::pair<std::string, SafetensorsValue>>& values,
                              const std::map<std::string, std::string>& metadata) {
  // Everything that can be refused is refused before a file is created.
  const std::string header = build_header(values, metadata, fmt::format("cannot write '{}'", path));
  write_file_atomically(path, [&](std::ostream& out) { write_all(out, header, values); });
}

std::vector<uint8_t> safetensors_bytes(
    const std::vector<std::pair<std::string, SafetensorsValue>>& values,
    const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(values, metadata, "safetensors");
  std::ostringstream out;
  write_all(out, header, values);
  const std::string s = std::move(out).str();
  return std::vector<uint8_t>(s.begin(), s.end());
}

}  // namespace attnlab
