// Base64 (RFC 4648, standard alphabet, '=' padding): how binary data (a
// SentencePiece model) travels in the JSON of a checkpoint's metadata.
#pragma once

#include <string>
#include <string_view>

namespace attnlab::base64 {

std::string encode(std::string_view bytes);
// Refuses (Error, naming `what`) anything that encode() cannot have written.
std::string decode(std::string_view text, std::string_view what);

}  // namespace attnlab::base64
