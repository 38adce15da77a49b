// A checkpoint tensor of a dtype that is not a float (I64, say) is refused by
// both checkpoint readers with a message naming the file and the tensor, as
// every other mismatch is (models/checkpoint.hpp). It used to name only the
// tensor: "tensor 'norm.weight' has dtype I64; ..." (found by the CLI error
// table, tests/cli/cli_errors_test.cpp).
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"

using namespace attnlab;

TEST_CASE("a checkpoint tensor of an integer dtype is refused naming the file and the tensor") {
  const std::string path =
      (std::filesystem::path(ATTNLAB_BINARY_DIR) / "checkpoint_dtype_test.safetensors").string();
  const std::string config =
      R"({"vocab_size": 5, "d_model": 4, "n_layers": 1, "n_heads": 2, "max_seq_len": 8})";
  std::vector<std::pair<std::string, SafetensorsValue>> values;
  for (const auto& [name, shape] : config_from_json(config).parameter_shapes()) {
    if (name == "norm.weight")
      values.emplace_back(name, Int64Array{shape, std::vector<int64_t>(shape_numel(shape), 1)});
    else
      values.emplace_back(name, Tensor::zeros(shape));
  }
  write_safetensors_values(path, values, {{"config", config}});

  const std::string expected = path + ": tensor 'norm.weight' has dtype I64";
  std::string message;
  try {
    read_checkpoint(path);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK_MESSAGE(message.find(expected) == 0, message);
  message.clear();
  try {
    read_decoder_weights(path);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK_MESSAGE(message.find(expected) == 0, message);
  std::filesystem::remove(path);
}
