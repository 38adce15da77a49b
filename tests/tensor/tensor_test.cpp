// Tensor: shapes, views without copies, creation, printing, errors.
#include <doctest/doctest.h>

#include <vector>

#include "attnlab/tensor/tensor.hpp"

using namespace attnlab;

TEST_CASE("views share storage and copy nothing") {
  Tensor t = Tensor::arange(24).view({2, 3, 4});
  Tensor p = t.permute({2, 0, 1});
  CHECK(p.same_storage(t));
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(!p.is_contiguous());
  CHECK(p.at({3, 1, 2}) == t.at({1, 2, 3}));
  Tensor n = t.narrow(2, 1, 2);
  CHECK(n.same_storage(t));
  CHECK(n.at({1, 2, 1}) == 22);
  Tensor s = t.select(1, 2);
  CHECK(s.shape() == Shape{2, 4});
  CHECK(s.at({1, 3}) == 23);
  Tensor c = p.contiguous();
  CHECK(!c.same_storage(t));
  CHECK(c.is_contiguous());
  CHECK(c.to_vector() == p.to_vector());
  CHECK(t.contiguous().same_storage(t));
}

TEST_CASE("expand gives stride 0 and broadcasts on copy") {
  Tensor row = Tensor::from_data({1, 3}, {1, 2, 3});
  Tensor e = row.expand({4, 3});
  CHECK(e.strides() == Shape{0, 1});
  CHECK(e.at({3, 2}) == 3);
  Tensor dst = Tensor::zeros({2, 3});
  dst.copy_(row);
  CHECK(dst.to_vector() == std::vector<double>{1, 2, 3, 1, 2, 3});
  CHECK_THROWS_WITH_AS(row.expand({2, 4}), "cannot expand shape [1, 3] to [2, 4]", Error);
}

TEST_CASE("view and reshape") {
  Tensor t = Tensor::arange(12, DType::F64);
  CHECK(t.view({3, -1}).shape() == Shape{3, 4});
  CHECK_THROWS_WITH_AS(t.view({5, -1}), "cannot view shape [12] as [5, -1]", Error);
  Tensor tt = t.view({3, 4}).transpose(0, 1);
  CHECK_THROWS_AS(tt.view({12}), Error);
  Tensor r = tt.reshape({12});
  CHECK(r.at({1}) == 4);
  CHECK(t.view({1, 12}).squeeze(0).shape() == Shape{12});
  CHECK(t.unsqueeze(1).shape() == Shape{12, 1});
}

TEST_CASE("creation and dtype conversion") {
  CHECK(Tensor::zeros({2, 2}).to_vector() == std::vector<double>(4, 0.0));
  CHECK(Tensor::full({3}, 2.5, DType::F64).to_vector() == std::vector<double>(3, 2.5));
  CHECK(Tensor::scalar(7).dim() == 0);
  CHECK(Tensor::scalar(7).item() == 7);
  Tensor f = Tensor::from_data({2}, {0.1, 0.2}, DType::F64).to(DType::F32);
  CHECK(f.dtype() == DType::F32);
  CHECK(f.at({1}) == doctest::Approx(0.2).epsilon(1e-7));
  CHECK_THROWS_WITH_AS(f.data<double>(), "tensor holds f32, not f64", Error);
}

TEST_CASE("seeded random creation is reproducible") {
  Rng a(42), b(42), c(43);
  Tensor x = Tensor::normal({1000}, a), y = Tensor::normal({1000}, b),
         z = Tensor::normal({1000}, c);
  CHECK(x.to_vector() == y.to_vector());
  CHECK(x.to_vector() != z.to_vector());
  double s = 0, s2 = 0;
  for (double v : x.to_vector()) s += v, s2 += v * v;
  CHECK(s / 1000 == doctest::Approx(0).epsilon(0.1));
  CHECK(s2 / 1000 == doctest::Approx(1).epsilon(0.15));
  Rng r(1);
  Tensor u = Tensor::uniform({1000}, r, -2, 3);
  for (double v : u.to_vector()) CHECK((v >= -2 && v < 3));
}

TEST_CASE("printing is readable") {
  Tensor t = Tensor::from_data({2, 2}, {1, 2, 3, 4.5});
  CHECK(t.str() == "[[1, 2],\n [3, 4.5]] (f32 [2, 2])");
  CHECK(Tensor::arange(10).str(4) == "[0, 1, ..., 8, 9] (f32 [10])");
}

TEST_CASE("errors name both shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  CHECK_THROWS_WITH_AS(check_same_shape(a, b, "add"), "add: shapes [2, 3] and [3, 2] differ",
                       Error);
  CHECK_THROWS_WITH_AS(broadcast_shapes({2, 3}, {4, 3}),
                       "shapes [2, 3] and [4, 3] do not broadcast", Error);
  CHECK(broadcast_shapes({2, 1, 3}, {4, 1}) == Shape{2, 4, 3});
  CHECK_THROWS_WITH_AS(a.narrow(1, 2, 2),
                       "narrow [2, 4) is out of range for axis 1 of shape [2, 3]", Error);
}

TEST_CASE("storage pool reuses freed buffers") {
  { Tensor warm = Tensor::empty({1234}); }
  const PoolStats before = storage_pool_stats();
  { Tensor again = Tensor::empty({1234}); }
  const PoolStats after = storage_pool_stats();
  CHECK(after.system_allocations == before.system_allocations);
  CHECK(after.reuses == before.reuses + 1);
}

TEST_CASE("storage pool: nearby sizes share a buffer, and the cache is bounded") {
  // Like a MoE expert's activations: a slightly different size every step.
  { Tensor warm = Tensor::empty({100000}); }
  const PoolStats before = storage_pool_stats();
  for (int64_t step = 0; step < 200; ++step) {
    Tensor t = Tensor::empty({100000 - 7 * step});  // all within one size class
  }
  CHECK(storage_pool_stats().system_allocations == before.system_allocations);

  // Above the limit, the oldest buffers go back to the system.
  const size_t old_limit = storage_pool_limit();
  storage_pool_set_limit(size_t{8} << 20);
  {
    std::vector<Tensor> many;
    for (int64_t i = 0; i < 64; ++i) many.push_back(Tensor::empty({(1 << 16) + 4096 * i}));
  }  // 64 buffers of 256 KiB and more, ~24 MiB in all, come back at once
  CHECK(storage_pool_stats().cached_bytes <= (size_t{8} << 20));
  CHECK(storage_pool_stats().evictions > before.evictions);
  storage_pool_set_limit(0);
  CHECK(storage_pool_limit() >= old_limit);  // automatic again
}

// copy_ splits the merged rows of both views among threads; each layout must
// land element for element where the logical order says (to_vector reads
// through its own per-element path). The sizes are above the threading
// threshold.
TEST_CASE("copy_ between any two layouts, dtypes, broadcasts and aliasing views") {
  Rng rng(5);
  const Tensor base = Tensor::normal({3, 100, 130}, rng);
  const std::vector<double> want_perm = base.permute({2, 0, 1}).to_vector();
  SUBCASE("strided source into a contiguous tensor") {
    Tensor dst = Tensor::empty({130, 3, 100});
    dst.copy_(base.permute({2, 0, 1}));
    CHECK(dst.to_vector() == want_perm);
  }
  SUBCASE("contiguous source into a strided view") {
    Tensor store = Tensor::zeros({3, 100, 130});
    Tensor view = store.permute({2, 0, 1});
    view.copy_(base.permute({2, 0, 1}).contiguous());
    CHECK(store.to_vector() == base.to_vector());
  }
  SUBCASE("narrowed source and destination, f32 to f64") {
    Tensor wide = Tensor::zeros({3, 100, 200}, DType::F64);
    Tensor dst = wide.narrow(2, 50, 130);
    dst.copy_(base);
    CHECK(dst.dtype() == DType::F64);
    CHECK(dst.to_vector() == base.to_vector());
    CHECK(wide.narrow(2, 0, 50).to_vector() == std::vector<double>(3 * 100 * 50, 0.0));
  }
  SUBCASE("a broadcast source") {
    const Tensor row = base.select(0, 1).select(0, 7);  // [130]
    Tensor dst = Tensor::empty({300, 130});
    dst.copy_(row);
    const std::vector<double> r = row.to_vector(), got = dst.to_vector();
    for (int64_t i = 0; i < 300; ++i)
      CHECK(std::vector<double>(got.begin() + i * 130, got.begin() + (i + 1) * 130) == r);
  }
  SUBCASE("a source that is a view of the destination") {
    Tensor sq = Tensor::normal({200, 200}, rng);
    const std::vector<double> want = sq.transpose(0, 1).to_vector();
    sq.copy_(sq.transpose(0, 1));
    CHECK(sq.to_vector() == want);
  }
}
