// attnlab inspect: run one batch through a checkpoint and write everything a
// user needs to check attnlab against another implementation of the spec:
// the logits, the loss and its parts, and the gradient of every parameter.
// With --decode, the logits come from the KV-cached decoder instead, fed the
// inputs one token at a time, so the cached path can be checked the same way.
#include <fmt/format.h>

#include <filesystem>

#include "attnlab/autograd/ops.hpp"
#include "attnlab/models/batch_file.hpp"
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/tensor/cross_entropy.hpp"
#include "cli/commands.hpp"
#include "cli/output_file.hpp"

namespace attnlab::cli {
namespace {

struct InspectOptions {
  std::string checkpoint, batch, out, dtype = "f32";
  bool decode = false, force = false;
};

// inputs and targets [B, T] from a batch file: models/batch_file.hpp.
using Batch = TokenBatch;
Batch read_batch(const std::string& path, int64_t vocab_size) {
  return read_batch_file(path, vocab_size);
}

void run_inspect(const InspectOptions& o) {
  const DType dtype = o.dtype == "f64" ? DType::F64 : DType::F32;
  const Checkpoint ck = read_checkpoint(o.checkpoint, dtype);
  const Batch batch = read_batch(o.batch, ck.config.vocab_size);
  auto model = load_model(ck, dtype);
  model->eval();
  LanguageModelLoss l = model->loss(batch.inputs, batch.targets, batch.b, batch.t);
  l.loss.backward();

  // Written in the dtype computed in (F32 or F64): an f64 run keeps its precision.
  std::vector<std::pair<std::string, Tensor>> out;
  out.emplace_back("logits", l.logits.value().to(dtype));
  out.emplace_back("loss", l.loss.value().reshape({}).to(dtype));
  out.emplace_back("ce", l.ce.value().reshape({}).to(dtype));
  out.emplace_back("aux", l.aux.value().reshape({}).to(dtype));
  for (const auto& [name, p] : model->named_parameters()) {
    // An expert that no token chose has no gradient: it is zero.
    const Tensor g = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), p.dtype());
    out.emplace_back("grad." + name, g.to(dtype));
  }
  write_safetensors(o.out, out, {{"checkpoint", o.checkpoint}, {"dtype", o.dtype}});
  fmt::print("loss {:.6f} (ce {:.6f}, aux {:.6f}) on B={} T={}; wrote {}\n", l.loss.item(),
             l.ce.item(), l.aux.item(), batch.b, batch.t, o.out);
}

// --decode: the decoder (models/decoder.hpp), built from either checkpoint
// form, is fed inputs [B, T] as a prefill of the first token, then one step per
// token, and its logits at every position are written as `logits` [B, T, V].
// Gradients do not exist on that path, so the file holds logits, loss, ce and
// aux only (aux from the decoder's router statistics over the same tokens).
void run_inspect_decode(const InspectOptions& o) {
  const DType dtype = o.dtype == "f64" ? DType::F64 : DType::F32;
  const DecoderWeights weights = read_decoder_weights(o.checkpoint, dtype);
  const ModelConfig& c = weights.config;
  const Batch batch = read_batch(o.batch, c.vocab_size);
  Decoder decoder(weights, dtype, {.batch = batch.b});
  const Tensor logits = decode_logits(decoder, batch.inputs, batch.t, 1);
  const double ce =
      cross_entropy_forward(logits.reshape({batch.b * batch.t, c.vocab_size}), batch.targets)
          .loss.item();
  const double aux = decoder.aux_loss();
  const double loss = c.is_moe() ? ce + c.aux_loss_coef * aux : ce;
  std::vector<std::pair<std::string, Tensor>> out;
  out.emplace_back("logits", logits);
  out.emplace_back("loss", Tensor::scalar(loss, dtype));
  out.emplace_back("ce", Tensor::scalar(ce, dtype));
  out.emplace_back("aux", Tensor::scalar(aux, dtype));
  write_safetensors(o.out, out,
                    {{"checkpoint", o.checkpoint}, {"dtype", o.dtype}, {"mode", "decode"}});
  fmt::print("decoded token by token: loss {:.6f} (ce {:.6f}, aux {:.6f}) on B={} T={}; wrote {}\n",
             loss, ce, aux, batch.b, batch.t, o.out);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto opts = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Write logits, loss and every gradient of one batch, to check against another "
      "implementation");
  cmd->add_option("-m,--checkpoint", opts->checkpoint, "Model checkpoint (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option(
         "--batch", opts->batch,
         "Batch file (.safetensors) with I64 or I32 tensors inputs [B,T] and targets [B,T]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", opts->out,
                  "Output file (.safetensors; its directory is created; an existing file not "
                  "written by attnlab inspect needs --force)")
      ->required();
  cmd->add_flag("--force", opts->force, "Replace --out even when attnlab inspect did not write it");
  cmd->add_option("--dtype", opts->dtype, "Compute, and write the outputs, in f32 (default) or f64")
      ->check(CLI::IsMember({"f32", "f64"}));
  cmd->add_flag("--decode", opts->decode,
                "Compute the logits with the KV-cached decoder, one token at a time (writes "
                "logits, loss, ce, aux; no gradients); either checkpoint form");
  cmd->callback([opts] {
    // --out names the one file written: never one of the inputs.
    std::error_code ec;
    for (const auto& [flag, input] :
         {std::pair{"--checkpoint", &opts->checkpoint}, std::pair{"--batch", &opts->batch}})
      ATTN_CHECK(!std::filesystem::equivalent(*input, opts->out, ec),
                 "--out {} is the {} file itself; write the outputs to another file", opts->out,
                 flag);
    prepare_output_file("inspect", opts->out, opts->force, [](const std::string& path) {
      const std::string header = safetensors_header_text(path);
      return header.find("\"logits\"") != std::string::npos &&
             header.find("\"checkpoint\"") != std::string::npos;
    });
    opts->decode ? run_inspect_decode(*opts) : run_inspect(*opts);
  });
}

}  // namespace attnlab::cli
