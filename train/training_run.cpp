#include "attnlab/train/training_run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "attnlab/models/atomic_file.hpp"
#include "attnlab/models/checkpoint.hpp"
#include "attnlab/tensor/threads.hpp"
#include "attnlab/train/data_parallel.hpp"
#include "attnlab/train/metrics.hpp"
#include "attnlab/train/prepared_dataset.hpp"
#include "attnlab/train/progress.hpp"
#include "attnlab/train/tokenizer_loader.hpp"
#include "attnlab/train/trainer.hpp"

namespace attnlab {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// Metadata keys of the training state in last.safetensors.
constexpr const char* kSettingsKey = "train.settings";
constexpr const char* kStepKey = "train.step";
constexpr const char* kSamplerKey = "train.sampler_state";
constexpr const char* kDropoutKey = "train.dropout_state";
constexpr const char* kBestKey = "train.best_val_loss";
constexpr const char* kValKey = "train.val_loss";
constexpr const char* kElapsedKey = "train.elapsed_s";
constexpr const char* kInitFromKey = "train.init_from";
constexpr const char* kDateKey = "train.date";  // when the checkpoint was written, UTC

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string state_to_string(const Rng::State& s) {
  return fmt::format("{},{},{},{}", s[0], s[1], s[2], s[3]);
}

Rng::State state_from_string(const std::string& text, const char* key, const std::string& what) {
  Rng::State s{};
  size_t at = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const size_t comma = text.find(',', at);
    const std::string part =
        text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    try {
      size_t used = 0;
      s[i] = std::stoull(part, &used);
      ATTN_CHECK(used == part.size() && !part.empty(), "");
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: malformed {} '{}'", what, key, text));
    }
    if (comma == std::string::npos) {
      ATTN_CHECK(i == s.size() - 1, "{}: malformed {} '{}'", what, key, text);
      break;
    }
    at = comma + 1;
  }
  return s;
}

double parse_double(const std::string& text, const char* key, const std::string& what) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error(fmt::format("{}: malformed {} '{}'", what, key, text));
}

// Everything a run needs in memory; shared by start_run and resume_run.
struct Run {
  explicit Run(Communicator* given)
      : alone(given ? nullptr : std::make_unique<SingleProcess>()),
        ranks(given ? *given : *alone) {}
  std::unique_ptr<SingleProcess> alone;  // the ranks when none are given
  Communicator& ranks;
  std::string dir;
  TrainSettings settings;
  std::unique_ptr<TrainingData> data;
  std::unique_ptr<LanguageModel> model;
  std::unique_ptr<Trainer> trainer;
  MetricsLog metrics;
  double best_val = INFINITY, last_val = NAN, elapsed_base = 0;
  std::string init_from;  // the checkpoint a fine-tuning run started from

  std::string last_path() const { return (fs::path(dir) / "last.safetensors").string(); }
  std::string best_path() const { return (fs::path(dir) / "best.safetensors").string(); }
  std::string metrics_path() const { return (fs::path(dir) / "metrics.csv").string(); }
  std::string settings_path() const { return (fs::path(dir) / "settings.json").string(); }

  // settings.json: the run's settings and model config for a reader, written
  // when the run starts or resumes (a resume may change the schedule). The
  // checkpoints hold the same, which is what a resume reads.
  void write_settings_file() const {
    nlohmann::ordered_json j;
    j["settings"] = nlohmann::ordered_json::parse(settings.to_json());
    j["config"] = nlohmann::ordered_json::parse(config_to_json(model->config()));
    if (!init_from.empty()) j["init_from"] = init_from;
    write_file_atomically(settings_path(), j.dump(2) + "\n");
  }

  std::map<std::string, std::string> metadata(double elapsed, const TrainerState& st) const {
    std::map<std::string, std::string> meta{{"tokenizer", data->tokenizer().to_json()},
                                            {kSettingsKey, settings.to_json()},
                                            {kStepKey, std::to_string(st.step)},
                                            {kSamplerKey, state_to_string(st.sampler)},
                                            {kDropoutKey, state_to_string(st.dropout)},
                                            {kBestKey, fmt::format("{:.17g}", best_val)},
                                            {kValKey, fmt::format("{:.17g}", last_val)},
                                            {kElapsedKey, fmt::format("{:.6f}", elapsed)},
                                            {kDateKey, utc_now()}};
    if (!init_from.empty()) meta[kInitFromKey] = init_from;
    return meta;
  }

  // Saves best when the validation loss improved, metrics.csv, and last (with
  // the optimizer state) — each file atomically, last last. Every rank calls
  // it (the optimizer state is gathered from all); rank 0 writes.
  void save(double elapsed, bool improved) {
    const TrainerState st = trainer->state();
    if (!ranks.is_root()) return;
    const auto meta = metadata(elapsed, st);
    std::vector<std::pair<std::string, Tensor>> optim;
    const auto params = model->named_parameters();
    for (size_t i = 0; i < params.size(); ++i)
      optim.emplace_back("optim.m." + params[i].first, st.adam_m[i]);
    for (size_t i = 0; i < params.size(); ++i)
      optim.emplace_back("optim.v." + params[i].first, st.adam_v[i]);
    if (improved || !fs::exists(best_path())) write_checkpoint(best_path(), *model, meta);
    // metrics.csv before last: a run killed between the two resumes from the
    // previous last and reads back only its rows (MetricsLog::read's
    // max_step); the other way round, the rows since the previous checkpoint
    // would be lost for good.
    metrics.write(metrics_path());
    write_checkpoint(last_path(), *model, meta, optim);
  }
};

RunSummary train_loop(Run& run, int64_t total_steps, const RunOutput& output,
                      const RunControl& control) {
  // --threads 0: every core or one, whichever is faster now (threads.hpp).
  ThreadCountTuner threads(static_cast<int>(run.settings.threads));
  Trainer& trainer = *run.trainer;
  const bool print = !output.quiet && run.ranks.is_root();
  ProgressDisplay progress(output.stream, total_steps, output.interactive,
                           std::max<int64_t>(1, total_steps / 20));
  const auto start = Clock::now();
  auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  double step_seconds = 0;           // training time of this session, evaluations excluded
  double communication_seconds = 0;  // of it, in collectives (data_parallel.hpp)
  int64_t steps_this_session = 0;
  auto last_save = Clock::now();
  // Every rank must save and stop at the same step, or the others would wait
  // for it forever. A stop request (a signal to one process) and a timed save
  // (one process's clock) are therefore agreed on after each step: one byte
  // per rank, all gathered (next to a step's gradient exchange, nothing);
  // any rank's stop stops all, rank 0's clock times the saves.
  struct Decision {
    bool stop = false, save = false;
  };
  auto decide = [&](int64_t step) {
    Decision d;
    d.stop = control.stop && control.stop->load();
    d.save = control.save_every > 0 ? step % control.save_every == 0
                                    : control.save_interval_s > 0 &&
                                          seconds_since(last_save) >= control.save_interval_s;
    if (run.ranks.size() == 1) return d;
    std::vector<uint8_t> votes(static_cast<size_t>(run.ranks.size()));
    votes[static_cast<size_t>(run.ranks.rank())] = static_cast<uint8_t>(d.stop | d.save << 1);
    const std::vector<int64_t> bytes(votes.size(), 1);
    run.ranks.all_gather(votes.data(), bytes);
    d.stop = std::any_of(votes.begin(), votes.end(), [](uint8_t v) { return v & 1; });
    d.save = control.save_every > 0 ? d.save : (votes[0] & 2) != 0;
    return d;
  };

  auto evaluate_and_save = [&](MetricsRow* row) {
    // On a terminal the evaluation's batches count up on the bar's line; in a
    // log, its result line below is the news.
    std::optional<CountProgress> counting;
    if (print && output.interactive)
      counting.emplace(output.stream, true,
                       fmt::format("step {}: evaluating", trainer.steps_done()),
                       run.settings.eval_batches);
    run.last_val = trainer.evaluate(Split::kVal, [&](int64_t done, int64_t total) {
      if (counting)
        counting->update(done * run.settings.eval_batches / std::max<int64_t>(total, 1));
    });
    if (counting) counting->finish();
    if (row) row->val_loss = run.last_val;
    const bool improved = run.last_val < run.best_val;
    run.best_val = std::min(run.best_val, run.last_val);
    const double elapsed = run.elapsed_base + seconds_since(start);
    run.save(elapsed, improved);
    last_save = Clock::now();
    if (print)
      progress.note(fmt::format("step {}: val loss {:.4f}, perplexity {:.2f}, {:.4f} bits/byte{}",
                                trainer.steps_done(), run.last_val, std::exp(run.last_val),
                                bits_per_byte(run.last_val, run.data->bytes_per_token(Split::kVal)),
                                improved ? ", saved best" : ""));
  };

  if (trainer.steps_done() == 0 && total_steps == 0) evaluate_and_save(nullptr);
  while (trainer.steps_done() < total_steps) {
    threads.before();
    const auto t = Clock::now();
    StepResult r;
    try {
      r = trainer.step();
    } catch (const ErrorOnEveryRank& e) {
      if (print) progress.finish();
      const bool saved = fs::exists(run.last_path());
      throw ErrorOnEveryRank(
          fmt::format("{}; {}", e.what(),
                      saved ? fmt::format("the last good checkpoint is {}", run.last_path())
                            : std::string("no checkpoint was written yet")),
          e.report());
    }
    const double dt = seconds_since(t);
    threads.after(dt);
    step_seconds += dt;
    communication_seconds += r.seconds_communicating;
    ++steps_this_session;
    MetricsRow row;
    row.step = r.step;
    row.train_loss = r.loss;
    row.lr = r.lr;
    row.grad_norm = r.grad_norm;
    row.aux_loss = r.aux;
    row.tokens_per_s = static_cast<double>(r.tokens) / std::max(dt, 1e-9);
    row.elapsed_s = run.elapsed_base + seconds_since(start);
    const bool eval_now = (run.settings.eval_every > 0 && r.step % run.settings.eval_every == 0) ||
                          r.step == total_steps;
    if (print) {
      const double per_step = step_seconds / static_cast<double>(steps_this_session);
      progress.update(r.step, r.loss, row.tokens_per_s, per_step * (total_steps - r.step));
    }
    run.metrics.add(row);
    const Decision decision = decide(r.step);
    if (eval_now) {
      evaluate_and_save(&run.metrics.last());  // rewrites metrics.csv, this row included
    } else {
      if (run.ranks.is_root()) MetricsLog::append(run.metrics_path(), row);
      if (decision.stop || decision.save) {
        run.save(run.elapsed_base + seconds_since(start), /*improved=*/false);
        last_save = Clock::now();
      }
    }
    if (decision.stop) break;
  }
  if (print) progress.finish();
  return {.steps = trainer.steps_done(),
          .val_loss = run.last_val,
          .best_val_loss = run.best_val,
          .val_bits_per_byte = bits_per_byte(run.last_val, run.data->bytes_per_token(Split::kVal)),
          .elapsed_s = run.elapsed_base + seconds_since(start),
          .ranks = run.ranks.size(),
          .session_steps = steps_this_session,
          .step_seconds = step_seconds,
          .communication_seconds = communication_seconds,
          .stopped = trainer.steps_done() < total_steps};
}

// Refuses ranks that would not train the same run: other settings (but the
// corpus's path, which may differ from machine to machine, and the thread
// count, which changes no bit), another model or other data.
void check_same_run(Run& run, const ModelConfig& config, const std::string& checkpoint_state) {
  if (run.ranks.size() == 1) return;
  TrainSettings s = run.settings;
  s.data_path.clear();
  s.threads = 0;
  uint64_t data = fingerprint(run.data->tokenizer().to_json());
  std::vector<int32_t> chunk;
  for (Split split : {Split::kTrain, Split::kVal}) {
    const TokenSequence& tokens = run.data->split(split);
    for (int64_t at = 0; at < tokens.size(); at += 1 << 20) {
      chunk.resize(static_cast<size_t>(std::min<int64_t>(1 << 20, tokens.size() - at)));
      tokens.read(at, static_cast<int64_t>(chunk.size()), chunk.data());
      data = fingerprint({reinterpret_cast<const char*>(chunk.data()), chunk.size() * 4}, data);
    }
  }
  check_ranks_agree(run.ranks, {{"training settings", fingerprint(s.to_json())},
                                {"model", fingerprint(config_to_json(config))},
                                {"training data", data},
                                {"checkpoint to resume", fingerprint(checkpoint_state)}});
}

}  // namespace

int64_t corpus_vocab_size(const std::string& data_path) {
  if (is_prepared_dataset(data_path)) {
    const fs::path manifest = fs::path(data_path) / "dataset.json";
    ATTN_CHECK(fs::exists(manifest),
               "a folder, but not a prepared dataset: it has no dataset.json (write one with "
               "attnlab tokenize)");
    return DatasetManifest::from_json(read_text_file(manifest), "dataset.json").vocab_size;
  }
  return CharTokenizer::from_corpus(read_text_file(data_path)).vocab_size();
}

RunSummary start_run(const NewRun& spec, const RunOutput& output, Communicator* ranks,
                     const RunControl& control) {
  spec.settings.validate();
  ATTN_CHECK(!spec.out_dir.empty(), "no run directory: give --out RUN_DIR");
  const fs::path dir(spec.out_dir);
  Run run(ranks);
  if (run.ranks.is_root()) {  // the writer (the others may not even see the directory)
    ATTN_CHECK(!fs::exists(dir / "last.safetensors"),
               "{} already holds a run: continue it with --resume {}, or choose another --out",
               spec.out_dir, spec.out_dir);
    ATTN_CHECK(!fs::exists(dir) || fs::is_directory(dir), "--out {} is a file, not a directory",
               spec.out_dir);
  }
  run.dir = spec.out_dir;
  run.settings = spec.settings;
  // Fine-tuning: the checkpoint's config, weights and tokenizer (its token ids
  // are what the weights mean).
  std::optional<Checkpoint> init;
  if (!spec.init_from.empty()) {
    init = read_checkpoint(spec.init_from);
    ATTN_CHECK(!init->meta("tokenizer").empty(),
               "--init-from {}: has no tokenizer (metadata key 'tokenizer'), so the token ids its "
               "weights were trained on are unknown",
               spec.init_from);
    run.init_from = spec.init_from;
  }
  const ModelConfig& config = init ? init->config : spec.config;
  const int64_t seq_len = config.resolve_seq_len(spec.settings.seq_len);
  if (init) {
    try {
      run.data = open_training_data(spec.settings.data_path, seq_len,
                                    tokenizer_from_json(init->meta("tokenizer")));
    } catch (const Error& e) {
      throw Error(
          fmt::format("{} (with the tokenizer of --init-from {})", e.what(), spec.init_from));
    }
  } else {
    run.data = open_training_data(spec.settings.data_path, seq_len);
  }
  ATTN_CHECK(run.data->tokenizer().vocab_size() <= config.vocab_size,
             "the data {} has a vocabulary of {} tokens ({}) but the model's vocab_size is {}",
             spec.settings.data_path, run.data->tokenizer().vocab_size(),
             run.data->tokenizer().describe(), config.vocab_size);
  run.settings.decay_steps = run.settings.resolved_decay_steps();  // fixed for the run's resumes
  run.model =
      std::make_unique<LanguageModel>(config, DType::F32, run.settings.seed, run.settings.dropout);
  if (init) run.model->load_parameters(init->parameters, spec.init_from);
  check_same_run(run, config, "");
  run.trainer = std::make_unique<Trainer>(*run.model, *run.data, run.settings, &run.ranks);
  if (run.ranks.is_root()) {  // only rank 0 writes
    std::error_code ec;
    fs::create_directories(dir, ec);
    ATTN_CHECK(!ec, "cannot create the run directory {}: {}", spec.out_dir, ec.message());
    run.write_settings_file();
  }
  if (!output.quiet && run.ranks.is_root())
    fmt::print(output.stream,
               "training {} ({} parameters{}) on {} ({} tokens, V={}) for {} steps into {}\n",
               attention_name(config.attention), config.parameter_count(),
               init ? ", from " + spec.init_from : "", spec.settings.data_path,
               run.data->size(Split::kTrain) + run.data->size(Split::kVal),
               run.data->tokenizer().vocab_size(), run.settings.steps, spec.out_dir);
  return train_loop(run, run.settings.steps, output, control);
}

RunSummary resume_run(const std::string& out_dir, const ResumeChanges& changes,
                      const RunOutput& output, Communicator* ranks, const RunControl& control) {
  Run run(ranks);
  run.dir = out_dir;
  ATTN_CHECK(fs::is_directory(out_dir), "--resume {}: no such run directory", out_dir);
  ATTN_CHECK(fs::exists(run.last_path()), "--resume {}: no last.safetensors in it to resume from",
             out_dir);
  const Checkpoint ck = read_checkpoint(run.last_path());
  const std::string what = run.last_path();
  for (const char* key : {kSettingsKey, kStepKey, kSamplerKey, kDropoutKey, "tokenizer"})
    ATTN_CHECK(ck.metadata.count(key), "{}: not a training checkpoint (no {} in its metadata)",
               what, key);
  run.settings = TrainSettings::from_json(ck.meta(kSettingsKey), what);
  run.init_from = ck.meta(kInitFromKey);
  const int64_t old_decay_steps = run.settings.decay_steps;
  if (changes.steps) {
    ATTN_CHECK(*changes.steps >= 0, "--steps must be ≥ 0, got {}", *changes.steps);
    run.settings.steps = *changes.steps;
  }
  if (changes.decay_steps) {
    run.settings.decay_steps = *changes.decay_steps;
    run.settings.decay_steps = run.settings.resolved_decay_steps();  // 0: the new --steps
  }
  if (changes.warmup) run.settings.warmup = *changes.warmup;
  if (changes.eval_every) run.settings.eval_every = *changes.eval_every;
  if (changes.lr) run.settings.lr = *changes.lr;
  if (changes.min_lr) run.settings.min_lr = *changes.min_lr;
  run.settings.validate();
  const auto tokenizer = tokenizer_from_json(ck.meta("tokenizer"));
  const int64_t seq_len = ck.config.resolve_seq_len(run.settings.seq_len);
  run.data = open_training_data(run.settings.data_path, seq_len, tokenizer);
  run.model = std::make_unique<LanguageModel>(ck.config, DType::F32, run.settings.seed,
                                              run.settings.dropout);
  run.model->load_parameters(ck.parameters, what);
  check_same_run(run, ck.config,
                 ck.meta(kStepKey) + ";" + ck.meta(kSamplerKey) + ";" + ck.meta(kElapsedKey));
  run.trainer = std::make_unique<Trainer>(*run.model, *run.data, run.settings, &run.ranks);

  TrainerState st;
  try {
    st.step = std::stoll(ck.meta(kStepKey));
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: malformed {} '{}'", what, kStepKey, ck.meta(kStepKey)));
  }
  st.sampler = state_from_string(ck.meta(kSamplerKey), kSamplerKey, what);
  st.dropout = state_from_string(ck.meta(kDropoutKey), kDropoutKey, what);
  std::map<std::string, Tensor> optim(ck.optimizer.begin(), ck.optimizer.end());
  for (const auto& [name, p] : run.model->named_parameters()) {
    auto m = optim.find("optim.m." + name), v = optim.find("optim.v." + name);
    ATTN_CHECK(m != optim.end() && v != optim.end(), "{}: no optimizer state for {}", what, name);
    st.adam_m.push_back(m->second);
    st.adam_v.push_back(v->second);
  }
  run.trainer->load_state(st);
  run.best_val = parse_double(ck.meta(kBestKey), kBestKey, what);
  run.last_val = parse_double(ck.meta(kValKey), kValKey, what);
  run.elapsed_base = parse_double(ck.meta(kElapsedKey), kElapsedKey, what);
  if (run.ranks.is_root() && fs::exists(run.metrics_path()))
    run.metrics = MetricsLog::read(run.metrics_path(), st.step);
  ATTN_CHECK(run.settings.steps >= st.step,
             "--steps {} is below the run's step {}: --steps is the run's total",
             run.settings.steps, st.step);
  if (run.ranks.is_root()) {
    // Rows appended after the checkpoint are gone with the steps they log:
    // the file goes back to the checkpoint's rows before new ones are appended.
    run.metrics.write(run.metrics_path());
    run.write_settings_file();
  }
  if (!output.quiet && run.ranks.is_root()) {
    fmt::print(output.stream, "resuming {} at step {} of {}\n", out_dir, st.step,
               run.settings.steps);
    if (!changes.decay_steps && run.settings.steps > old_decay_steps)
      fmt::print(stderr,
                 "warning: the learning rate decays until step {} (--decay-steps): steps {} to "
                 "{} run at the minimum, --min-lr {}; to decay over the new steps too, resume "
                 "with --decay-steps {}\n",
                 old_decay_steps, std::max(st.step, old_decay_steps) + 1, run.settings.steps,
                 run.settings.min_lr, run.settings.steps);
  }
  return train_loop(run, run.settings.steps, output, control);
}

}  // namespace attnlab
