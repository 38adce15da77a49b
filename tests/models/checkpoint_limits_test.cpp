// A checkpoint's config is outside data too: one that declares far more
// parameters than the file holds (a billion layers) is refused before its
// tensors are listed, at once, with a message; not after minutes of
// allocating a name for each of them.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/safetensors.hpp"

using namespace attnlab;

TEST_CASE("a checkpoint whose config declares a billion layers is refused at once") {
  const std::string path =
      (std::filesystem::path(ATTNLAB_BINARY_DIR) / "checkpoint_limits_test.safetensors").string();
  write_safetensors(
      path, {{"tok_emb.weight", Tensor::zeros({1, 1})}},
      {{"config", R"({"vocab_size": 1, "d_model": 1, "n_layers": 1000000000, "n_heads": 1})"}});
  const auto start = std::chrono::steady_clock::now();
  std::string message;
  try {
    read_checkpoint(path);
  } catch (const Error& e) {
    message = e.what();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // 30 parameters a layer (4 attention, 2 norms, 24 in an FFN of width 8), and 3 more.
  CHECK(message.find("its config declares 30000000003 parameters, more than its 4 bytes of "
                     "tensors can hold") != std::string::npos);
  CHECK(s < 1.0);
  std::filesystem::remove(path);
}
