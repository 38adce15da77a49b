#include "attnlab/train/task_survey.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/models/config.hpp"
#include "attnlab/train/progress.hpp"
#include "attnlab/train/survey_report.hpp"
#include "attnlab/train/svg_chart.hpp"

namespace attnlab {
namespace fs = std::filesystem;
namespace {

ModelConfig task_model(const TaskSurveyOptions& o, const SurveyVariant& v) {
  PresetOptions po;
  po.attention = v.attention;
  if (v.moe) {
    po.n_experts = o.experts;
    po.top_k = o.top_k;
  }
  ModelConfig c = preset_config(o.preset, o.task.vocab_size, po);
  c.max_seq_len = o.task.seq_len;
  validate_config(c, "the task model");
  return c;
}

std::string accuracy_text(double m, double sd, int64_t seeds) {
  return seeds > 1 ? fmt::format("{:.3f} ± {:.3f}", m, sd) : fmt::format("{:.3f}", m);
}

// The setting where the variants' accuracies differ the most (the first on a
// tie): where the cache chart is drawn.
int64_t most_telling_size(const std::vector<TaskSurveyRow>& rows,
                          const std::vector<int64_t>& sizes) {
  int64_t best = sizes.front();
  double widest = -1;
  for (int64_t size : sizes) {
    double lo = 1, hi = 0;
    for (const TaskSurveyRow& r : rows)
      if (r.size == size) lo = std::min(lo, r.accuracy), hi = std::max(hi, r.accuracy);
    if (hi - lo > widest + 1e-12) widest = hi - lo, best = size;
  }
  return best;
}

void write_report(const TaskSurveyOptions& o, const std::vector<TaskSurveyRow>& rows,
                  const std::vector<SurveyVariant>& variants, const LoadSamples& load) {
  const fs::path out(o.out_dir);
  const SyntheticTask& t = o.task;
  const std::string axis = t.size_name();
  const std::string subtitle = chart_subtitle(o.threads, load);

  // survey.csv: a row per variant and setting.
  std::string csv = fmt::format(
      "variant,task,{},runs,{}_accuracy,{}_accuracy_std,sequence_accuracy,answer_loss,"
      "kv_cache_bytes_per_token,attention_params,total_params,train_tokens_per_s,"
      "train_tokens_per_s_spread\n",
      t.kind == TaskKind::kRecall ? "pairs" : "copied_length", t.name(), t.name());
  for (const TaskSurveyRow& r : rows)
    csv += fmt::format("{},{},{},{},{:.6f},{:.6f},{:.6f},{:.6f},{},{},{},{:.1f},{:.1f}\n",
                       r.variant, t.name(), r.size, r.runs, r.accuracy, r.accuracy_spread,
                       r.sequence_accuracy, r.answer_loss, r.kv_bytes_per_token, r.attention_params,
                       r.total_params, r.train_tokens_per_s, r.train_tokens_per_s_spread);
  write_file_atomically((out / "survey.csv").string(), csv);

  // survey.md: accuracy per variant (rows) and setting (columns).
  std::string md = fmt::format(
      "# attnlab attention survey: {} task\n\nCommand: `{}`\n\nDate: {}\n\nMachine: {}{}\n\n",
      t.name(), o.command_line, now_utc(), machine_line(),
      load.describe().empty()
          ? ""
          : "; " + load.describe() + " (the 1-minute load average as each run ended)");
  md += fmt::format(
      "Preset `{}` (context {}, vocabulary {}), {} steps of {} sequences, lr {}, {} seed(s); "
      "every variant sees the same sequences in the same order. Accuracy: the share of answers "
      "whose most likely token is right, on {} held-out sequences (a generator seed of their "
      "own){}.\n\n",
      o.preset, t.seq_len, t.vocab_size, o.train.steps, o.train.batch_size, o.train.lr, o.seeds,
      o.train.held_out_sequences, o.seeds > 1 ? "; mean ± standard deviation over seeds" : "");
  md += "| variant | KV cache bytes/token |";
  for (int64_t size : o.sizes) md += fmt::format(" accuracy, {} {} |", size, axis);
  md += " train tokens/s |\n|---|---|";
  for (size_t i = 0; i < o.sizes.size(); ++i) md += "---|";
  md += "---|\n";
  for (const SurveyVariant& v : variants) {
    const TaskSurveyRow* first = nullptr;
    std::string cells;
    for (const TaskSurveyRow& r : rows)
      if (r.variant == v.name) {
        if (!first) first = &r;
        cells += fmt::format(" {} |", accuracy_text(r.accuracy, r.accuracy_spread, o.seeds));
      }
    md += fmt::format("| {} | {} |{} {:.0f} |\n", v.name, first->kv_bytes_per_token, cells,
                      first->train_tokens_per_s);
  }
  md +=
      "\n![accuracy against difficulty](accuracy_sweep.svg)\n\n"
      "![accuracy per KV-cache byte](accuracy_per_cache_byte.svg)\n\n"
      "![accuracy by answer](accuracy_by_answer.svg)\n";
  write_file_atomically((out / "survey.md").string(), md);

  // Charts.
  std::vector<LineSeries> sweep, by_answer;
  const int64_t telling = most_telling_size(rows, o.sizes);
  for (const SurveyVariant& v : variants) {
    LineSeries s{.name = v.name, .points = {}, .spread = {}, .style = variant_style(v.name)};
    for (const TaskSurveyRow& r : rows)
      if (r.variant == v.name) {
        s.points.emplace_back(static_cast<double>(r.size), r.accuracy);
        s.spread.push_back(r.accuracy_spread);
        if (r.size == telling) {
          LineSeries a{.name = v.name, .points = {}, .spread = {}, .style = s.style};
          for (size_t j = 0; j < r.accuracy_by_answer.size(); ++j)
            a.points.emplace_back(static_cast<double>(j + 1), r.accuracy_by_answer[j]);
          by_answer.push_back(a);
        }
      }
    sweep.push_back(s);
  }
  ChartLabels sweep_labels{fmt::format("{}: held-out accuracy against {}", t.name(), axis), axis,
                           "accuracy"};
  sweep_labels.subtitle = subtitle;
  sweep_labels.log2_x = true;
  sweep_labels.y_min = 0;
  sweep_labels.y_max = 1;
  write_file_atomically((out / "accuracy_sweep.svg").string(), line_chart_svg(sweep, sweep_labels));

  ChartLabels answer_labels{
      fmt::format("{}: accuracy at each answer, {} {}", t.name(), telling, axis),
      t.kind == TaskKind::kRecall ? "query (in the order asked)" : "token of the copy", "accuracy"};
  answer_labels.subtitle = subtitle;
  answer_labels.y_min = 0;
  answer_labels.y_max = 1;
  write_file_atomically((out / "accuracy_by_answer.svg").string(),
                        line_chart_svg(by_answer, answer_labels));

  std::vector<ScatterPoint> cache;
  for (const TaskSurveyRow& r : rows)
    if (r.size == telling)
      cache.push_back({r.variant, static_cast<double>(r.kv_bytes_per_token), r.accuracy,
                       r.accuracy_spread, variant_style(r.variant)});
  ChartLabels cache_labels{
      fmt::format("{} accuracy ({} {}) per KV-cache byte", t.name(), telling, axis),
      "KV cache bytes per token (all layers, f32)", "accuracy"};
  cache_labels.subtitle = subtitle;
  cache_labels.y_min = 0;
  cache_labels.y_max = 1;
  write_file_atomically((out / "accuracy_per_cache_byte.svg").string(),
                        scatter_chart_svg(cache, cache_labels));
}

}  // namespace

std::vector<int64_t> default_task_sizes(TaskKind kind) {
  if (kind == TaskKind::kRecall) return {2, 4, 8, 16};
  return {4, 8, 16, 32};
}

std::vector<TaskSurveyRow> run_task_survey(const TaskSurveyOptions& o) {
  ATTN_CHECK(!o.sizes.empty(), "the {} survey needs at least one {} to try", o.task.name(),
             o.task.size_name());
  ATTN_CHECK(o.seeds >= 1, "--seeds must be ≥ 1, got {}", o.seeds);
  // Every setting checked before anything runs or is written.
  for (int64_t size : o.sizes) {
    SyntheticTask t = o.task;
    t.size = size;
    t.validate();
  }
  const std::vector<SurveyVariant> variants = survey_variants(o.experts.has_value(), o.only);
  for (const SurveyVariant& v : variants) task_model(o, v);
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  ATTN_CHECK(!ec, "cannot create the survey directory {}: {}", o.out_dir, ec.message());

  std::vector<TaskSurveyRow> rows;
  const int64_t total = static_cast<int64_t>(variants.size() * o.sizes.size()) * o.seeds;
  int64_t done = 0;
  const int64_t steps = o.train.steps;
  std::optional<ProgressDisplay> bar;
  if (o.progress) bar.emplace(o.progress, total * steps, o.interactive);
  const auto start = std::chrono::steady_clock::now();
  LoadSamples load;
  for (const SurveyVariant& v : variants) {
    const ModelConfig config = task_model(o, v);
    for (int64_t size : o.sizes) {
      SyntheticTask t = o.task;
      t.size = size;
      TaskSurveyRow row;
      row.variant = v.name;
      row.size = size;
      row.runs = o.seeds;
      row.kv_bytes_per_token = config.kv_cache_floats_per_token() * 4;
      row.total_params = config.parameter_count();
      for (const auto& [name, shape] : config.parameter_shapes())
        if (name.find(".attn.") != std::string::npos) row.attention_params += shape_numel(shape);
      std::vector<double> acc, seq_acc, loss, rates, rate_spreads;
      row.accuracy_by_answer.assign(static_cast<size_t>(t.answers_per_sequence()), 0.0);
      for (int64_t s = 0; s < o.seeds; ++s) {
        TaskTrainOptions train = o.train;
        train.seed = 1337 + static_cast<uint64_t>(s);
        const std::string label = fmt::format("[{}/{}] {} {}, {} {}, seed {}", done + 1, total,
                                              t.name(), v.name, size, t.size_name(), train.seed);
        const TaskRunResult r = train_on_task(config, t, train, [&](int64_t step, double loss) {
          if (!bar) return;
          const double elapsed =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          const double at = static_cast<double>(done * steps + step);
          const double left = elapsed / at * (static_cast<double>(total * steps) - at);
          if (o.interactive)
            bar->update(done * steps + step, loss, 0, left);
          else if (step % std::max<int64_t>(steps / 5, 1) == 0)
            bar->note(fmt::format("{}: step {}/{}, answer loss {:.4f}, survey {} left", label, step,
                                  steps, loss, ProgressDisplay::format_duration(left)));
        });
        acc.push_back(r.score.accuracy);
        seq_acc.push_back(r.score.sequence_accuracy);
        loss.push_back(r.score.answer_loss);
        rates.push_back(r.train_tokens_per_s);
        rate_spreads.push_back(r.train_tokens_per_s_spread);
        for (size_t j = 0; j < row.accuracy_by_answer.size(); ++j)
          row.accuracy_by_answer[j] += r.score.accuracy_by_answer[j] / static_cast<double>(o.seeds);
        ++done;
        load.sample();
        if (bar)
          bar->note(fmt::format("{}: accuracy {:.3f}, answer loss {:.3f}", label, r.score.accuracy,
                                r.score.answer_loss));
      }
      row.accuracy = mean(acc);
      row.accuracy_spread = spread(acc);
      row.sequence_accuracy = mean(seq_acc);
      row.answer_loss = mean(loss);
      row.train_tokens_per_s = median(rates);
      row.train_tokens_per_s_spread = median(rate_spreads);
      rows.push_back(row);
    }
  }
  if (bar) bar->finish();
  write_report(o, rows, variants, load);
  return rows;
}

}  // namespace attnlab
