// attnlab plot: the curves of one or more runs in one SVG: train and
// validation loss against steps (or tokens, or wall time), the learning rate
// and the gradient norm in small panels below, each curve's last value
// written at its end, a legend naming the runs. Reads each run's metrics.csv
// and, for tokens, its settings (settings.json, else last.safetensors).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/models/safetensors.hpp"
#include "attnlab/tensor/error.hpp"
#include "attnlab/train/dataset.hpp"
#include "attnlab/train/metrics.hpp"
#include "attnlab/train/svg_chart.hpp"
#include "attnlab/train/train_settings.hpp"
#include "cli/commands.hpp"
#include "cli/output_file.hpp"

namespace attnlab::cli {
namespace {

namespace fs = std::filesystem;

// Marks an SVG written by this command: only such a file is replaced without --force.
constexpr const char* kPlotMark = "<!-- attnlab plot -->";

struct PlotOptions {
  std::vector<std::string> runs;
  std::string out;
  std::string x = "step";
  bool force = false;
};

// Tokens per optimizer step of a run: batch × T × accumulation, from its
// settings.json, or from its last checkpoint's metadata.
double tokens_per_step(const fs::path& run) {
  nlohmann::json settings, config;
  if (fs::exists(run / "settings.json")) {
    const auto j = nlohmann::json::parse(read_text_file((run / "settings.json").string()), nullptr,
                                         /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("settings") && j.contains("config"))
      settings = j["settings"], config = j["config"];
  }
  if (settings.is_null() && fs::exists(run / "last.safetensors")) {
    const SafetensorsFile file = read_safetensors((run / "last.safetensors").string());
    const auto s = file.metadata.find("train.settings"), c = file.metadata.find("config");
    if (s != file.metadata.end() && c != file.metadata.end())
      settings = nlohmann::json::parse(s->second, nullptr, false),
      config = nlohmann::json::parse(c->second, nullptr, false);
  }
  try {
    int64_t seq_len = settings.at("seq_len").get<int64_t>();
    if (seq_len == 0) seq_len = config.value("max_seq_len", int64_t{0});
    return static_cast<double>(settings.at("batch_size").get<int64_t>() * seq_len *
                               settings.at("accum").get<int64_t>());
  } catch (const std::exception&) {
    throw Error(
        fmt::format("{}: no settings.json or last.safetensors telling its batch size, "
                    "which --x tokens needs",
                    run.string()));
  }
}

void run_plot(const PlotOptions& o) {
  ATTN_CHECK(fs::path(o.out).extension() == ".svg", "--out {}: give a file name ending in .svg",
             o.out);
  prepare_output_file("plot", o.out, o.force, [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::string old((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return old.find(kPlotMark) != std::string::npos;
  });
  std::vector<LineSeries> loss, lr, grad;
  for (const std::string& dir : o.runs) {
    const fs::path run(dir);
    const fs::path metrics = run / "metrics.csv";
    ATTN_CHECK(fs::is_regular_file(metrics),
               "{}: no metrics.csv (not a run directory of attnlab "
               "train?)",
               dir);
    const MetricsLog log = MetricsLog::read(metrics.string(), INT64_MAX);
    ATTN_CHECK(!log.rows().empty(), "{}: no steps logged yet", metrics.string());
    const double per_step = o.x == "tokens" ? tokens_per_step(run) : 0;
    auto x_of = [&](const MetricsRow& r) {
      return o.x == "tokens" ? per_step * static_cast<double>(r.step)
             : o.x == "time" ? r.elapsed_s / 60
                             : static_cast<double>(r.step);
    };
    std::string name = run.filename().string();
    if (name.empty() || name == ".") name = fs::absolute(run).parent_path().filename().string();
    LineSeries train, val, rate, norm;
    train.name = name + " train", val.name = name + " val", rate.name = norm.name = name;
    for (const MetricsRow& r : log.rows()) {
      train.points.emplace_back(x_of(r), r.train_loss);
      if (r.val_loss) val.points.emplace_back(x_of(r), *r.val_loss);
      rate.points.emplace_back(x_of(r), r.lr);
      norm.points.emplace_back(x_of(r), r.grad_norm);
    }
    loss.push_back(std::move(train));
    if (!val.points.empty()) loss.push_back(std::move(val));
    lr.push_back(std::move(rate));
    grad.push_back(std::move(norm));
  }
  const std::string x_label = o.x == "tokens" ? "tokens trained"
                              : o.x == "time" ? "training time (minutes)"
                                              : "step";
  // Three charts stacked in one SVG: the loss at full size, the learning rate
  // and the gradient norm at two thirds.
  const std::string loss_svg =
      line_chart_svg(loss, {.title = "Loss", .x_label = x_label, .y_label = "loss (nats/token)"});
  const std::string lr_svg =
      line_chart_svg(lr, {.title = "Learning rate", .x_label = x_label, .y_label = "lr"});
  const std::string grad_svg = line_chart_svg(
      grad,
      {.title = "Gradient norm (before clipping)", .x_label = x_label, .y_label = "global norm"});
  auto panel = [](const std::string& chart, double y, double height) {
    // A chart is a whole <svg width="720" height="420" viewBox=…>: nested in
    // the page at (0, y), `height` tall, its viewBox scales it.
    const std::string size = "width=\"720\" height=\"420\" ";
    const size_t at = chart.find(size);
    ATTN_CHECK(at != std::string::npos, "plot: unexpected chart header");
    return fmt::format(
               "<svg x=\"0\" y=\"{}\" width=\"720\" height=\"{}\" "
               "preserveAspectRatio=\"xMinYMin meet\" ",
               y, height) +
           chart.substr(at + size.size());
  };

  const std::string svg =
      std::string(
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"980\" "
          "viewBox=\"0 0 720 980\">\n") +
      kPlotMark + "\n<rect width=\"720\" height=\"980\" fill=\"white\"/>\n" +
      panel(loss_svg, 0, 420) + panel(lr_svg, 420, 280) + panel(grad_svg, 700, 280) + "</svg>\n";
  write_file_atomically(o.out, svg);
}

}  // namespace

void add_plot_command(CLI::App& app) {
  auto o = std::make_shared<PlotOptions>();
  CLI::App* cmd = app.add_subcommand(
      "plot",
      "Plot runs as one SVG: train and val loss, learning rate and gradient norm, runs overlaid");
  cmd->add_option("runs", o->runs, "Run directories (each with its metrics.csv)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o->out,
                  "The SVG file to write (its directory is created; an existing file not "
                  "written by attnlab plot needs --force)")
      ->required();
  cmd->add_option("--x", o->x, "What the x axis counts: step (default), tokens, or time (minutes)")
      ->check(CLI::IsMember({"step", "tokens", "time"}));
  cmd->add_flag("--force", o->force, "Replace --out even when attnlab plot did not write it");
  cmd->callback([o] { run_plot(*o); });
}

}  // namespace attnlab::cli
