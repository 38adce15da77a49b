#include "attnlab/train/survey.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/models/sampling.hpp"
#include "attnlab/tensor/threads.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/loss_by_position.hpp"
#include "attnlab/train/metrics.hpp"
#include "attnlab/train/prepared_dataset.hpp"
#include "attnlab/train/progress.hpp"
#include "attnlab/train/survey_report.hpp"
#include "attnlab/train/svg_chart.hpp"
#include "attnlab/train/training_run.hpp"

extern char** environ;

namespace attnlab {
namespace fs = std::filesystem;
namespace {

struct Child {
  int status = 0;
  double peak_mib = 0;  // ru_maxrss of the child
};

// Runs exe with args and waits; each line of its stdout goes to on_line.
Child run_child(const std::string& exe, const std::vector<std::string>& args,
                const std::function<void(const std::string&)>& on_line) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int pipe_fds[2];
  ATTN_CHECK(pipe(pipe_fds) == 0, "survey: cannot create a pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (err != 0) {
    close(pipe_fds[0]);
    throw Error(fmt::format("survey: cannot start {}: {}", exe, std::strerror(err)));
  }
  std::string pending;
  char buf[4096];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof buf)) > 0;) {
    pending.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      if (on_line) on_line(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  close(pipe_fds[0]);
  Child child;
  struct rusage usage {};
  ATTN_CHECK(wait4(pid, &child.status, 0, &usage) == pid, "survey: lost a child process");
  child.peak_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
  return child;
}

void check_child(const Child& c, const std::string& what) {
  ATTN_CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
             "survey: {} failed (exit status {}); its own message is above", what,
             WIFEXITED(c.status) ? WEXITSTATUS(c.status) : -1);
}

// The numbers a variant's training runs leave behind.
struct RunResult {
  std::vector<std::pair<int64_t, double>> val_curve;  // (step, val loss)
  double final_val = 0, best_val = INFINITY;
  double train_tokens_per_s = 0;         // median over the run's steps
  double train_tokens_per_s_spread = 0;  // half their interquartile range
};

RunResult read_run(const std::string& dir) {
  const MetricsLog log = MetricsLog::read((fs::path(dir) / "metrics.csv").string(), INT64_MAX);
  RunResult r;
  std::vector<double> rates;
  for (const MetricsRow& row : log.rows()) {
    if (row.step > 1) rates.push_back(row.tokens_per_s);  // the first step warms up
    if (row.val_loss) {
      r.val_curve.emplace_back(row.step, *row.val_loss);
      r.final_val = *row.val_loss;
      r.best_val = std::min(r.best_val, *row.val_loss);
    }
  }
  r.train_tokens_per_s = median(rates);
  r.train_tokens_per_s_spread = half_iqr(rates);
  return r;
}

// Val loss at 1×, 2× and 4× the trained context T (NaN where the val split
// is too short for such windows), and the loss at each position at 4×.
struct LengthLosses {
  std::array<double, 3> at{NAN, NAN, NAN};
  std::vector<double> by_position_4x;
};

LengthLosses length_losses(const std::string& checkpoint, const TrainingData& data, int64_t batches,
                           CountProgress* progress) {
  Checkpoint ck = read_checkpoint(checkpoint);
  const int64_t T = ck.config.max_seq_len;
  ck.config = with_context_of_at_least(ck.config, 4 * T);
  auto model = load_model(ck);
  LengthLosses out;
  const int64_t multiples[] = {1, 2, 4};
  for (size_t i = 0; i < 3; ++i) {
    const int64_t len = multiples[i] * T;
    if (data.size(Split::kVal) < len + 2) break;
    const std::vector<double> losses = loss_by_position(
        *model, data.eval_batches(Split::kVal, batches, 4, len), [&](int64_t done, int64_t) {
          if (progress) progress->update(static_cast<int64_t>(i) * batches + done);
        });
    out.at[i] = mean(losses);
    if (multiples[i] == 4) out.by_position_4x = losses;
  }
  return out;
}

std::string table_markdown(const std::vector<SurveyRow>& rows, int64_t seeds) {
  std::string s =
      "| variant | val loss (final) | val loss (best) | bits/byte | val loss at 2× / 4× context "
      "| attention params | total params | KV cache bytes/token | KV cache bytes at full context "
      "| train tokens/s | decode tokens/s | train peak RSS (MiB) | decode peak RSS (MiB) |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  auto loss = [&](double m, double sd) {
    return seeds > 1 ? fmt::format("{:.4f} ± {:.4f}", m, sd) : fmt::format("{:.4f}", m);
  };
  for (const SurveyRow& r : rows)
    s += fmt::format(
        "| {} | {} | {} | {:.3f} | {:.3f} / {:.3f} | {} | {} | {} | {} | {:.0f} ± {:.0f} | {:.0f} "
        "± "
        "{:.0f} | {:.0f} | {:.0f} |\n",
        r.variant, loss(r.final_val, r.final_val_spread), loss(r.best_val, r.best_val_spread),
        bits_per_byte(r.final_val, r.val_bytes_per_token), r.val_loss_at_length[1],
        r.val_loss_at_length[2], r.attention_params, r.total_params, r.kv_bytes_per_token,
        r.kv_bytes_full_context, r.train_tokens_per_s, r.train_tokens_per_s_spread,
        r.decode_tokens_per_s, r.decode_tokens_per_s_spread, r.train_peak_mib, r.decode_peak_mib);
  return s;
}

std::string table_csv(const std::vector<SurveyRow>& rows) {
  std::string s =
      "variant,runs,final_val_loss,final_val_loss_std,best_val_loss,best_val_loss_std,"
      "bits_per_byte,attention_params,total_params,kv_cache_bytes_per_token,"
      "kv_cache_bytes_full_context,train_tokens_per_s,decode_tokens_per_s,train_peak_rss_mib,"
      "decode_peak_rss_mib,train_tokens_per_s_spread,decode_tokens_per_s_spread,val_loss_1x,"
      "val_loss_2x,val_loss_4x\n";
  for (const SurveyRow& r : rows)
    s += fmt::format(
        "{},{},{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{},{},{},{},{:.1f},{:.1f},{:.1f},{:.1f},{:.1f},"
        "{:.1f},{:.6f},{:.6f},{:.6f}\n",
        r.variant, r.runs, r.final_val, r.final_val_spread, r.best_val, r.best_val_spread,
        bits_per_byte(r.final_val, r.val_bytes_per_token), r.attention_params, r.total_params,
        r.kv_bytes_per_token, r.kv_bytes_full_context, r.train_tokens_per_s, r.decode_tokens_per_s,
        r.train_peak_mib, r.decode_peak_mib, r.train_tokens_per_s_spread,
        r.decode_tokens_per_s_spread, r.val_loss_at_length[0], r.val_loss_at_length[1],
        r.val_loss_at_length[2]);
  return s;
}

}  // namespace

DecodeMeasurement measure_decode(const std::string& checkpoint, int64_t prompt_tokens,
                                 int64_t tokens, int64_t threads, int64_t repeats,
                                 const std::function<void(int64_t, int64_t)>& on_generated) {
  ThreadCountTuner pool(static_cast<int>(threads));  // 0: every core or one, the faster
  const DecoderWeights weights = read_decoder_weights(checkpoint);
  Decoder decoder(weights, DType::F32, {.batch = 1});
  const int64_t max_len = decoder.max_len();
  prompt_tokens = std::min(prompt_tokens, max_len / 2);
  tokens = std::min(tokens, max_len - prompt_tokens);
  // A fixed prompt: token ids 0, 1, 2, … (the measurement is of speed, not text).
  std::vector<int32_t> prompt(prompt_tokens);
  for (int64_t i = 0; i < prompt_tokens; ++i)
    prompt[i] = static_cast<int32_t>(i % decoder.config().vocab_size);
  GenerateOptions options;
  options.max_new_tokens = tokens;
  options.sampling.greedy = true;
  options.threads = &pool;
  // Warm up once (first-touch of buffers, dispatch), then time `repeats`
  // times: one timing on a shared machine can be off by a factor of four.
  repeats = std::max<int64_t>(repeats, 1);
  generate(decoder, prompt, options);
  if (on_generated) on_generated(1, repeats + 1);
  std::vector<double> rates;
  int64_t cache_bytes = 0;
  for (int64_t i = 0; i < repeats; ++i) {
    const GenerateResult r = generate(decoder, prompt, options);
    rates.push_back(r.tokens_per_second());
    cache_bytes = r.cache_bytes;
    if (on_generated) on_generated(i + 2, repeats + 1);
  }
  return {median(rates), half_iqr(rates), cache_bytes};
}

std::vector<SurveyRow> run_survey(const SurveyOptions& o) {
  ATTN_CHECK(o.seeds >= 1, "--seeds must be ≥ 1, got {}", o.seeds);
  ATTN_CHECK(o.steps >= 1, "--steps must be ≥ 1, got {}", o.steps);
  const int64_t steps = o.quick ? std::min<int64_t>(o.steps, 60) : o.steps;
  const int64_t eval_every = o.quick ? 20 : std::max<int64_t>(steps / 20, 1);
  const int64_t eval_batches = o.quick ? 10 : 100;
  const std::vector<SurveyVariant> variants = survey_variants(o.experts.has_value(), o.only);

  // The corpus first, as every run will read it (the preset's whole context):
  // one that they would all refuse is refused here, naming the file, before
  // anything is created.
  const auto data = open_training_data(o.data_path, preset_config(o.preset, 1).max_seq_len);
  const int64_t vocab = data->tokenizer().vocab_size();
  const double val_bytes_per_token = data->bytes_per_token(Split::kVal);
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  ATTN_CHECK(!ec, "cannot create the survey directory {}: {}", o.out_dir, ec.message());
  const int64_t total_runs = static_cast<int64_t>(variants.size()) * o.seeds;
  ProgressDisplay progress(stdout, total_runs * steps, o.interactive, 1);  // quiet = false asks
  const auto start = std::chrono::steady_clock::now();
  int64_t runs_done = 0;
  LoadSamples load;
  // A phase after training (the length evaluation, the decode timing): a bar
  // on a terminal, a line at each quarter otherwise; nothing when quiet.
  auto phase = [&](const std::string& what, int64_t total) {
    std::optional<CountProgress> p;
    if (!o.quiet) p.emplace(stdout, o.interactive, what, total);
    return p;
  };

  std::vector<SurveyRow> rows;
  std::vector<LineSeries> curves;
  for (const SurveyVariant& v : variants) {
    PresetOptions po;
    po.attention = v.attention;
    if (v.moe) {
      po.n_experts = o.experts;
      po.top_k = o.top_k;
    }
    const ModelConfig config = preset_config(o.preset, vocab, po);
    SurveyRow row;
    row.variant = v.name;
    row.val_bytes_per_token = val_bytes_per_token;
    row.total_params = config.parameter_count();
    for (const auto& [name, shape] : config.parameter_shapes())
      if (name.find(".attn.") != std::string::npos) row.attention_params += shape_numel(shape);
    row.kv_bytes_per_token = config.kv_cache_floats_per_token() * 4;
    row.kv_bytes_full_context = row.kv_bytes_per_token * config.max_seq_len;

    std::vector<double> finals, bests, train_rates, decode_rates, train_peaks, decode_peaks;
    std::vector<double> train_spreads, decode_spreads;
    std::array<std::vector<double>, 3> at_length;
    std::map<int64_t, std::vector<double>> curve;
    for (int64_t s = 0; s < o.seeds; ++s) {
      const int64_t seed = 1337 + s;
      const std::string dir =
          (fs::path(o.out_dir) / "runs" / v.name / fmt::format("seed-{}", seed)).string();
      fs::remove_all(dir);  // a survey reruns from scratch
      std::vector<std::string> args = {"train",
                                       "--preset",
                                       o.preset,
                                       "--attention",
                                       v.attention,
                                       "--steps",
                                       std::to_string(steps),
                                       "--seed",
                                       std::to_string(seed),
                                       "--eval-every",
                                       std::to_string(eval_every),
                                       "--eval-batches",
                                       std::to_string(eval_batches),
                                       "--data",
                                       o.data_path,
                                       "--threads",
                                       std::to_string(o.threads),
                                       "--out",
                                       dir};
      if (v.moe) {
        args.insert(args.end(), {"--experts", std::to_string(*o.experts)});
        if (o.top_k) args.insert(args.end(), {"--experts-per-token", std::to_string(*o.top_k)});
      }
      const std::string label =
          fmt::format("[{}/{}] {} seed {}", runs_done + 1, total_runs, v.name, seed);
      const Child trained = run_child(o.exe, args, [&](const std::string& line) {
        int64_t step = 0, total = 0;
        double loss = 0;
        if (!o.quiet &&
            std::sscanf(line.c_str(), "step %ld/%ld: loss %lf", &step, &total, &loss) == 3) {
          const double elapsed =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          const double done = static_cast<double>(runs_done * steps + step);
          const double left = elapsed / std::max(done, 1.0) * (total_runs * steps - done);
          if (o.interactive)
            progress.update(runs_done * steps + step, loss, 0, left);
          else
            fmt::print("{} step {}/{}: loss {:.4f}, survey {} left\n", label, step, total, loss,
                       ProgressDisplay::format_duration(left));
          std::fflush(stdout);
        }
      });
      check_child(trained, "training " + label);
      load.sample();
      const RunResult r = read_run(dir);
      finals.push_back(r.final_val);
      bests.push_back(r.best_val);
      train_rates.push_back(r.train_tokens_per_s);
      train_spreads.push_back(r.train_tokens_per_s_spread);
      const int64_t length_batches = o.quick ? 2 : 25;
      std::optional<CountProgress> lengthening =
          phase(label + ": val loss at 1×, 2×, 4× the context", 3 * length_batches);
      const LengthLosses lengths =
          length_losses((fs::path(dir) / "best.safetensors").string(), *data, length_batches,
                        lengthening ? &*lengthening : nullptr);
      if (lengthening) lengthening->finish();
      for (size_t i = 0; i < 3; ++i) at_length[i].push_back(lengths.at[i]);
      if (row.loss_by_position_4x.empty())
        row.loss_by_position_4x.assign(lengths.by_position_4x.size(), 0.0);
      for (size_t t = 0; t < lengths.by_position_4x.size(); ++t)
        row.loss_by_position_4x[t] += lengths.by_position_4x[t] / static_cast<double>(o.seeds);
      train_peaks.push_back(trained.peak_mib);
      for (auto [step, val] : r.val_curve) curve[step].push_back(val);

      // The decoding child says "generated k/n" after each generation.
      const std::string result = (fs::path(dir) / "decode.json").string();
      std::optional<CountProgress> timing =
          phase(label + ": timing decoding", kSurveyDecodeRepeats + 1);
      const Child decoded = run_child(
          o.exe,
          {"survey-decode", "--checkpoint", (fs::path(dir) / "best.safetensors").string(),
           "--result", result, "--threads", std::to_string(o.threads)},
          [&](const std::string& line) {
            int64_t done = 0, total = 0;
            if (timing && std::sscanf(line.c_str(), "generated %ld/%ld", &done, &total) == 2)
              timing->update(done);
          });
      if (timing) timing->finish();
      check_child(decoded, "decoding " + label);
      load.sample();
      std::ifstream in(result);
      const nlohmann::json j = nlohmann::json::parse(in);
      decode_rates.push_back(j.at("tokens_per_s").get<double>());
      decode_spreads.push_back(j.value("tokens_per_s_spread", 0.0));
      decode_peaks.push_back(decoded.peak_mib);
      ++runs_done;
      if (!o.quiet)
        progress.note(fmt::format("{}: val loss {:.4f}, {:.0f} train tok/s, {:.0f} decode tok/s",
                                  label, r.final_val, r.train_tokens_per_s, decode_rates.back()));
    }
    row.runs = o.seeds;
    row.final_val = mean(finals);
    row.final_val_spread = spread(finals);
    row.best_val = mean(bests);
    row.best_val_spread = spread(bests);
    // Timings: the median over seeds of each run's median, and the median of
    // the runs' spreads (the spread within a run; over seeds the loss is what varies).
    row.train_tokens_per_s = median(train_rates);
    row.train_tokens_per_s_spread = median(train_spreads);
    row.decode_tokens_per_s = median(decode_rates);
    row.decode_tokens_per_s_spread = median(decode_spreads);
    for (size_t i = 0; i < 3; ++i) row.val_loss_at_length[i] = mean(at_length[i]);
    row.train_peak_mib = *std::max_element(train_peaks.begin(), train_peaks.end());
    row.decode_peak_mib = *std::max_element(decode_peaks.begin(), decode_peaks.end());
    rows.push_back(row);
    LineSeries series{.name = v.name, .points = {}, .spread = {}, .style = variant_style(v.name)};
    for (const auto& [step, vals] : curve) {
      series.points.emplace_back(step, mean(vals));
      series.spread.push_back(spread(vals));
    }
    curves.push_back(series);
  }
  if (!o.quiet) progress.finish();

  // The report.
  const fs::path out(o.out_dir);
  const std::string header = fmt::format(
      "# attnlab attention survey\n\n"
      "Command: `{}`\n\nDate: {}\n\nMachine: {}{}\n\n"
      "Preset `{}`, {} steps, {} seed(s), the same data order and schedule for every variant. "
      "Validation loss is the mean cross-entropy (nats per token) over {} fixed validation "
      "batches{}; bits/byte is the same loss per byte of UTF-8 text, loss · tokens / (ln 2 · "
      "bytes), which compares tokenizers.\n\n",
      o.command_line, now_utc(), machine_line(),
      load.describe().empty()
          ? ""
          : "; " + load.describe() + " (the 1-minute load average as each run ended)",
      o.preset, steps, o.seeds, eval_batches,
      o.seeds > 1 ? " (mean ± standard deviation over seeds)" : "");
  write_file_atomically(
      (out / "survey.md").string(),
      header + table_markdown(rows, o.seeds) +
          "\nTimings are medians of repeated measurements ± half their interquartile range "
          "(training: every step of a run; decoding: 5 timed generations). The 2× / 4× "
          "columns evaluate the same weights on contexts the model never saw in training.\n\n"
          "![validation loss per KV-cache byte](loss_per_cache_byte.svg)\n\n"
          "![validation loss](val_loss.svg)\n\n"
          "![loss by position at 4x the trained context](length.svg)\n\n"
          "![KV cache](kv_cache.svg) ![training throughput](train_throughput.svg) "
          "![decode throughput](decode_throughput.svg)\n");
  write_file_atomically((out / "survey.csv").string(), table_csv(rows));
  const std::string subtitle = chart_subtitle(o.threads, load);
  auto labels = [&](std::string title, std::string x, std::string y) {
    ChartLabels l{std::move(title), std::move(x), std::move(y)};
    l.subtitle = subtitle;
    return l;
  };
  write_file_atomically(
      (out / "val_loss.svg").string(),
      line_chart_svg(curves, labels(fmt::format("Validation loss, {} preset{}", o.preset,
                                                o.seeds > 1 ? " (± std over seeds)" : ""),
                                    "step", "validation loss (nats/token)")));
  std::vector<ScatterPoint> quality;
  std::vector<LineSeries> length;
  for (const SurveyRow& r : rows) {
    quality.push_back({r.variant, static_cast<double>(r.kv_bytes_per_token), r.final_val,
                       r.final_val_spread, variant_style(r.variant)});
    LineSeries l{.name = r.variant, .points = {}, .spread = {}, .style = variant_style(r.variant)};
    for (size_t t = 0; t < r.loss_by_position_4x.size(); ++t)
      l.points.emplace_back(static_cast<double>(t), r.loss_by_position_4x[t]);
    if (!l.points.empty()) length.push_back(l);
  }
  write_file_atomically(
      (out / "loss_per_cache_byte.svg").string(),
      scatter_chart_svg(quality, labels("Validation loss per KV-cache byte (lower left is better)",
                                        "KV cache bytes per token (all layers, f32)",
                                        "final validation loss (nats/token)")));
  ChartLabels length_labels =
      labels("Loss by position at 4× the trained context (dashed line: the trained length)",
             "position in the context", "validation loss (nats/token)");
  length_labels.x_marker = static_cast<double>(preset_config(o.preset, vocab).max_seq_len);
  write_file_atomically((out / "length.svg").string(), line_chart_svg(length, length_labels));
  std::vector<Bar> kv, train, decode;
  for (const SurveyRow& r : rows) {
    kv.push_back(
        {r.variant, static_cast<double>(r.kv_bytes_per_token), 0,
         fmt::format("{:.0f}% of mha", 100.0 * static_cast<double>(r.kv_bytes_per_token) /
                                           static_cast<double>(rows[0].kv_bytes_per_token)),
         variant_style(r.variant)});
    train.push_back({r.variant, r.train_tokens_per_s, r.train_tokens_per_s_spread, "",
                     variant_style(r.variant)});
    decode.push_back({r.variant, r.decode_tokens_per_s, r.decode_tokens_per_s_spread, "",
                      variant_style(r.variant)});
  }
  write_file_atomically((out / "kv_cache.svg").string(),
                        bar_chart_svg(kv, labels("KV cache per token (all layers, f32)", "variant",
                                                 "bytes per token")));
  write_file_atomically(
      (out / "train_throughput.svg").string(),
      bar_chart_svg(train, labels("Training throughput (median ± half IQR over steps)", "variant",
                                  "tokens/s")));
  write_file_atomically(
      (out / "decode_throughput.svg").string(),
      bar_chart_svg(decode,
                    labels("Decode throughput, batch 1 after prefill (median of 5 ± half IQR)",
                           "variant", "tokens/s")));
  return rows;
}

}  // namespace attnlab
