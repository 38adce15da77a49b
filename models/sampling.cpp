#include "attnlab/models/sampling.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace attnlab {

void validate_sampling(const SamplingOptions& o) {
  ATTN_CHECK(std::isfinite(o.temperature) && o.temperature >= 0,
             "temperature must be a number ≥ 0 (0 is greedy), got {}", o.temperature);
  ATTN_CHECK(o.top_k >= 0, "top-k must be ≥ 0 (0 keeps every token), got {}", o.top_k);
  ATTN_CHECK(o.top_p > 0 && o.top_p <= 1, "top-p must lie in (0, 1] (1 keeps every token), got {}",
             o.top_p);
}

template <typename T>
int32_t argmax(std::span<const T> values) {
  ATTN_CHECK(!values.empty(), "argmax of no values");
  size_t best = 0;
  for (size_t i = 1; i < values.size(); ++i)
    if (values[i] > values[best]) best = i;
  return static_cast<int32_t>(best);
}
template int32_t argmax<float>(std::span<const float>);
template int32_t argmax<double>(std::span<const double>);

Sampler::Sampler(const SamplingOptions& options, uint64_t seed) : options_(options), rng_(seed) {
  validate_sampling(options);
}

bool Sampler::is_greedy() const {
  return options_.greedy || options_.temperature == 0 || options_.top_k == 1;
}

int32_t Sampler::sample(const Tensor& logits) {
  ATTN_CHECK(logits.dim() == 1 || (logits.dim() == 2 && logits.size(0) == 1),
             "sample needs the logits of one position, [V] or [1, V], got shape {}",
             shape_str(logits.shape()));
  const Tensor l = logits.contiguous();
  return dispatch_dtype(l.dtype(), [&]<typename T>() {
    return sample<T>(std::span<const T>(l.data<T>(), static_cast<size_t>(l.numel())));
  });
}

template <typename T>
int32_t Sampler::sample(std::span<const T> logits) {
  const int64_t V = static_cast<int64_t>(logits.size());
  ATTN_CHECK(V > 0, "sample: no logits");
  const int32_t best = argmax(logits);
  ATTN_CHECK(std::isfinite(static_cast<double>(logits[best])),
             "sample: the logits are not finite (largest {})", static_cast<double>(logits[best]));
  if (is_greedy()) return best;

  // Candidates, best first where an order is needed: higher logit, then lower id.
  ids_.resize(V);
  probs_.resize(V);
  std::iota(ids_.begin(), ids_.end(), 0);
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  int64_t n = V;
  if (options_.top_k > 0 && options_.top_k < V) {
    n = options_.top_k;
    std::partial_sort(ids_.begin(), ids_.begin() + n, ids_.end(), better);
  } else if (options_.top_p < 1) {
    std::sort(ids_.begin(), ids_.end(), better);
  }
  const double max_logit = static_cast<double>(logits[best]);
  const double inv_t = 1.0 / options_.temperature;
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    probs_[i] = std::exp((static_cast<double>(logits[ids_[i]]) - max_logit) * inv_t);
    total += probs_[i];
  }
  if (options_.top_p < 1) {  // the smallest prefix holding ≥ top_p of the mass
    double kept = 0;
    int64_t j = 0;
    while (j < n) {
      kept += probs_[j++];
      if (kept >= options_.top_p * total) break;
    }
    n = j;
    total = kept;
  }
  const double u = rng_.uniform() * total;
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    acc += probs_[i];
    if (u < acc) return ids_[i];
  }
  return ids_[n - 1];  // u within rounding of the total
}
template int32_t Sampler::sample<float>(std::span<const float>);
template int32_t Sampler::sample<double>(std::span<const double>);

double GenerateResult::tokens_per_second() const {
  const double decoded = static_cast<double>(std::max<int64_t>(0, std::ssize(tokens) - 1));
  return decode_seconds > 0 ? decoded / decode_seconds : 0.0;
}

std::vector<GenerateResult> generate_batch(Decoder& decoder, std::span<const int32_t> prompt,
                                           const GenerateOptions& options,
                                           const std::function<void(int64_t, int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  ATTN_CHECK(!prompt.empty(), "the prompt is empty: generation needs at least one token to start");
  ATTN_CHECK(options.max_new_tokens >= 0, "the number of tokens must be ≥ 0, got {}",
             options.max_new_tokens);
  const int64_t B = decoder.batch();
  const int64_t M = decoder.max_len(), P = std::ssize(prompt), N = options.max_new_tokens;
  const int64_t keep = std::max<int64_t>(1, M / 2);  // tokens kept when the window slides
  if (!options.slide) {
    ATTN_CHECK(P <= M,
               "the prompt has {} tokens, more than the {} positions of the model's context "
               "(max_seq_len); shorten it, or let the window slide (drop --no-slide)",
               P, M);
    ATTN_CHECK(N == 0 || P + N - 1 <= M,
               "a prompt of {} tokens and {} new ones need {} positions, but the model's context "
               "has {} (max_seq_len): ask for at most {} tokens, or let the window slide (drop "
               "--no-slide)",
               P, N, P + N - 1, M, M - P + 1);
  }

  ATTN_CHECK(options.vocab_limit >= 0, "vocab_limit must be ≥ 0, got {}", options.vocab_limit);
  const int64_t V = decoder.config().vocab_size;
  const size_t sampled = static_cast<size_t>(
      options.vocab_limit > 0 ? std::min(options.vocab_limit, V) : V);  // ids that may come out

  std::vector<Sampler> samplers;
  std::vector<GenerateResult> results(B);
  std::vector<std::vector<int32_t>> history(B);
  for (int64_t b = 0; b < B; ++b) {
    samplers.emplace_back(options.sampling, options.seed + static_cast<uint64_t>(b));
    results[b].prompt_tokens = P;
    results[b].tokens.reserve(N);
    history[b].assign(prompt.begin(), prompt.end());
    history[b].reserve(P + N);
  }
  // Each sequence's prefill runs as at batch 1 (Decoder::prefill_each), so
  // sequence b gets the very bits it would get alone.
  auto prefill_all = [&](int64_t tokens) {
    std::vector<int32_t> ids;
    ids.reserve(B * tokens);
    for (int64_t b = 0; b < B; ++b)
      ids.insert(ids.end(), history[b].end() - tokens, history[b].end());
    return decoder.prefill_each(ids, tokens);
  };
  decoder.reset();
  const int64_t first = std::max<int64_t>(0, P - M);  // a longer prompt slides right away
  int64_t slides = first > 0 ? 1 : 0, steps = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  // The logits to sample from: the prefill's, then the decoder's step buffer.
  // Sampling reads them through a span, so a step allocates nothing.
  auto t0 = Clock::now();
  Tensor prefilled = prefill_all(P - first);
  const Tensor* logits = &prefilled;
  prefill_seconds = seconds(t0, Clock::now());
  std::vector<int32_t> last(B);
  for (int64_t i = 0; i < N; ++i) {
    if (i > 0 && options.threads) options.threads->before();
    t0 = Clock::now();
    if (i > 0) {
      if (decoder.position() == M) {  // full: slide (only reachable with options.slide)
        decoder.reset();
        prefilled = prefill_all(keep);
        logits = &prefilled;
        ++slides;
      } else {
        for (int64_t b = 0; b < B; ++b) last[b] = history[b].back();
        logits = &decoder.step(last);
        ++steps;
      }
    }
    for (int64_t b = 0; b < B; ++b)
      last[b] = dispatch_dtype(logits->dtype(), [&]<typename T>() {
        return samplers[b].sample<T>(std::span<const T>(logits->data<T>() + b * V, sampled));
      });
    if (i > 0) {
      const double dt = seconds(t0, Clock::now());
      decode_seconds += dt;
      if (options.threads) options.threads->after(dt);
    }
    for (int64_t b = 0; b < B; ++b) {
      results[b].tokens.push_back(last[b]);
      history[b].push_back(last[b]);
      if (on_token) on_token(b, last[b]);
    }
  }
  for (GenerateResult& r : results) {
    r.prefill_seconds = prefill_seconds;
    r.decode_seconds = decode_seconds;
    r.steps = steps;
    r.slides = slides;
    r.cache_bytes = decoder.cache_bytes() / B;
  }
  return results;
}

GenerateResult generate(Decoder& decoder, std::span<const int32_t> prompt,
                        const GenerateOptions& options,
                        const std::function<void(int32_t)>& on_token) {
  ATTN_CHECK(decoder.batch() == 1, "generate needs a decoder of batch 1, got {}", decoder.batch());
  std::function<void(int64_t, int32_t)> each;
  if (on_token) each = [&](int64_t, int32_t id) { on_token(id); };
  return std::move(generate_batch(decoder, prompt, options, each).front());
}

}  // namespace attnlab
