// The batch file of `attnlab inspect` (models/batch_file.hpp): what it reads,
// and every malformed batch refused with a message naming the file.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "attnlab/models/batch_file.hpp"

using namespace attnlab;

namespace {

std::string error_of(const std::vector<uint8_t>& bytes, int64_t vocab = 65) {
  try {
    read_batch_bytes(bytes, "b.safetensors", vocab);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<uint8_t> batch(const Shape& in_shape, std::vector<int64_t> in, const Shape& tg_shape,
                           std::vector<int64_t> tg) {
  return safetensors_bytes({{"inputs", Int64Array{in_shape, std::move(in)}},
                            {"targets", Int64Array{tg_shape, std::move(tg)}}});
}

}  // namespace

TEST_CASE("a batch file reads as B, T and int32 ids") {
  const TokenBatch b =
      read_batch_bytes(batch({2, 2}, {0, 1, 2, 64}, {2, 2}, {1, 2, 3, 0}), "b", 65);
  CHECK(b.b == 2);
  CHECK(b.t == 2);
  CHECK(b.inputs == std::vector<int32_t>{0, 1, 2, 64});
  CHECK(b.targets == std::vector<int32_t>{1, 2, 3, 0});
}

TEST_CASE("malformed batch files are refused, naming the file and the problem") {
  CHECK(error_of(batch({1, 2}, {0, 65}, {1, 2}, {0, 1})) ==
        "b.safetensors: inputs holds token id 65, outside the vocabulary [0, 65)");
  CHECK(error_of(batch({1, 2}, {0, 1}, {1, 2}, {-1, 1})) ==
        "b.safetensors: targets holds token id -1, outside the vocabulary [0, 65)");
  CHECK(error_of(batch({2}, {0, 1}, {2}, {0, 1})) ==
        "b.safetensors: inputs must be a non-empty [B, T] tensor, got shape [2]");
  CHECK(error_of(batch({0, 3}, {}, {0, 3}, {})) ==
        "b.safetensors: inputs must be a non-empty [B, T] tensor, got shape [0, 3]");
  CHECK(error_of(batch({1, 2}, {0, 1}, {2, 1}, {0, 1})) ==
        "b.safetensors: inputs and targets differ in shape: [1, 2] and [2, 1]");
  CHECK(error_of(safetensors_bytes({{"inputs", Int64Array{{1, 1}, {0}}}})) ==
        "b.safetensors: no tensor named 'targets'");
  CHECK(error_of(safetensors_bytes(
            {{"inputs", Tensor::zeros({1, 1})}, {"targets", Int64Array{{1, 1}, {0}}}})) ==
        "b.safetensors: inputs must hold token ids as I64 or I32, got dtype F32");
  // Ids are int32 in memory: a vocabulary past 2^31 cannot take them.
  CHECK(error_of(batch({1, 1}, {int64_t{1} << 33}, {1, 1}, {0}), int64_t{1} << 40) ==
        "b.safetensors: inputs holds token id 8589934592, outside the vocabulary [0, 2147483648)");
  CHECK(error_of({1, 2, 3}).find("too short to be a safetensors file") != std::string::npos);
}
