// attnlab attention: what a trained model attends to, for one prompt. Writes
//   DIR/attention.json   {"tokens": [...], "layers": [{"heads": [[[p, ...], ...], ...],
//                         "experts": [[e, ...], ...]}, ...]}   (experts: MoE only)
//   DIR/layer_<l>.svg    one heat map per head, in a grid, the prompt's tokens
//                        on both axes (rows: queries, columns: keys)
// Row t of a head holds query t's probabilities over keys 0 … t. They come
// from the KV-cached decoder (models/attention_maps.hpp), from either
// checkpoint form; for mla these are the absorbed decoder's.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/models/attention_maps.hpp"
#include "attnlab/train/output_lock.hpp"
#include "attnlab/train/svg_chart.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "cli/commands.hpp"

namespace attnlab::cli {
namespace {

struct AttentionOptions {
  std::string checkpoint, prompt, out;
};

// A token as a label: XML-escaped, with its whitespace made visible
// (a newline as \n, a tab as \t, a space as ␣).
std::string token_label(const std::string& text) {
  std::string visible;
  for (char c : text) {
    if (c == '\n')
      visible += "\\n";
    else if (c == '\t')
      visible += "\\t";
    else if (c == ' ')
      visible += "␣";
    else
      visible += c;
  }
  return xml_escape(visible);
}

// One layer's heads as a grid of T×T heat maps (white 0 … dark blue 1).
std::string layer_svg(const AttentionMaps& m, int64_t layer,
                      const std::vector<std::string>& tokens) {
  const int64_t T = m.tokens, H = m.heads;
  const int64_t cols = std::min<int64_t>(H, 4), rows = (H + cols - 1) / cols;
  const double cell = std::clamp(480.0 / static_cast<double>(T), 3.0, 18.0);
  const bool labels = cell >= 8;
  const double margin = labels ? 60 : 10, title = 24, gap = 20;
  const double side = cell * static_cast<double>(T);
  const double width = static_cast<double>(cols) * (margin + side + gap);
  const double height = static_cast<double>(rows) * (title + margin + side + gap);
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "font-family=\"monospace\" font-size=\"{:.0f}\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n",
      width, height, std::max(7.0, cell * 0.7));
  for (int64_t h = 0; h < H; ++h) {
    const double x0 = static_cast<double>(h % cols) * (margin + side + gap) + margin;
    const double y0 =
        static_cast<double>(h / cols) * (title + margin + side + gap) + title + margin;
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"14\">layer {} head {}</text>\n",
                     x0, y0 - margin - 6, layer, h);
    const std::vector<double>& p = m.probabilities[layer][h];
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        const double v = std::clamp(p[i * T + j], 0.0, 1.0);
        s += fmt::format(
            "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
            "fill=\"rgb({},{},{})\"><title>{} → {}: {:.3f}</title></rect>\n",
            x0 + static_cast<double>(j) * cell, y0 + static_cast<double>(i) * cell, cell, cell,
            static_cast<int>(255 - 247 * v), static_cast<int>(255 - 207 * v),
            static_cast<int>(255 - 148 * v), token_label(tokens[i]), token_label(tokens[j]), v);
      }
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
        "stroke=\"#888\"/>\n",
        x0, y0, side, side);
    if (!labels) continue;
    for (int64_t t = 0; t < T; ++t) {
      const double at = static_cast<double>(t) * cell + cell * 0.75;
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", x0 - 3,
                       y0 + at, token_label(tokens[t]));
      s += fmt::format(
          "<text x=\"{:.1f}\" y=\"{:.1f}\" transform=\"rotate(-90 {:.1f} {:.1f})\">{}</text>\n",
          x0 + at, y0 - 3, x0 + at, y0 - 3, token_label(tokens[t]));
    }
  }
  return s + "</svg>\n";
}

void run_attention(const AttentionOptions& o) {
  const DecoderWeights weights = read_decoder_weights(o.checkpoint, DType::F32);
  const std::string tokenizer_json = weights.meta("tokenizer");
  ATTN_CHECK(!tokenizer_json.empty(),
             "{}: has no tokenizer (metadata key 'tokenizer'), so the prompt cannot be turned "
             "into token ids; checkpoints written by attnlab train carry one",
             o.checkpoint);
  const auto tokenizer = tokenizer_from_json(tokenizer_json);
  std::vector<int32_t> ids;
  try {
    ids = tokenizer->encode(o.prompt);
  } catch (const Error& e) {
    throw Error(fmt::format("--prompt: {}", e.what()));
  }
  const int64_t max_len = weights.config.max_seq_len;
  ATTN_CHECK(!ids.empty(), "--prompt is empty: the maps need at least one token");
  ATTN_CHECK(static_cast<int64_t>(ids.size()) <= max_len,
             "--prompt is {} tokens, more than the model's context (max_seq_len {})", ids.size(),
             max_len);
  for (int32_t id : ids)
    ATTN_CHECK(id < weights.config.vocab_size, "--prompt: token id {} is outside the vocabulary",
               id);
  const AttentionMaps maps = decoder_attention_maps(weights, ids);

  const OutputLock lock = OutputLock::directory(o.out);
  std::vector<std::string> tokens;
  for (int32_t id : ids) tokens.push_back(tokenizer->decode_one(id));
  nlohmann::ordered_json j;
  j["tokens"] = tokens;
  j["layers"] = nlohmann::ordered_json::array();
  const int64_t T = maps.tokens;
  for (size_t l = 0; l < maps.probabilities.size(); ++l) {
    nlohmann::ordered_json layer;
    layer["heads"] = nlohmann::ordered_json::array();
    for (const std::vector<double>& p : maps.probabilities[l]) {
      nlohmann::ordered_json head = nlohmann::ordered_json::array();
      for (int64_t t = 0; t < T; ++t)
        head.push_back(std::vector<double>(p.begin() + t * T, p.begin() + t * T + t + 1));
      layer["heads"].push_back(head);
    }
    if (!maps.experts.empty()) {
      layer["experts"] = nlohmann::ordered_json::array();
      for (int64_t t = 0; t < T; ++t)
        layer["experts"].push_back(
            std::vector<int32_t>(maps.experts[l].begin() + t * maps.top_k,
                                 maps.experts[l].begin() + (t + 1) * maps.top_k));
    }
    j["layers"].push_back(layer);
    write_file_atomically(o.out + "/layer_" + std::to_string(l) + ".svg",
                          layer_svg(maps, static_cast<int64_t>(l), tokens));
  }
  write_file_atomically(o.out + "/attention.json", j.dump() + "\n");
  fmt::print("wrote {}/attention.json and {} heat maps (layer_<l>.svg): {} tokens, {} heads{}\n",
             o.out, maps.probabilities.size(), T, maps.heads,
             maps.experts.empty() ? "" : ", the experts of every token");
}

}  // namespace

void add_attention_command(CLI::App& app) {
  auto opts = std::make_shared<AttentionOptions>();
  CLI::App* cmd = app.add_subcommand(
      "attention",
      "Attention maps of a prompt: every layer's and head's probabilities as SVG heat maps and "
      "JSON (MoE: each token's experts too)");
  cmd->add_option("-m,--checkpoint", opts->checkpoint,
                  "Checkpoint, training or decoder form (.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-p,--prompt", opts->prompt, "The text whose attention to show")->required();
  cmd->add_option("--out", opts->out, "Output directory: attention.json and layer_<l>.svg")
      ->required();
  cmd->callback([opts] { run_attention(*opts); });
}

}  // namespace attnlab::cli
