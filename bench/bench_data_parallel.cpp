// What the canonical gradient sum of data-parallel training costs
// (train/data_parallel.hpp), against MPI's own reductions, for one model's
// parameters. Run under mpirun:
//
//   mpirun -np 2 build/release/bench/bench_data_parallel --preset small --repeats 20
//
// Per step, the median over the repeats, on rank 0:
//   canonical   DataParallel as a training step uses it: reduce_gradients (an
//               all-to-all of each rank's subtree sums, added in the tree
//               order by each shard's owner) + global_grad_norm + gather_weights
//               (all-gather of the updated shards)
//   allreduce   MPI_Allreduce(SUM) of the P gradients: the classic
//               data-parallel step (every rank then updates every weight); its
//               sum order is MPI's, so its bits depend on N
//   rs+ag       MPI_Reduce_scatter_block(SUM) + MPI_Allgather: ZeRO-1 with
//               MPI's reduction
// (each rank's micro-batch gradients are random; no forward or backward).
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "attnlab/models/config.hpp"
#include "attnlab/models/language_model.hpp"
#include "attnlab/train/communicator.hpp"
#include "attnlab/train/data_parallel.hpp"

using namespace attnlab;

namespace {

double seconds_of(const std::function<void()>& f) {
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Data-parallel gradient exchange: the canonical sum against MPI's reductions"};
  std::string preset = "small";
  int repeats = 20;
  int64_t per_rank = 1;
  app.add_option("--preset", preset, "Model preset (baby, small)");
  app.add_option("--repeats", repeats, "Timed steps (median reported)")
      ->check(CLI::Range(1, 10000));
  app.add_option("--micro-batches-per-rank", per_rank, "A/N: micro-batches of each rank")
      ->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);
  try {
    const std::unique_ptr<Communicator> ranks = connect_ranks();
    const int n = ranks->size();
    LanguageModel model(preset_config(preset, 65), DType::F32, 1);
    auto params = model.named_parameters();
    DataParallel parallel(*ranks, params, per_rank * n);
    int64_t total = 0;
    for (const auto& [name, p] : params) total += p.numel();
    Rng rng(static_cast<uint64_t>(ranks->rank()) + 1);
    std::vector<Tensor> grads;
    for (const auto& [name, p] : params) grads.push_back(Tensor::normal(p.shape(), rng));

    std::vector<double> canonical, local, allreduce, rs_ag;
    std::vector<float> buffer(static_cast<size_t>(total), 1.0f);
    const int64_t block = (total + n - 1) / n;
    std::vector<float> padded(static_cast<size_t>(block * n), 1.0f),
        shard(static_cast<size_t>(block));
    for (int r = 0; r < repeats + 2; ++r) {  // the first two warm up
      const double t_local = seconds_of([&] {
        const MicroBatchSpan mine = parallel.micro_batches();
        for (int64_t i = mine.lo; i < mine.hi; ++i) {
          for (size_t k = 0; k < params.size(); ++k) params[k].second.set_grad(grads[k]);
          parallel.add_micro_batch(i);
        }
      });
      const double t_canonical = seconds_of([&] {
        parallel.reduce_gradients();
        parallel.global_grad_norm();
        parallel.gather_weights();
      });
      const double t_allreduce = seconds_of([&] {
        MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(total), MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD);
      });
      const double t_rs_ag = seconds_of([&] {
        MPI_Reduce_scatter_block(padded.data(), shard.data(), static_cast<int>(block), MPI_FLOAT,
                                 MPI_SUM, MPI_COMM_WORLD);
        MPI_Allgather(shard.data(), static_cast<int>(block), MPI_FLOAT, padded.data(),
                      static_cast<int>(block), MPI_FLOAT, MPI_COMM_WORLD);
      });
      if (r < 2) continue;
      local.push_back(t_local);
      canonical.push_back(t_canonical);
      allreduce.push_back(t_allreduce);
      rs_ag.push_back(t_rs_ag);
    }
    if (ranks->is_root()) {
      std::printf(
          "%s: P = %lld parameters (%.1f MB of f32 gradients), %d ranks, %lld micro-batches each\n",
          preset.c_str(), static_cast<long long>(total), 4e-6 * static_cast<double>(total), n,
          static_cast<long long>(per_rank));
      std::printf("  local tree sum (copy + add)        %8.2f ms\n", 1e3 * median(local));
      std::printf("  canonical: reduce + norm + gather  %8.2f ms\n", 1e3 * median(canonical));
      std::printf("  MPI_Allreduce                      %8.2f ms\n", 1e3 * median(allreduce));
      std::printf("  MPI_Reduce_scatter + MPI_Allgather %8.2f ms\n", 1e3 * median(rs_ag));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data_parallel: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
