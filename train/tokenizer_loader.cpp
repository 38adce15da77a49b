#include "attnlab/train/tokenizer_loader.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "attnlab/tensor/error.hpp"
#include "attnlab/train/char_tokenizer.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/sentencepiece_tokenizer.hpp"

namespace attnlab {

std::shared_ptr<const Tokenizer> tokenizer_from_json(std::string_view json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("invalid tokenizer JSON: {}", e.what()));
  }
  ATTN_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(),
             "invalid tokenizer JSON: expected an object with a \"type\"");
  const std::string type = j["type"].get<std::string>();
  if (type == "sentencepiece") return SentencePieceTokenizer::from_json(json);
  ATTN_CHECK(type == "char",
             "invalid tokenizer JSON: tokenizer type \"{}\" is not supported (char or "
             "sentencepiece)",
             type);
  return std::make_shared<const CharTokenizer>(CharTokenizer::from_json(json));
}

std::shared_ptr<const Tokenizer> tokenizer_from_file(const std::filesystem::path& path) {
  std::string bytes = read_text_file(path);
  ATTN_CHECK(!bytes.empty(), "tokenizer file '{}' is empty", path.string());
  if (bytes.front() == '{') {
    try {
      return tokenizer_from_json(bytes);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", path.string(), e.what()));
    }
  }
  return SentencePieceTokenizer::from_model(std::move(bytes), path.string());
}

}  // namespace attnlab
