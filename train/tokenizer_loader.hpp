// Any tokenizer back from where it is kept: the JSON of a checkpoint's
// `tokenizer` metadata, or a file (a SentencePiece .model, or attnlab's JSON).
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "attnlab/train/tokenizer.hpp"

namespace attnlab {

// {"type":"char",...} or {"type":"sentencepiece",...}; every problem is an Error.
std::shared_ptr<const Tokenizer> tokenizer_from_json(std::string_view json);
// A SentencePiece model file, or a JSON file of tokenizer_from_json.
std::shared_ptr<const Tokenizer> tokenizer_from_file(const std::filesystem::path& path);

}  // namespace attnlab
