// f64 gradient checks of the elementwise, reduction, matmul, shape, indexing
// and softmax ops, including broadcast shapes, size-1 axes and views.
#include "tests/autograd/gradcheck_util.hpp"

using namespace attnlab;
using testing::rand64;
using Vars = std::vector<Variable>;

TEST_CASE("gradcheck: binary ops with broadcasting") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{2, 3, 4}, {4}}, {{2, 1, 4}, {3, 1}}, {{1}, {2, 3}}, {{}, {2, 2}}};
  for (const auto& [sa, sb] : shapes) {
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    const Tensor a = rand64(sa, 1), b = rand64(sb, 2);
    CHECK_GRADCHECK([](const Vars& v) { return add(v[0], v[1]); }, {a, b});
    CHECK_GRADCHECK([](const Vars& v) { return sub(v[0], v[1]); }, {a, b});
    CHECK_GRADCHECK([](const Vars& v) { return mul(v[0], v[1]); }, {a, b});
    // Keep the divisor away from zero.
    const Tensor b_pos = attnlab::add_scalar(attnlab::mul(b, b), 0.5);
    CHECK_GRADCHECK([](const Vars& v) { return div(v[0], v[1]); }, {a, b_pos});
  }
}

TEST_CASE("gradcheck: scalar ops and a value used twice") {
  const Tensor a = rand64({2, 3});
  CHECK_GRADCHECK([](const Vars& v) { return add_scalar(v[0], 1.5); }, {a});
  CHECK_GRADCHECK([](const Vars& v) { return mul_scalar(v[0], -2.5); }, {a});
  // x·x + x: gradients from both uses must add up (2x + 1).
  CHECK_GRADCHECK([](const Vars& v) { return add(mul(v[0], v[0]), v[0]); }, {a});
}

TEST_CASE("gradcheck: unary ops") {
  const Tensor x = rand64({3, 5}, 3);
  // Away from relu's kink at 0 (finite differences straddle it otherwise).
  Tensor x_nokink = x.clone();
  for (int64_t i = 0; i < 15; ++i) {
    double* p = x_nokink.data<double>() + i;
    if (std::abs(*p) < 0.05) *p = 0.3;
  }
  const Tensor pos = attnlab::add_scalar(attnlab::mul(x, x), 0.2);
  CHECK_GRADCHECK([](const Vars& v) { return neg(v[0]); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return exp(v[0]); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return log(v[0]); }, {pos});
  CHECK_GRADCHECK([](const Vars& v) { return sqrt(v[0]); }, {pos});
  CHECK_GRADCHECK([](const Vars& v) { return rsqrt(v[0]); }, {pos});
  CHECK_GRADCHECK([](const Vars& v) { return tanh(v[0]); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return relu(v[0]); }, {x_nokink});
  CHECK_GRADCHECK([](const Vars& v) { return silu(v[0]); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return sigmoid(v[0]); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return gelu(v[0]); }, {x});
  // A non-contiguous input.
  CHECK_GRADCHECK([](const Vars& v) { return exp(transpose(v[0], 0, 1)); }, {x});
}

TEST_CASE("gradcheck: reductions over each axis, several and all") {
  const Tensor x = rand64({2, 3, 4}, 4);
  for (const std::vector<int64_t>& axes :
       std::vector<std::vector<int64_t>>{{}, {0}, {1}, {-1}, {0, 2}}) {
    for (bool keep : {false, true}) {
      CHECK_GRADCHECK([&](const Vars& v) { return sum(v[0], axes, keep); }, {x});
      CHECK_GRADCHECK([&](const Vars& v) { return mean(v[0], axes, keep); }, {x});
    }
  }
  for (int64_t axis : {0, 1, 2})
    for (bool keep : {false, true})
      CHECK_GRADCHECK([&](const Vars& v) { return max(v[0], axis, keep); }, {x});
  const Tensor one = rand64({1, 1});
  CHECK_GRADCHECK([](const Vars& v) { return sum(v[0]); }, {one});
}

TEST_CASE("gradcheck: matmul and linear, transposed and batched") {
  const Tensor a = rand64({3, 4}, 5), b = rand64({4, 2}, 6);
  CHECK_GRADCHECK([](const Vars& v) { return matmul(v[0], v[1]); }, {a, b});
  CHECK_GRADCHECK([](const Vars& v) { return matmul(transpose(v[0], 0, 1), v[1]); },
                  {rand64({4, 3}), b});
  CHECK_GRADCHECK([](const Vars& v) { return matmul(v[0], transpose(v[1], 0, 1)); },
                  {a, rand64({2, 4})});
  const Tensor x = rand64({2, 3, 4}, 7), y = rand64({2, 4, 5}, 8);
  CHECK_GRADCHECK([](const Vars& v) { return matmul(v[0], v[1]); }, {x, y});
  CHECK_GRADCHECK([](const Vars& v) { return matmul(v[0], v[1]); }, {x, b});  // shared weight
  const Tensor w = rand64({5, 4}, 9);
  CHECK_GRADCHECK([](const Vars& v) { return linear(v[0], v[1]); }, {x, w});
  CHECK_GRADCHECK([](const Vars& v) { return linear(v[0], v[1]); }, {rand64({1, 4}), w});
}

TEST_CASE("gradcheck: shape ops") {
  const Tensor x = rand64({2, 3, 4}, 10);
  CHECK_GRADCHECK([](const Vars& v) { return reshape(v[0], {6, 4}); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return permute(v[0], {2, 0, 1}); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return transpose(v[0], 0, 2); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return narrow(v[0], 2, 1, 2); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return narrow(v[0], 1, 0, 1); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return contiguous(permute(v[0], {1, 0, 2})); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return reshape(permute(v[0], {1, 0, 2}), {3, 8}); }, {x});
  const Tensor y = rand64({2, 5, 4}, 11);
  CHECK_GRADCHECK([](const Vars& v) { return concat({v[0], v[1], v[0]}, 1); }, {x, y});
  CHECK_GRADCHECK(
      [](const Vars& v) {
        auto parts = split(v[0], {1, 3}, -1);
        return mul(parts[0], sum(parts[1], {-1}, true));
      },
      {x});
}

TEST_CASE("gradcheck: indexing") {
  const Tensor w = rand64({5, 3}, 12);
  const std::vector<int32_t> ids = {4, 0, 4, 2, 1, 4};  // 4 is picked three times
  CHECK_GRADCHECK([&](const Vars& v) { return index_select(v[0], ids); }, {w});
  CHECK_GRADCHECK([&](const Vars& v) { return embedding(v[0], ids, {2, 3}); }, {w});
  const Tensor rows = rand64({6, 3}, 13);
  CHECK_GRADCHECK([&](const Vars& v) { return index_add(v[0], ids, 5); }, {rows});
  const Tensor x = rand64({2, 3, 5}, 14);
  const std::vector<int32_t> pick = {0, 4, 1, 1, 2, 3, 4, 0, 3, 3, 2, 1};  // 6 rows × 2
  CHECK_GRADCHECK([&](const Vars& v) { return gather(v[0], pick, 2); }, {x});
  const Tensor mask = Tensor::from_data({1, 5}, {1, 0, 0, 1, 1}, DType::F64);
  CHECK_GRADCHECK([&](const Vars& v) { return where(mask, v[0], v[1]); }, {x, rand64({5})});
  CHECK_GRADCHECK([&](const Vars& v) { return masked_fill(v[0], mask, -3.0); }, {x});
}

TEST_CASE("gradcheck: softmax and log-softmax") {
  const Tensor x = rand64({3, 7}, 15, 2.0);
  CHECK_GRADCHECK([](const Vars& v) { return softmax(v[0]); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return log_softmax(v[0]); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return softmax(transpose(v[0], 0, 1)); }, {x});
  CHECK_GRADCHECK([](const Vars& v) { return log_softmax(v[0]); }, {rand64({1, 1})});
}

TEST_CASE("gradcheck: dropout (the same mask on every evaluation)") {
  const Tensor x = rand64({4, 6}, 16);
  CHECK_GRADCHECK(
      [](const Vars& v) {
        Rng rng(99);  // a fresh generator per call: gradcheck evaluates f many times
        return dropout(v[0], 0.3, rng);
      },
      {x});
}

TEST_CASE("dropout keeps about 1 − p of the elements, scaled by 1/(1 − p)") {
  Rng rng(1);
  Variable x(Tensor::ones({10000}, DType::F64));
  const std::vector<double> y = dropout(x, 0.25, rng).value().to_vector();
  int kept = 0;
  for (double v : y) {
    CHECK((v == 0.0 || v == doctest::Approx(1.0 / 0.75)));
    kept += v != 0.0;
  }
  CHECK(kept == doctest::Approx(7500).epsilon(0.03));
  CHECK(dropout(x, 0.0, rng).impl() == x.impl());
  CHECK_THROWS_WITH_AS(dropout(x, 1.0, rng), "dropout probability must lie in [0, 1), got 1",
                       Error);
}
