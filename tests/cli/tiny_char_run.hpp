// What the CLI tests that train, interrupt and extend tiny runs share: a
// folder with 20,000 characters of tiny-shakespeare and a one-layer config
// of 16 positions (a run of a few steps takes well under a second).
#pragma once

#include <fstream>
#include <string>

#include "tests/cli/cli_test_util.hpp"

namespace attnlab::testing {

struct TinyCharRun {
  TempDir dir;
  std::string corpus = dir.file("corpus.txt"), config = dir.file("tiny.json");
  explicit TinyCharRun(const std::string& prefix) : dir(prefix) {
    std::ofstream(corpus, std::ios::binary)
        << read_text_file(ATTNLAB_SOURCE_DIR "/data/tinyshakespeare.txt").substr(0, 20000);
    std::ofstream(config) << R"({"vocab_size": 65, "d_model": 16, "n_layers": 1, "n_heads": 2,
                                 "max_seq_len": 16})";
  }
};

}  // namespace attnlab::testing
