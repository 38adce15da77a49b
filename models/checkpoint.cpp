#include "attnlab/models/checkpoint.hpp"

#include <fmt/format.h>

#include <set>

#include "attnlab/models/safetensors.hpp"

namespace attnlab {

std::string Checkpoint::meta(const std::string& key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? "" : it->second;
}

Tensor checkpoint_tensor(const SafetensorsEntry& entry, DType dtype, const std::string& path) {
  try {
    return to_tensor(entry, dtype);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
}

Checkpoint read_checkpoint(const std::string& path, DType dtype) {
  return read_checkpoint(read_safetensors(path), dtype);
}

Checkpoint read_checkpoint(const SafetensorsFile& file, DType dtype) {
  const std::string& path = file.what;
  Checkpoint ck;
  ck.path = path;
  ck.metadata = file.metadata;
  auto config_it = file.metadata.find("config");
  ATTN_CHECK(config_it != file.metadata.end(),
             "{}: no model config: a checkpoint holds its config as JSON under the key 'config' "
             "of __metadata__",
             path);
  const std::string format = ck.meta("format");
  ATTN_CHECK(format != kDecoderFormat,
             "{}: is a decoder checkpoint; this command needs a training checkpoint (attnlab "
             "convert writes decoder checkpoints from training ones, not back)",
             path);
  ATTN_CHECK(format.empty() || format == kTrainFormat,
             "{}: is a '{}' file, not a training checkpoint ('{}')", path, format, kTrainFormat);
  ck.config = config_from_json(config_it->second, path + ": config");
  // The config comes from the file too: before listing its tensors (a string
  // each), check that the file can hold them. Every parameter takes at least
  // 2 bytes (BF16), and the reader has checked that tensors do not overlap,
  // so a config of a billion layers in a small file is refused here, at once.
  uint64_t data_bytes = 0;
  for (const SafetensorsEntry& e : file.entries) data_bytes += e.bytes.size();
  ATTN_CHECK(static_cast<uint64_t>(ck.config.parameter_count()) <= data_bytes / 2,
             "{}: its config declares {} parameters, more than its {} bytes of tensors can hold",
             path, ck.config.parameter_count(), data_bytes);

  std::set<std::string> expected;
  for (const auto& [name, shape] : ck.config.parameter_shapes()) {
    const SafetensorsEntry* e = file.find(name);
    ATTN_CHECK(e != nullptr, "{}: missing tensor {} (shape {})", path, name, shape_str(shape));
    ATTN_CHECK(e->shape == shape, "{}: tensor {} has shape {}, the config needs {}", path, name,
               shape_str(e->shape), shape_str(shape));
    ck.parameters.emplace_back(name, checkpoint_tensor(*e, dtype, path));
    expected.insert(name);
  }
  for (const SafetensorsEntry& e : file.entries) {
    if (expected.count(e.name)) continue;
    const bool is_m = e.name.rfind("optim.m.", 0) == 0, is_v = e.name.rfind("optim.v.", 0) == 0;
    ATTN_CHECK(is_m || is_v, "{}: unknown tensor {} (not a parameter of this config)", path,
               e.name);
    const std::string param = e.name.substr(8);
    ATTN_CHECK(expected.count(param), "{}: optimizer tensor {} names no parameter", path, e.name);
    const auto& shape = file.at(param).shape;
    ATTN_CHECK(e.shape == shape, "{}: tensor {} has shape {}, its parameter has {}", path, e.name,
               shape_str(e.shape), shape_str(shape));
    ck.optimizer.emplace_back(e.name, checkpoint_tensor(e, dtype, path));
  }
  return ck;
}

std::unique_ptr<LanguageModel> load_model(const Checkpoint& checkpoint, DType dtype) {
  auto model = std::make_unique<LanguageModel>(checkpoint.config, dtype, 0);
  model->load_parameters(checkpoint.parameters, checkpoint.path);
  return model;
}

void write_checkpoint(const std::string& path, const LanguageModel& model,
                      const std::map<std::string, std::string>& metadata,
                      const std::vector<std::pair<std::string, Tensor>>& extra) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, p] : model.named_parameters())
    tensors.emplace_back(name, p.value().to(DType::F32));
  for (const auto& [name, t] : extra) tensors.emplace_back(name, t.to(DType::F32));
  std::map<std::string, std::string> meta = metadata;
  meta["config"] = config_to_json(model.config());
  meta.emplace("format", kTrainFormat);
  write_safetensors(path, tensors, meta);
}

}  // namespace attnlab
