// attnlab inspect: run one batch through a checkpoint and write everything a
// user needs to check attnlab against another implementation of the spec:
// the logits, the loss and its parts, and the gradient of every parameter.
#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "cli/commands.hpp"
#include "models/checkpoint.hpp"
#include "models/safetensors.hpp"

namespace attnlab::cli {
namespace {

struct InspectOptions {
  std::string checkpoint, batch, out, dtype = "f32";
};

// inputs and targets [B, T] from a batch file, as int32 token ids.
struct Batch {
  int64_t b = 0, t = 0;
  std::vector<int32_t> inputs, targets;
};

Batch read_batch(const std::string& path, int64_t vocab_size) {
  const SafetensorsFile file = read_safetensors(path);
  Batch batch;
  for (const char* name : {"inputs", "targets"}) {
    const SafetensorsEntry& e = file.at(name);
    ATTN_CHECK(e.shape.size() == 2 && e.shape[0] > 0 && e.shape[1] > 0,
               "{}: {} must be a non-empty [B, T] tensor, got shape {}", path, name,
               shape_str(e.shape));
    if (batch.b == 0) {
      batch.b = e.shape[0];
      batch.t = e.shape[1];
    }
    ATTN_CHECK(e.shape == Shape({batch.b, batch.t}),
               "{}: inputs and targets differ in shape: {} and {}", path,
               shape_str({batch.b, batch.t}), shape_str(e.shape));
    std::vector<int32_t>& dst = std::string(name) == "inputs" ? batch.inputs : batch.targets;
    for (int64_t v : to_int64(e)) {
      ATTN_CHECK(v >= 0 && v < vocab_size,
                 "{}: {} holds token id {}, outside the vocabulary [0, {})", path, name, v,
                 vocab_size);
      dst.push_back(static_cast<int32_t>(v));
    }
  }
  return batch;
}

void run_inspect(const InspectOptions& o) {
  const DType dtype = o.dtype == "f64" ? DType::F64 : DType::F32;
  const Checkpoint ck = read_checkpoint(o.checkpoint, dtype);
  const Batch batch = read_batch(o.batch, ck.config.vocab_size);
  auto model = load_model(ck, dtype);
  model->eval();
  LanguageModelLoss l = model->loss(batch.inputs, batch.targets, batch.b, batch.t);
  l.loss.backward();

  std::vector<std::pair<std::string, Tensor>> out;
  out.emplace_back("logits", l.logits.value().to(DType::F32));
  out.emplace_back("loss", l.loss.value().reshape({}).to(DType::F32));
  out.emplace_back("ce", l.ce.value().reshape({}).to(DType::F32));
  out.emplace_back("aux", l.aux.value().reshape({}).to(DType::F32));
  for (const auto& [name, p] : model->named_parameters()) {
    // An expert that no token chose has no gradient: it is zero.
    const Tensor g = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), p.dtype());
    out.emplace_back("grad." + name, g.to(DType::F32));
  }
  write_safetensors(o.out, out, {{"checkpoint", o.checkpoint}, {"dtype", o.dtype}});
  fmt::print("loss {:.6f} (ce {:.6f}, aux {:.6f}) on B={} T={}; wrote {}\n", l.loss.item(),
             l.ce.item(), l.aux.item(), batch.b, batch.t, o.out);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto opts = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Write logits, loss and every gradient of one batch, to check against another "
      "implementation");
  cmd->add_option("--checkpoint", opts->checkpoint, "Model checkpoint (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option(
         "--batch", opts->batch,
         "Batch file (.safetensors) with I64 or I32 tensors inputs [B,T] and targets [B,T]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", opts->out, "Output file (.safetensors)")->required();
  cmd->add_option("--dtype", opts->dtype, "Compute in f32 (default) or f64")
      ->check(CLI::IsMember({"f32", "f64"}));
  cmd->callback([opts] { run_inspect(*opts); });
}

}  // namespace attnlab::cli
