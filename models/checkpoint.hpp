// Checkpoints: one safetensors file per docs/MODEL-SPEC.md.
//
//   tensors      every parameter by its spec name, F32 (F64 and BF16 also read)
//   __metadata__ "config"    the model config as JSON (required)
//                "format"    "attnlab.train" (optional; a file without it is a
//                            plain spec checkpoint and reads the same), or
//                            "attnlab.decoder" for the decoder form written by
//                            `attnlab convert` (models/decoder_checkpoint.hpp),
//                            which training-only commands refuse
//                "tokenizer" the tokenizer as JSON (optional; needed to sample text):
//                            {"type":"char",...} or {"type":"sentencepiece",
//                            "model_type":"bpe",...,"model":"<.model, base64>"}
//                            (train/tokenizer.hpp); readers of the spec may ignore it
//                "train.*"   the training state of a resumable run (optional)
//   optim.m.<name>, optim.v.<name>  AdamW moments of a training checkpoint (optional)
//
// Reading checks every tensor against the config: a missing parameter, an
// unknown tensor, a wrong shape or dtype is refused with a message naming the
// file and the tensor. So a checkpoint written by another implementation of
// the spec, with only `config` and the weights, loads for every command.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attnlab/models/config.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/models/safetensors.hpp"

namespace attnlab {

inline constexpr const char* kTrainFormat = "attnlab.train";
inline constexpr const char* kDecoderFormat = "attnlab.decoder";

struct Checkpoint {
  std::string path;
  ModelConfig config;
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, Tensor>> parameters;  // in the config's parameter order
  std::vector<std::pair<std::string, Tensor>> optimizer;   // optim.m.* / optim.v.*, if any

  // The metadata value, or "" when absent.
  std::string meta(const std::string& key) const;
};

// Reads and validates a training-form checkpoint; tensors come as `dtype`.
// A decoder checkpoint is refused with a message saying so (decoding commands
// read either form with read_decoder_weights, models/decoder_checkpoint.hpp).
Checkpoint read_checkpoint(const std::string& path, DType dtype = DType::F32);
// The same from a file already read (file.what names it in messages).
Checkpoint read_checkpoint(const SafetensorsFile& file, DType dtype = DType::F32);

// A tensor of the checkpoint `path` as `dtype`; a dtype that does not convert
// (I64, say) is refused with a message naming the file and the tensor.
Tensor checkpoint_tensor(const SafetensorsEntry& entry, DType dtype, const std::string& path);

// A model built from a checkpoint's config, holding its parameters.
std::unique_ptr<LanguageModel> load_model(const Checkpoint& checkpoint, DType dtype = DType::F32);

// Writes the model's parameters as F32 with its config in the metadata, plus
// `metadata` and `extra` tensors (optimizer state), atomically.
void write_checkpoint(const std::string& path, const LanguageModel& model,
                      const std::map<std::string, std::string>& metadata = {},
                      const std::vector<std::pair<std::string, Tensor>>& extra = {});

}  // namespace attnlab
