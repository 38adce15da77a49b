// attnlab tokenize: a corpus (files, folders of .txt files) into a prepared
// dataset, DATA_DIR: the tokenizer, the token shards of the train and val
// splits and dataset.json (train/tokenize_corpus.hpp says how).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "attnlab/train/progress.hpp"
#include "attnlab/train/tokenize_corpus.hpp"
#include "cli/commands.hpp"
#include "cli/validators.hpp"

namespace attnlab::cli {
namespace {

struct TokenizeCommandOptions {
  TokenizeOptions tokenize;
  bool quiet = false;
};

// A bar redrawn in place on a terminal; a line every 10% otherwise.
class ByteProgress {
 public:
  explicit ByteProgress(bool interactive) : interactive_(interactive) {}
  void restart() { start_ = Clock::now(); }  // the clock of the MB/s
  void update(int64_t done, int64_t total) {
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = static_cast<double>(done) / std::max(s, 1e-9);
    const double left = static_cast<double>(total - done) / std::max(rate, 1.0);
    const double frac =
        static_cast<double>(done) / static_cast<double>(std::max<int64_t>(total, 1));
    const std::string text =
        fmt::format("{:.0f}%  {:.1f}/{:.1f} MB  {:.1f} MB/s  {} left", 100 * frac, done / 1e6,
                    total / 1e6, rate / 1e6, ProgressDisplay::format_duration(left));
    if (interactive_) {
      const int filled = static_cast<int>(frac * 20);
      fmt::print("\r[{}{}] {}", std::string(filled, '#'), std::string(20 - filled, '-'), text);
      std::fflush(stdout);
    } else if (static_cast<int>(frac * 10) > last_tenth_) {
      last_tenth_ = static_cast<int>(frac * 10);
      fmt::print("encoded {}\n", text);
    }
  }
  void finish() {
    if (interactive_) fmt::print("\n");
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool interactive_;
  Clock::time_point start_ = Clock::now();
  int last_tenth_ = 0;
};

void run_tokenize(const TokenizeCommandOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  ByteProgress bar(ProgressDisplay::draws_bar(stdout));
  TokenizeProgress progress;
  if (!o.quiet) {
    progress.stage = [&](const std::string& s) {
      fmt::print("{}\n", s);
      std::fflush(stdout);
      bar.restart();
    };
    progress.encoded = [&](int64_t done, int64_t total) { bar.update(done, total); };
  }
  const DatasetManifest m = tokenize_corpus(o.tokenize, progress);
  if (o.quiet) return;
  bar.finish();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const SplitInfo &train = m.splits[0], &val = m.splits[1];
  const double bytes = static_cast<double>(train.bytes + val.bytes);
  fmt::print(
      "wrote {}: {} tokenizer of {} tokens, train {} tokens ({} documents), val {} tokens ({} "
      "documents), {:.2f} bytes per token, {:.1f} MB in {} ({:.1f} MB/s)\n",
      o.tokenize.out_dir, m.tokenizer_kind, m.vocab_size, train.tokens, train.documents, val.tokens,
      val.documents, bytes / static_cast<double>(train.tokens + val.tokens), bytes / 1e6,
      ProgressDisplay::format_duration(s), bytes / 1e6 / std::max(s, 1e-9));
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeCommandOptions>();
  TokenizeOptions& t = o->tokenize;
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Tokenize a corpus into a prepared dataset (DATA_DIR) for train --data");
  cmd->add_option("--data", t.inputs, "Corpus: UTF-8 text files, or folders of .txt files")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--tokenizer", t.tokenizer,
                  "char (one token per character, default), bpe or unigram (SentencePiece)")
      ->check(CLI::IsMember({"char", "bpe", "unigram"}));
  cmd->add_option("--vocab", t.vocab_size, "Tokens in the vocabulary (bpe, unigram)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--out", t.out_dir, "The DATA_DIR to write (refused if it exists)")->required();
  cmd->add_option("--val-fraction", t.val_fraction,
                  "Share of the text for validation, whole documents when there are several "
                  "(default 0.1)")
      ->check(kPositiveNumber)
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--byte-fallback", t.byte_fallback,
                "char: 256 byte tokens spell any character outside the corpus's (bpe and "
                "unigram always have them)");
  cmd->add_option("--tokenizer-model", t.tokenizer_model,
                  "Use this tokenizer (a SentencePiece .model, or a tokenizer.json) instead of "
                  "learning one")
      ->check(CLI::ExistingFile);
  cmd->add_option("--sample-bytes", t.sample_bytes,
                  "Text the tokenizer learns from, at most (default 16 MiB; evenly spaced lines)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--shard-tokens", t.shard_tokens,
                  "Tokens per shard file; a split past it is numbered shards (default 2^30)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_flag("--force", t.force, "Replace DATA_DIR if it holds a prepared dataset");
  cmd->add_option("-t,--threads", t.threads, "Threads (default 0: all cores)")
      ->check(CLI::Range(0, 1024));
  cmd->add_flag("--quiet", o->quiet, "Print nothing but errors");
  cmd->callback([o] { run_tokenize(*o); });
}

}  // namespace attnlab::cli
