// attnlab convert: turn a training checkpoint into the decoder form
// (models/decoder_checkpoint.hpp): the weights without optimizer state, mla
// layers with w_uk and w_uv absorbed. Before writing anything it checks that
// a decoder built from the converted weights gives the training forward's
// logits at every position of a random prompt.
#include <fmt/format.h>

#include <filesystem>

#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "cli/commands.hpp"
#include "cli/validators.hpp"

namespace attnlab::cli {
namespace {

struct ConvertOptions {
  std::string checkpoint, out;
  uint64_t seed = 0;
  bool quiet = false;
};

void run_convert(const ConvertOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  ATTN_CHECK(!fs::equivalent(o.checkpoint, o.out, ec),
             "--out {} is the training checkpoint itself; write the decoder to another file",
             o.out);
  const DecoderAgreement a = convert_checkpoint(o.checkpoint, o.out, o.seed);
  if (o.quiet) return;
  const DecoderWeights w = read_decoder_weights(o.out);
  const ModelConfig& c = w.config;
  fmt::print(
      "checked: decoder and training forward agree at every position of a random prompt "
      "(B={} × T={}, {} tokens prefilled, then one step per token): largest difference {:.2g} "
      "of the logits' size (tolerance {:.0e})\n",
      a.batch, a.seq_len, a.prefill_tokens, a.max_relative_error, a.tolerance);
  const int64_t per_token = c.kv_cache_floats_per_token();
  fmt::print(
      "wrote {}: {} decoder, {} layers, KV cache {} numbers ({} bytes in f32) per token{}\n", o.out,
      attention_name(c.attention), c.n_layers, per_token, per_token * 4,
      c.attention == AttentionKind::MLA ? "; w_uk absorbed into w_uq_uk, w_uv into wo_uv" : "");
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto opts = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a training checkpoint to a KV-cached decoder (MLA: absorbed weights), after "
      "checking that both give the same logits");
  cmd->add_option("--checkpoint", opts->checkpoint, "Training checkpoint (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", opts->out, "Decoder checkpoint to write (.safetensors)")->required();
  cmd->add_option("--seed", opts->seed, "Seed of the random prompt of the check (default 0)")
      ->check(kSeed);
  cmd->add_flag("--quiet", opts->quiet, "Print nothing but errors");
  cmd->callback([opts] { run_convert(*opts); });
}

}  // namespace attnlab::cli
