// tensor/packed_matrix.hpp: packing round trips within the format's error
// bound, groups of 32 (and a shorter last group), the products against a
// double reference, and the same bits for a row alone or inside a batch and
// at any thread count.
// This file's target list includes AVX3_DL (AVX-512 VNNI), as packed_linear.cpp's does.
#define HWY_WANT_AVX3_DL
#include <doctest/doctest.h>
#include <hwy/targets.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "attnlab/tensor/packed_matrix.hpp"
#include "attnlab/tensor/random.hpp"

using namespace attnlab;

namespace {

constexpr WeightFormat kFormats[] = {WeightFormat::F32, WeightFormat::BF16, WeightFormat::Int8};

Tensor random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  return Tensor::normal({rows, cols}, rng, 0.0, 0.5, DType::F32);
}

// out = x · wᵀ in double from the unpacked values.
std::vector<double> reference_product(const std::vector<float>& x, int64_t rows,
                                      const PackedMatrix& w) {
  const Tensor u = w.unpack();
  const int64_t n = w.rows(), k = w.cols();
  std::vector<double> out(rows * n, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t c = 0; c < k; ++c)
        s += static_cast<double>(x[r * k + c]) * static_cast<double>(u.data<float>()[j * k + c]);
      out[r * n + j] = s;
    }
  return out;
}

std::vector<float> random_rows(int64_t rows, int64_t k, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(rows * k);
  for (float& v : x) v = static_cast<float>(rng.normal());
  return x;
}

}  // namespace

TEST_CASE("bf16 rounds to nearest, ties to even, and widens exactly") {
  CHECK(bf16_to_float(float_to_bf16(1.0f)) == 1.0f);
  CHECK(bf16_to_float(float_to_bf16(-3.5f)) == -3.5f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even (1).
  CHECK(bf16_to_float(float_to_bf16(1.0f + 0x1p-8f)) == 1.0f);
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6.
  CHECK(bf16_to_float(float_to_bf16(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
}

TEST_CASE("packing round trips within the format's bound, groups of 32 and odd widths") {
  for (int64_t cols : {1, 7, 31, 32, 33, 64, 100, 344}) {
    CAPTURE(cols);
    const Tensor w = random_matrix(5, cols, 7 + cols);
    const float* src = w.data<float>();
    for (WeightFormat f : kFormats) {
      CAPTURE(weight_format_name(f));
      const PackedMatrix p = PackedMatrix::pack(w, f);
      REQUIRE(p.rows() == 5);
      REQUIRE(p.cols() == cols);
      const Tensor u = p.unpack();
      for (int64_t r = 0; r < 5; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const float x = src[r * cols + c], y = u.data<float>()[r * cols + c];
          if (f == WeightFormat::F32) {
            REQUIRE(y == x);
          } else if (f == WeightFormat::BF16) {
            REQUIRE(std::abs(y - x) <= std::abs(x) * 0x1p-8f);
          } else {
            // |error| ≤ s/2 with s = (max |w| over the group of 32) / 127.
            const int64_t g0 = (c / 32) * 32, g1 = std::min(cols, g0 + 32);
            float amax = 0;
            for (int64_t i = g0; i < g1; ++i) amax = std::max(amax, std::abs(src[r * cols + i]));
            const float s = amax / 127.0f;
            REQUIRE(p.int8_scales()[r * PackedMatrix::groups(cols) + c / 32] == s);
            REQUIRE(std::abs(y - x) <= s * 0.5f * (1 + 1e-6f));
          }
        }
      if (f == WeightFormat::Int8) {
        CHECK(static_cast<int64_t>(p.int8_scales().size()) == 5 * ((cols + 31) / 32));
        // The product reads the tiles (a shorter last group padded to 32) and the scales.
        CHECK(p.bytes() == 5 * ((cols + 31) / 32) * (32 + 4));
      }
    }
  }
}

TEST_CASE("int8 groups are independent: a large value costs precision in its own group only") {
  Tensor w = Tensor::full({1, 64}, 0.01, DType::F32);
  w.data<float>()[40] = 100.0f;  // in the second group
  const PackedMatrix p = PackedMatrix::pack(w, WeightFormat::Int8);
  const Tensor u = p.unpack();
  CHECK(u.data<float>()[0] == doctest::Approx(0.01).epsilon(1e-6));  // first group: exact-ish
  CHECK(std::abs(u.data<float>()[33] - 0.01f) > 1e-3f);              // rounded to 0 next to 100
  CHECK(u.data<float>()[40] == 100.0f);
  // A group of zeros has scale 0 and stays zero.
  const PackedMatrix z = PackedMatrix::pack(Tensor::zeros({2, 40}, DType::F32), WeightFormat::Int8);
  for (float s : z.int8_scales()) CHECK(s == 0.0f);
  for (int8_t q : z.int8_values()) CHECK(q == 0);
}

TEST_CASE("packed_linear equals the product of the unpacked values, beta 0 and 1") {
  for (int64_t k : {1, 5, 32, 45, 96, 200}) {
    for (WeightFormat f : kFormats) {
      CAPTURE(k);
      CAPTURE(weight_format_name(f));
      const int64_t n = 37, rows = 6;
      const PackedMatrix w = PackedMatrix::pack(random_matrix(n, k, 100 + k), f);
      std::vector<float> x = random_rows(rows, k, 200 + k);
      std::vector<double> want = reference_product(x, rows, w);
      std::vector<float> out(rows * n, 0.0f);
      packed_linear(out.data(), n, x.data(), k, rows, w, 0.0f);
      if (f == WeightFormat::Int8) {
        // int8 multiplies by x rounded as quantize_rows rounds it: against
        // that x, only the f32 combination of the groups' exact dots is off.
        QuantizedRows q;
        quantize_rows(x.data(), k, rows, k, q);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < k; ++c)
            x[r * k + c] =
                static_cast<float>(q.tiles[r * q.groups * 32 + int8_tile_offset(c, q.groups)]) *
                q.scales[r * q.groups + c / 32];
        want = reference_product(x, rows, w);
      }
      for (int64_t i = 0; i < rows * n; ++i)
        REQUIRE(std::abs(out[i] - want[i]) <= 1e-5 * (1 + std::sqrt(static_cast<double>(k))));
      std::vector<float> acc(rows * n, 1.0f);  // beta 1 adds to what is there
      packed_linear(acc.data(), n, x.data(), k, rows, w, 1.0f);
      for (int64_t i = 0; i < rows * n; ++i) REQUIRE(acc[i] == 1.0f + out[i]);
    }
  }
}

TEST_CASE("packed_linear: a row alone, inside a batch, at any thread count: the same bits") {
  // Several blocks of W; 7 rows = one batch of 4 + 3 single rows; k = 128:
  // int8 rows of 4 groups, taken 4 rows of W at a time on AVX3_DL.
  const int64_t n = 300, rows = 7;
  const int before = omp_get_max_threads();
  for (const auto& [f, k] :
       {std::pair{WeightFormat::F32, 344}, std::pair{WeightFormat::BF16, 344},
        std::pair{WeightFormat::Int8, 344}, std::pair{WeightFormat::Int8, 128}}) {
    CAPTURE(weight_format_name(f));
    CAPTURE(k);
    const std::vector<float> x = random_rows(rows, k, 5);
    const PackedMatrix w = PackedMatrix::pack(random_matrix(n, k, 9), f);
    std::vector<float> batch(rows * n);
    omp_set_num_threads(1);
    packed_linear(batch.data(), n, x.data(), k, rows, w, 0.0f);
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      std::vector<float> again(rows * n);
      packed_linear(again.data(), n, x.data(), k, rows, w, 0.0f);
      CHECK(again == batch);
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> one(n);
        packed_linear(one.data(), n, x.data() + r * k, k, 1, w, 0.0f);
        REQUIRE(std::equal(one.begin(), one.end(), batch.begin() + r * n));
      }
    }
  }
  omp_set_num_threads(before);
}

TEST_CASE("the int8 tile layout places every column of a row once") {
  for (int64_t cols : {1, 31, 32, 100, 384, 512, 544, 1000}) {
    CAPTURE(cols);
    const int64_t G = PackedMatrix::groups(cols);
    std::vector<int> seen(G * 32, 0);
    for (int64_t c = 0; c < G * 32; ++c) {
      const int64_t at = int8_tile_offset(c, G);
      REQUIRE(at >= 0);
      REQUIRE(at < G * 32);
      ++seen[at];
    }
    for (int v : seen) REQUIRE(v == 1);
  }
}

TEST_CASE("quantize_rows: within half a step, zero groups, tails, group sums") {
  for (int64_t cols : {1, 7, 32, 33, 100, 384, 545}) {
    CAPTURE(cols);
    const int64_t rows = 3, ldx = cols + 5;  // a row stride wider than the row
    std::vector<float> x = random_rows(rows, ldx, 40 + cols);
    for (int64_t c = 0; c < std::min<int64_t>(cols, 32); ++c) x[ldx + c] = 0.0f;  // a zero group
    QuantizedRows q;
    quantize_rows(x.data(), ldx, rows, cols, q);
    const int64_t G = PackedMatrix::groups(cols);
    REQUIRE(q.groups == G);
    REQUIRE(static_cast<int64_t>(q.tiles.size()) == rows * G * 32);
    CHECK(q.scales[G] == 0.0f);  // row 1, group 0: zeros
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < G; ++g) {
        const float s = q.scales[r * G + g];
        float amax = 0;
        int32_t sum = 0;
        for (int64_t c = g * 32; c < std::min(cols, g * 32 + 32); ++c) {
          amax = std::max(amax, std::abs(x[r * ldx + c]));
          const int8_t v = q.tiles[r * G * 32 + int8_tile_offset(c, G)];
          REQUIRE(v >= -127);
          sum += v;
          REQUIRE(std::abs(static_cast<float>(v) * s - x[r * ldx + c]) <= s * 0.5f * (1 + 1e-5f));
        }
        REQUIRE(s == amax / 127.0f);
        REQUIRE(q.sums[r * G + g] == sum);
        // The padding of a shorter last group stays zero.
        for (int64_t c = cols; c < std::min(G * 32, g * 32 + 32); ++c)
          if (c >= g * 32) REQUIRE(q.tiles[r * G * 32 + int8_tile_offset(c, G)] == 0);
      }
  }
}

TEST_CASE("int8 packed_linear gives the reference's bits on every target this CPU has") {
  std::vector<std::string> paths;
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    const std::string target_name = hwy::TargetName(target);
    CAPTURE(target_name);
    paths.emplace_back(int8_kernel_name());
    MESSAGE(target_name << ": the int8 path " << paths.back());
    // Widths with full blocks of 16 groups, a partial block, partial groups,
    // 4 groups (97 … 128: 4 rows of W per instruction on AVX3_DL, 19 = 4
    // fours and 3 single rows); 6 rows = a batch of 4 + 2 single rows.
    for (int64_t k : {1, 31, 32, 33, 97, 128, 384, 511, 512, 513, 1000, 1376}) {
      CAPTURE(k);
      const int64_t n = 19, rows = 6;
      const PackedMatrix w = PackedMatrix::pack(random_matrix(n, k, 300 + k), WeightFormat::Int8);
      std::vector<float> x = random_rows(rows, k, 400 + k);
      x[3] = 1e4f;  // one large value: its group's scale is large, the others' not
      std::vector<float> out(rows * n);
      packed_linear(out.data(), n, x.data(), k, rows, w, 0.0f);
      QuantizedRows q;
      quantize_rows(x.data(), k, rows, k, q);
      const int64_t G = q.groups;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) {
          const float want =
              int8_dot_reference(w.int8_tiles().data() + j * G * 32, w.int8_scales().data() + j * G,
                                 q.tiles.data() + r * G * 32, q.scales.data() + r * G, G);
          REQUIRE(out[r * n + j] == want);
        }
    }
    // Extreme values: every product at ±127², the exact int32 sum at its largest.
    const int64_t k = 1024;
    const PackedMatrix w =
        PackedMatrix::pack(Tensor::full({2, k}, -1.0, DType::F32), WeightFormat::Int8);
    const std::vector<float> x(k, 1.0f);
    float out[2];
    packed_linear(out, 2, x.data(), k, 1, w, 0.0f);
    CHECK(out[0] == -1024.0f);
    CHECK(out[1] == -1024.0f);
  }
  hwy::SetSupportedTargetsForTest(0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  CHECK(std::ranges::find(paths, "portable") != paths.end());  // the loop the others must match
}

TEST_CASE("stacked and narrowed packed matrices keep their rows") {
  for (WeightFormat f : kFormats) {
    const Tensor a = random_matrix(3, 40, 1), b = random_matrix(5, 40, 2);
    const PackedMatrix s =
        PackedMatrix::stack_rows({PackedMatrix::pack(a, f), PackedMatrix::pack(b, f)});
    CHECK(s.rows() == 8);
    const Tensor u = s.unpack();
    const Tensor ub = PackedMatrix::pack(b, f).unpack();
    const Tensor tail = s.narrow_rows(3, 5).unpack();
    for (int64_t i = 0; i < 5 * 40; ++i) {
      REQUIRE(u.data<float>()[3 * 40 + i] == ub.data<float>()[i]);
      REQUIRE(tail.data<float>()[i] == ub.data<float>()[i]);
    }
  }
}

TEST_CASE("bad packed data and names are refused with a message") {
  const std::vector<int8_t> q(64, 1);
  CHECK_THROWS_WITH_AS(PackedMatrix::from_int8(2, 32, q, std::vector<float>(3, 1.0f)),
                       doctest::Contains("scales"), Error);
  CHECK_THROWS_AS(PackedMatrix::from_int8(2, 32, q, std::vector<float>{1.0f, NAN}), Error);
  CHECK_THROWS_AS(PackedMatrix::from_bf16(2, 3, std::vector<uint16_t>(5)), Error);
  CHECK_THROWS_WITH_AS(parse_weight_format("int4"), doctest::Contains("f32, bf16 or int8"), Error);
  CHECK(parse_weight_format("bf16") == WeightFormat::BF16);
}
