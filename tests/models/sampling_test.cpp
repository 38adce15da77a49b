// Sampling: greedy and its equivalents (temperature 0, top-k 1), seeded
// determinism, what top-k and top-p keep, the distribution of plain sampling,
// refusals; generate(): the same tokens as the training forward's argmax,
// the context limit and the sliding window.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "attnlab/autograd/variable.hpp"
#include "attnlab/models/decoder.hpp"
#include "attnlab/models/sampling.hpp"
#include "tests/models/decoder_test_util.hpp"

using namespace attnlab;
using namespace attnlab::test;

namespace {

Tensor logits_of(const std::vector<double>& values) {
  return Tensor::from_data<double>({static_cast<int64_t>(values.size())}, values).to(DType::F32);
}

std::map<int32_t, int> histogram(Sampler& s, const Tensor& logits, int draws) {
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[s.sample(logits)];
  return counts;
}

struct Fixture {
  ModelConfig config = small_config({.attention = "mla", .moe = true, .max_seq_len = 16});
  std::unique_ptr<LanguageModel> model = random_model(config, DType::F32, 5);
  Decoder decoder{absorb_weights(*model, DType::F32), DType::F32};
};

}  // namespace

TEST_CASE("argmax takes the lowest index among equal values") {
  const std::vector<float> v{1, 3, 2, 3};
  CHECK(argmax<float>(v) == 1);
  const std::vector<double> w{-5};
  CHECK(argmax<double>(w) == 0);
}

TEST_CASE("temperature 0, top-k 1 and greedy all take the argmax, and draw no random number") {
  Rng rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    const Tensor logits = Tensor::normal({37}, rng, 0, 2);
    const std::vector<double> v = logits.to_vector();
    const int32_t best = static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
    Sampler greedy({.greedy = true}, trial), cold({.temperature = 0}, trial + 1),
        top1({.top_k = 1}, trial + 2);
    CHECK(greedy.is_greedy());
    CHECK(greedy.sample(logits) == best);
    CHECK(cold.sample(logits) == best);
    CHECK(top1.sample(logits) == best);
    CHECK(greedy.rng().state() == Rng(trial).state());
  }
  // Ties: the lower id, as in the MoE routing rule.
  Sampler top1({.top_k = 1});
  CHECK(top1.sample(logits_of({0, 2, 1, 2})) == 1);
}

TEST_CASE("sampling is deterministic for a seed and follows the softmax") {
  const Tensor logits = logits_of({0.0, 1.0, 2.0, -1.0});
  Sampler a({}, 42), b({}, 42), c({}, 43);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.sample(logits));
    sb.push_back(b.sample(logits));
    sc.push_back(c.sample(logits));
  }
  CHECK(sa == sb);
  CHECK(sa != sc);

  // Frequencies match softmax(logits / temperature).
  for (double temperature : {1.0, 0.5, 2.0}) {
    CAPTURE(temperature);
    Sampler s({.temperature = temperature}, 7);
    const int draws = 40000;
    const auto counts = histogram(s, logits, draws);
    const std::vector<double> l = logits.to_vector();
    double z = 0;
    for (double x : l) z += std::exp(x / temperature);
    for (int32_t id = 0; id < 4; ++id) {
      const double p = std::exp(l[id] / temperature) / z;
      const double freq = counts.count(id) ? counts.at(id) / static_cast<double>(draws) : 0.0;
      CHECK(std::abs(freq - p) < 0.01);
    }
  }
}

TEST_CASE("top-k keeps the k highest logits, top-p the smallest nucleus") {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (as logits: their logs), shuffled ids.
  const Tensor logits = logits_of({std::log(0.15), std::log(0.5), std::log(0.05), std::log(0.3)});
  auto support = [&](const SamplingOptions& o) {
    Sampler s(o, 1);
    std::set<int32_t> ids;
    for (const auto& [id, n] : histogram(s, logits, 4000)) ids.insert(id);
    return ids;
  };
  CHECK(support({}) == std::set<int32_t>{0, 1, 2, 3});
  CHECK(support({.top_k = 2}) == std::set<int32_t>{1, 3});
  CHECK(support({.top_k = 3}) == std::set<int32_t>{0, 1, 3});
  CHECK(support({.top_k = 10}) == std::set<int32_t>{0, 1, 2, 3});
  CHECK(support({.top_p = 0.45}) == std::set<int32_t>{1});
  CHECK(support({.top_p = 0.75}) == std::set<int32_t>{1, 3});
  CHECK(support({.top_p = 0.9}) == std::set<int32_t>{0, 1, 3});
  CHECK(support({.top_p = 1.0}) == std::set<int32_t>{0, 1, 2, 3});
  CHECK(support({.top_k = 2, .top_p = 0.9}) == std::set<int32_t>{1, 3});
  CHECK(support({.top_k = 3, .top_p = 0.6}) == std::set<int32_t>{1, 3});

  // Within the nucleus, the renormalised probabilities: 0.5/0.8 and 0.3/0.8.
  Sampler s({.top_p = 0.75}, 9);
  const auto counts = histogram(s, logits, 40000);
  CHECK(std::abs(counts.at(1) / 40000.0 - 0.625) < 0.01);
}

TEST_CASE("bad sampling options are refused, naming the option") {
  CHECK(contains(error_of([] { Sampler({.temperature = -1}); }), "temperature must be"));
  CHECK(contains(error_of([] { Sampler({.temperature = NAN}); }), "temperature must be"));
  CHECK(contains(error_of([] { Sampler({.top_k = -2}); }), "top-k must be ≥ 0"));
  CHECK(contains(error_of([] { Sampler({.top_p = 0}); }), "top-p must lie in (0, 1]"));
  CHECK(contains(error_of([] { Sampler({.top_p = 1.5}); }), "top-p must lie in (0, 1]"));
  Sampler s;
  CHECK(contains(error_of([&] { s.sample(Tensor::zeros({2, 3})); }), "[V] or [1, V]"));
  CHECK(contains(error_of([&] { s.sample(logits_of({NAN, 1.0})); }), "not finite"));
}

TEST_CASE("greedy generation is deterministic and follows the training forward's argmax") {
  Fixture f;
  const std::vector<int32_t> prompt{3, 1, 4, 1, 5};
  std::vector<int32_t> streamed;
  const GenerateResult g =
      generate(f.decoder, prompt, {.max_new_tokens = 8, .sampling = {.greedy = true}},
               [&](int32_t id) { streamed.push_back(id); });
  REQUIRE(g.tokens.size() == 8);
  CHECK(streamed == g.tokens);
  CHECK(g.prompt_tokens == 5);
  CHECK(g.steps == 7);
  CHECK(g.slides == 0);
  CHECK(g.cache_bytes == 12 * f.decoder.cache_bytes_per_token());  // 5 + 7 tokens fed
  // The same tokens again, with any seed; and with temperature 0 or top-k 1.
  CHECK(generate(f.decoder, prompt, {.max_new_tokens = 8, .sampling = {.greedy = true}, .seed = 9})
            .tokens == g.tokens);
  CHECK(generate(f.decoder, prompt, {.max_new_tokens = 8, .sampling = {.temperature = 0}}).tokens ==
        g.tokens);
  CHECK(generate(f.decoder, prompt, {.max_new_tokens = 8, .sampling = {.top_k = 1}, .seed = 3})
            .tokens == g.tokens);
  // Each token is the argmax of the training forward over everything before it.
  std::vector<int32_t> history = prompt;
  for (int32_t token : g.tokens) {
    NoGradGuard no_grad;
    const int64_t T = std::ssize(history);
    const Tensor logits = f.model->forward(history, 1, T).logits.value().select(1, T - 1);
    CHECK(Sampler({.greedy = true}).sample(logits) == token);
    history.push_back(token);
  }
}

TEST_CASE("seeded sampling generation is reproducible") {
  Fixture f;
  const std::vector<int32_t> prompt{7};
  const GenerateOptions o{
      .max_new_tokens = 15, .sampling = {.temperature = 1.5, .top_p = 0.95}, .seed = 123};
  const auto a = generate(f.decoder, prompt, o).tokens;
  CHECK(generate(f.decoder, prompt, o).tokens == a);
  GenerateOptions other = o;
  other.seed = 124;
  CHECK(generate(f.decoder, prompt, other).tokens != a);
}

TEST_CASE("generate refuses to run past the context, or slides the window when asked") {
  Fixture f;  // max_seq_len 16
  const std::vector<int32_t> prompt{1, 2, 3, 4, 5, 6};
  // 6 + 11 − 1 = 16 positions: fits exactly; one more does not.
  CHECK(generate(f.decoder, prompt, {.max_new_tokens = 11, .sampling = {}}).tokens.size() == 11);
  CHECK(error_of([&] { generate(f.decoder, prompt, {.max_new_tokens = 12, .sampling = {}}); }) ==
        "a prompt of 6 tokens and 12 new ones need 17 positions, but the model's context has 16 "
        "(max_seq_len): ask for at most 11 tokens, or let the window slide (drop --no-slide)");
  const std::vector<int32_t> long_prompt(17, 1);
  CHECK(contains(
      error_of([&] { generate(f.decoder, long_prompt, {.max_new_tokens = 1, .sampling = {}}); }),
      "the prompt has 17 tokens, more than the 16 positions"));
  CHECK(contains(error_of([&] { generate(f.decoder, std::vector<int32_t>{}, {}); }),
                 "the prompt is empty"));

  // Sliding: 40 tokens through a context of 16, each slide keeping the last 8.
  const GenerateResult g = generate(
      f.decoder, prompt, {.max_new_tokens = 40, .sampling = {.greedy = true}, .slide = true});
  CHECK(g.tokens.size() == 40);
  CHECK(g.slides > 0);
  CHECK(f.decoder.position() <= 16);
  // After a slide, the next token is the argmax of the training forward over
  // the kept window, so the first tokens before any slide match plain generation.
  const auto plain =
      generate(f.decoder, prompt, {.max_new_tokens = 11, .sampling = {.greedy = true}});
  CHECK(std::equal(plain.tokens.begin(), plain.tokens.end(), g.tokens.begin()));
  // A prompt longer than the context slides right away.
  const GenerateResult l =
      generate(f.decoder, long_prompt, {.max_new_tokens = 3, .sampling = {}, .slide = true});
  CHECK(l.tokens.size() == 3);
  CHECK(l.slides >= 1);
}
