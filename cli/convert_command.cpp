// attnlab convert: turn a training checkpoint into the decoder form
// (models/decoder_checkpoint.hpp): the weights without optimizer state, mla
// layers with w_uk and w_uv absorbed. Before writing anything it checks that
// a decoder built from the converted weights gives the training forward's
// logits at every position of a random prompt.
#include <fmt/format.h>

#include <filesystem>

#include "attnlab/models/decoder.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/train/progress.hpp"
#include "cli/commands.hpp"
#include "cli/output_file.hpp"
#include "cli/validators.hpp"

namespace attnlab::cli {
namespace {

struct ConvertOptions {
  std::string checkpoint, out;
  std::string weights = "f32";
  uint64_t seed = 0;
  bool quiet = false, force = false;
};

void run_convert(const ConvertOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  ATTN_CHECK(!fs::equivalent(o.checkpoint, o.out, ec),
             "--out {} is the training checkpoint itself; write the decoder to another file",
             o.out);
  const WeightFormat format = parse_weight_format(o.weights);
  prepare_output_file("convert", o.out, o.force, [](const std::string& path) {
    return safetensors_header_text(path).find("\"attnlab.decoder\"") != std::string::npos;
  });
  PackedAgreement packed;
  // The phases, as train shows its steps: on stdout, a line redrawn on a
  // terminal and erased before the results, a line per phase otherwise
  // (stderr stays for the one line of an error).
  PhaseProgress progress(stdout, ProgressDisplay::draws_bar(stdout), "convert");
  const DecoderAgreement a = convert_checkpoint(o.checkpoint, o.out, o.seed, 0, format, &packed,
                                                [&](const std::string& phase) {
                                                  if (!o.quiet) progress.start(phase);
                                                });
  progress.finish();
  if (o.quiet) return;
  const DecoderWeights w = read_decoder_weights(o.out);
  const ModelConfig& c = w.config;
  fmt::print(
      "checked: decoder and training forward agree at every position of a random prompt "
      "(B={} × T={}, {} tokens prefilled, then one step per token): largest difference {:.2g} "
      "of the logits' size (tolerance {:.0e})\n",
      a.batch, a.seq_len, a.prefill_tokens, a.max_relative_error, a.tolerance);
  // A MoE's checks compare each sequence's positions before a token first
  // changes experts, and need the experts to agree at most positions.
  auto routing = [&](const RoutingAgreement& r) {
    return fmt::format(
        "same experts at {} of {} positions, logits compared at the {} before a "
        "token first changes experts",
        r.agreeing, r.positions, r.compared);
  };
  if (format != WeightFormat::F32)
    fmt::print(
        "checked: the {} decoder computes with its stored values (largest difference {:.2g} from "
        "an f64 decoder of them, tolerance {:.2g}{}); rounding the weights moved the logits by "
        "{:.2g} of their size (tolerance {:.2g}{})\n",
        o.weights, packed.max_relative_error, packed.tolerance,
        c.is_moe() ? "; " + routing(packed.routing) : "", packed.rounding_error,
        packed.rounding_tolerance,
        c.is_moe() ? "; against the f32 decoder of the training weights, " +
                         routing(packed.rounding_routing)
                   : "");
  const int64_t per_token = c.kv_cache_floats_per_token();
  int64_t packed_bytes = 0;
  for (const auto& [name, m] : w.packed) packed_bytes += m.bytes();
  fmt::print(
      "wrote {}: {} decoder, {} layers, KV cache {} numbers ({} bytes in f32, {} in bf16) per "
      "token{}{}\n",
      o.out, attention_name(c.attention), c.n_layers, per_token, per_token * 4, per_token * 2,
      c.attention == AttentionKind::MLA ? "; w_uk absorbed into w_uq_uk, w_uv into wo_uv" : "",
      w.packed.empty() ? ""
                       : fmt::format("; matrices in {} ({:.3g} MB as stored, embedding included)",
                                     o.weights, static_cast<double>(packed_bytes) / 1e6));
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto opts = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a training checkpoint to a KV-cached decoder (MLA: absorbed weights), after "
      "checking that both give the same logits");
  cmd->add_option("-m,--checkpoint", opts->checkpoint, "Training checkpoint (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", opts->out,
                  "Decoder checkpoint to write (.safetensors; its directory is created; an "
                  "existing file not written by attnlab convert needs --force)")
      ->required();
  cmd->add_option("--weights", opts->weights,
                  "How the decoder stores its matrices: f32 (default), bf16, or int8 with one "
                  "scale per group of 32 (norms, biases, routers stay f32); decoding reads them "
                  "as stored")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  cmd->add_option("--seed", opts->seed, "Seed of the random prompt of the check (default 0)")
      ->check(kSeed);
  cmd->add_flag("--quiet", opts->quiet,
                "Print nothing but errors (else the phases on stdout: one line redrawn on a "
                "terminal, a line each in a file or a pipe or under mpirun; then the results)");
  cmd->add_flag("--force", opts->force, "Replace --out even when attnlab convert did not write it");
  cmd->callback([opts] { run_convert(*opts); });
}

}  // namespace attnlab::cli
