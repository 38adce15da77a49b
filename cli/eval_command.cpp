// attnlab eval: the validation loss of a checkpoint, as perplexity and bits
// per byte of UTF-8 text too (loss · tokens / (ln 2 · bytes): one scale for
// character and subword models). A decoder checkpoint (attnlab convert, any
// --weights) is evaluated through the decoder, teacher-forced
// (train/decoder_evaluation.hpp), on the same windows.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/decoder_checkpoint.hpp"
#include "attnlab/tensor/threads.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/decoder_evaluation.hpp"
#include "attnlab/train/loss_by_position.hpp"
#include "attnlab/train/output_lock.hpp"
#include "attnlab/train/prepared_dataset.hpp"
#include "attnlab/train/progress.hpp"
#include "attnlab/train/svg_chart.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "attnlab/train/trainer.hpp"
#include "cli/commands.hpp"

namespace attnlab::cli {
namespace {

struct EvalOptions {
  std::string checkpoint;
  std::string data;         // empty: the bundled corpus (default_corpus)
  std::string by_position;  // a directory: loss_by_position.csv and .svg go there
  int64_t batches = 100, batch_size = 12, seq_len = 0, threads = 0;
  std::string kv_cache;  // a decoder checkpoint's: "f32" or "bf16"; empty: not given (f32)
};

// A decoder checkpoint: its weights as stored, through the KV-cached decoder.
void run_decoder_eval(const EvalOptions& o, const SafetensorsFile& file) {
  ATTN_CHECK(o.by_position.empty(),
             "--by-position reads a training checkpoint (written by attnlab train), not a decoder "
             "checkpoint");
  const DecoderWeights w = decoder_weights_from_file(file, DType::F32);
  const std::string tokenizer_json = w.meta("tokenizer");
  ATTN_CHECK(!tokenizer_json.empty(),
             "{}: has no tokenizer in its metadata, so its text cannot be encoded (eval needs a "
             "decoder converted from a checkpoint written by attnlab train)",
             o.checkpoint);
  const auto tokenizer = tokenizer_from_json(tokenizer_json);
  const int64_t seq_len = w.config.resolve_seq_len(o.seq_len);
  const auto data =
      open_training_data(o.data.empty() ? default_corpus() : o.data, seq_len, tokenizer);
  const KvCacheFormat kv_cache = parse_kv_cache_format(o.kv_cache.empty() ? "f32" : o.kv_cache);
  const double loss = decoder_validation_loss(
      w, data->eval_batches(Split::kVal, o.batches, o.batch_size, seq_len), kv_cache);
  fmt::print(
      "val loss {:.4f}  perplexity {:.3f}  bits/byte {:.4f}  ({} batches of {}×{}, {}; decoder, "
      "{} weights, {} KV cache)\n",
      loss, std::exp(loss), bits_per_byte(loss, data->bytes_per_token(Split::kVal)), o.batches,
      o.batch_size, seq_len, data->tokenizer().describe(), weight_format_name(w.weights),
      kv_cache_format_name(kv_cache));
}

// The context to evaluate: --seq-len, which may exceed the trained context
// (the model never saw those positions: said on stderr, as a note).
int64_t eval_context(const EvalOptions& o, const ModelConfig& trained) {
  const int64_t seq_len = o.seq_len ? o.seq_len : trained.max_seq_len;
  if (seq_len > trained.max_seq_len)
    fmt::print(stderr,
               "attnlab: note: --seq-len {} is beyond the context the model was trained on "
               "(max_seq_len {}): positions {}…{} were never seen in training\n",
               seq_len, trained.max_seq_len, trained.max_seq_len, seq_len - 1);
  return seq_len;
}

// --by-position DIR: DIR/loss_by_position.csv (position,loss) and its chart
// (the caller holds DIR's OutputLock).
void write_loss_by_position(const std::string& dir, const std::vector<double>& losses,
                            int64_t trained_context, const std::string& checkpoint) {
  std::string csv = "position,loss\n";
  // The legend gives the mean (the val loss at this length) and, as every
  // curve's end is labelled with its value, the loss at the last position.
  double mean = 0;
  for (double l : losses) mean += l / static_cast<double>(losses.size());
  LineSeries curve{.name = fmt::format("mean {:.3f}; last position", mean),
                   .points = {},
                   .spread = {},
                   .style = {}};
  for (size_t t = 0; t < losses.size(); ++t) {
    csv += fmt::format("{},{:.6f}\n", t, losses[t]);
    curve.points.emplace_back(static_cast<double>(t), losses[t]);
  }
  const std::filesystem::path out(dir);
  write_file_atomically((out / "loss_by_position.csv").string(), csv);
  const std::filesystem::path ck(checkpoint);
  ChartLabels labels{"Loss by position, " + (ck.parent_path().filename() / ck.filename()).string(),
                     "position in the context", "validation loss (nats/token)"};
  labels.subtitle = fmt::format("trained context: {} tokens (dashed line)", trained_context);
  labels.x_marker = static_cast<double>(trained_context);
  write_file_atomically((out / "loss_by_position.svg").string(), line_chart_svg({curve}, labels));
}

void run_eval(const EvalOptions& o) {
  set_num_threads(static_cast<int>(o.threads));
  // The output directory is checked and locked before anything is computed
  // or printed: a refusal there prints nothing else.
  std::optional<OutputLock> lock;
  if (!o.by_position.empty()) lock.emplace(OutputLock::directory(o.by_position));
  const SafetensorsFile file = read_safetensors(o.checkpoint);
  const auto format = file.metadata.find("format");
  if (format != file.metadata.end() && format->second == kDecoderFormat)
    return run_decoder_eval(o, file);
  usage_check(o.kv_cache.empty(),
              "--kv-cache applies to a decoder checkpoint (attnlab convert); {} is a training "
              "checkpoint, evaluated by the training forward, which keeps no KV cache",
              o.checkpoint);
  Checkpoint ck = read_checkpoint(file);
  ATTN_CHECK(ck.metadata.count("tokenizer"),
             "{}: has no tokenizer in its metadata, so its text cannot be encoded (eval needs a "
             "checkpoint written by attnlab train)",
             o.checkpoint);
  const auto tokenizer = tokenizer_from_json(ck.meta("tokenizer"));
  const int64_t trained_context = ck.config.max_seq_len;
  const int64_t seq_len = eval_context(o, ck.config);
  const auto data =
      open_training_data(o.data.empty() ? default_corpus() : o.data, seq_len, tokenizer);
  ck.config = with_context_of_at_least(ck.config, seq_len);
  auto model = load_model(ck);
  TrainSettings settings;
  settings.batch_size = o.batch_size;
  settings.seq_len = seq_len;
  settings.eval_batches = o.batches;
  Trainer evaluator(*model, *data, settings);
  // Long on a large model: the batches count up on stderr (a bar on a
  // terminal, a line at each quarter otherwise); the result alone on stdout.
  CountProgress progress(stderr, ProgressDisplay::draws_bar(stderr), "evaluating", o.batches);
  const double loss =
      evaluator.evaluate(Split::kVal, [&](int64_t done, int64_t) { progress.update(done); });
  progress.finish();
  fmt::print("val loss {:.4f}  perplexity {:.3f}  bits/byte {:.4f}  ({} batches of {}×{}, {})\n",
             loss, std::exp(loss), bits_per_byte(loss, data->bytes_per_token(Split::kVal)),
             o.batches, o.batch_size, seq_len, data->tokenizer().describe());
  if (!o.by_position.empty()) {
    CountProgress by_position(stderr, ProgressDisplay::draws_bar(stderr), "loss by position",
                              o.batches);
    const std::vector<double> losses =
        loss_by_position(*model, data->eval_batches(Split::kVal, o.batches, o.batch_size, seq_len),
                         [&](int64_t done, int64_t) { by_position.update(done); });
    by_position.finish();
    write_loss_by_position(o.by_position, losses, trained_context, o.checkpoint);
    fmt::print("wrote {0}/loss_by_position.csv and {0}/loss_by_position.svg\n", o.by_position);
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Validation loss, perplexity and bits per byte (on stdout; the batches count up on stderr: a "
      "bar on a terminal, a line at each quarter in a file or a pipe or under mpirun)");
  cmd->add_option("-m,--checkpoint", o->checkpoint,
                  "Checkpoint (.safetensors) written by attnlab train, or a decoder checkpoint "
                  "of attnlab convert (evaluated through the decoder, as stored)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--data", o->data,
                  "A DATA_DIR of attnlab tokenize (its val split), or a corpus file whose last "
                  "10% is the validation split (default: bundled)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--batches", o->batches, "Validation batches (default 100)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--batch-size", o->batch_size, "Sequences per batch (default 12)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--seq-len", o->seq_len,
                  "Tokens per sequence (default: the model's max_seq_len; longer is allowed for a "
                  "training checkpoint, to see how the model does past the context it was "
                  "trained on)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--by-position", o->by_position,
                  "Also write DIR/loss_by_position.csv (the mean loss at each position of the "
                  "context) and DIR/loss_by_position.svg");
  cmd->add_option("--kv-cache", o->kv_cache,
                  "A decoder checkpoint's KV cache: f32, or bf16 (half the bytes; each cached key "
                  "and value rounded to bf16, as `sample --kv-cache bf16` decodes) (default f32)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("-t,--threads", o->threads, "Threads (default 0: all cores)")
      ->check(CLI::Range(int64_t{0}, int64_t{1024}));
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace attnlab::cli
