// Choosing the next token from logits, and generating a continuation.
//
// Sampler, in order (as Hugging Face's generate does):
//   1. greedy (or temperature 0): the argmax, the lowest id among equal
//      logits. No random number is drawn.
//   2. temperature τ: logits / τ (τ < 1 sharpens, τ > 1 flattens).
//   3. top-k: only the k highest logits stay (ties: the lower id first).
//      top-k 1 is greedy.
//   4. top-p (nucleus, Holtzman et al. 2019): of what is left, the smallest
//      set of most probable tokens whose probability adds up to ≥ p stays
//      (always at least one).
//   5. one draw from the renormalised softmax of what stays, from a seeded
//      Rng (tensor/random.hpp): same seed, same tokens.
// Scratch buffers grow to the vocabulary once; sampling allocates nothing after.
//
// generate() runs a Decoder of batch 1: one prefill of the prompt, then one
// step per new token, calling on_token as each is chosen (to stream text);
// generate_batch() runs B sequences of the same prompt with B seeds together.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "attnlab/models/decoder.hpp"
#include "attnlab/tensor/random.hpp"
#include "attnlab/tensor/threads.hpp"

namespace attnlab {

struct SamplingOptions {
  double temperature = 1.0;  // ≥ 0; 0 means greedy
  int64_t top_k = 0;         // ≥ 0; 0 keeps every token
  double top_p = 1.0;        // in (0, 1]; 1 keeps every token
  bool greedy = false;
};
// Throws an Error naming the option that is out of range.
void validate_sampling(const SamplingOptions& options);

// The index of the largest value, the lowest index among equal ones.
template <typename T>
int32_t argmax(std::span<const T> values);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options = {}, uint64_t seed = 0);
  // One token id from logits [V] (f32 or f64; a 1-D tensor or a row of one).
  int32_t sample(const Tensor& logits);
  template <typename T>
  int32_t sample(std::span<const T> logits);

  bool is_greedy() const;
  const SamplingOptions& options() const { return options_; }
  Rng& rng() { return rng_; }

 private:
  SamplingOptions options_;
  Rng rng_;
  std::vector<int32_t> ids_;   // candidate ids, best first once sorted
  std::vector<double> probs_;  // their probabilities
};

struct GenerateOptions {
  int64_t max_new_tokens = 100;
  SamplingOptions sampling;
  uint64_t seed = 0;
  // When the context is full (max_len of the decoder): false refuses up
  // front, before anything is generated; true slides the window: the decoder
  // is reset and the most recent max_len / 2 tokens are prefilled again at
  // positions 0 …, then generation goes on (nanoGPT crops its context the
  // same way; positions never reach max_seq_len).
  bool slide = false;
  // When > 0, only ids below it are sampled: for a tokenizer that knows fewer
  // tokens than the model's vocab_size (the rest would decode to nothing).
  int64_t vocab_limit = 0;
  // When set, sizes the thread pool before each decoded token and is told how
  // long it took (tensor/threads.hpp: --threads 0 measures and chooses).
  ThreadCountTuner* threads = nullptr;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // the new tokens only
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0;        // the prompt's prefill
  double decode_seconds = 0;         // every step, and any re-prefill of a slide
  int64_t steps = 0;                 // decoder steps taken
  int64_t slides = 0;                // times the window slid
  int64_t cache_bytes = 0;           // bytes of cache holding tokens at the end
  double tokens_per_second() const;  // new tokens per second of decoding (after the prefill)
};

// Continues `prompt` (≥ 1 token) by max_new_tokens tokens. The decoder must
// have batch 1; it is reset first. on_token(id) is called for every new token.
GenerateResult generate(Decoder& decoder, std::span<const int32_t> prompt,
                        const GenerateOptions& options,
                        const std::function<void(int32_t)>& on_token = {});

// Continues `prompt` in decoder.batch() sequences at once (one step feeds a
// token of each: the weights are read once per step for all of them).
// Sequence b samples with seed options.seed + b and gets exactly the tokens
// generate() gives alone with that seed: the decoder feeds each sequence by
// the products of batch 1 (Decoder::prefill_each; steps whose rows do not
// mix, tensor/packed_matrix.hpp). The window slides for all at once.
// on_token(b, id) is called as each token is chosen; timings are the batch's
// (cache_bytes: one sequence's).
std::vector<GenerateResult> generate_batch(
    Decoder& decoder, std::span<const int32_t> prompt, const GenerateOptions& options,
    const std::function<void(int64_t, int32_t)>& on_token = {});

}  // namespace attnlab
