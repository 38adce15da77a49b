// The Communicator over MPI_COMM_WORLD (compiled only when CMake found MPI,
// option ATTNLAB_MPI). Bytes move as MPI_BYTE with the *v collectives, so
// ranks may hold parts of different sizes; MPI counts are ints, so one
// rank's part of one collective is refused past 2 GiB.
//
// A rank that dies (killed, or crashed) is noticed by mpirun, not here: the
// others would wait in their next collective, and mpirun ends them all and
// says which rank died. A rank that meets an error alone calls abort()
// (MPI_Abort), which does the same at once.
#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <vector>

#include "attnlab/train/communicator.hpp"

namespace attnlab {
namespace {

std::vector<int> to_int_counts(std::span<const int64_t> bytes, std::vector<int>* displacements) {
  std::vector<int> counts;
  int64_t at = 0;
  for (int64_t b : bytes) {
    ATTN_CHECK(b >= 0 && b <= INT_MAX && at <= INT_MAX,
               "MPI: a part of {} bytes at offset {} is past MPI's 2 GiB count limit", b, at);
    counts.push_back(static_cast<int>(b));
    if (displacements) displacements->push_back(static_cast<int>(at));
    at += b;
  }
  return counts;
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw Error(fmt::format("{} failed: {}", what, std::string(text, static_cast<size_t>(length))));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    // Only the main thread calls MPI (OpenMP threads compute between calls).
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // Errors come back as codes (turned into Errors), not as MPI's own abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  ~MpiCommunicator() override { MPI_Finalize(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler
  }

 protected:
  void do_all_to_all(const void* send, std::span<const int64_t> send_bytes, void* recv,
                     std::span<const int64_t> recv_bytes) override {
    std::vector<int> send_at, recv_at;
    const std::vector<int> send_counts = to_int_counts(send_bytes, &send_at);
    const std::vector<int> recv_counts = to_int_counts(recv_bytes, &recv_at);
    check(MPI_Alltoallv(send, send_counts.data(), send_at.data(), MPI_BYTE, recv,
                        recv_counts.data(), recv_at.data(), MPI_BYTE, MPI_COMM_WORLD),
          "MPI_Alltoallv");
  }
  void do_all_gather(void* buffer, std::span<const int64_t> bytes) override {
    std::vector<int> at;
    const std::vector<int> counts = to_int_counts(bytes, &at);
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_BYTE, buffer, counts.data(), at.data(), MPI_BYTE,
                         MPI_COMM_WORLD),
          "MPI_Allgatherv");
  }
  void do_gather_to_root(void* buffer, std::span<const int64_t> bytes) override {
    std::vector<int> at;
    const std::vector<int> counts = to_int_counts(bytes, &at);
    char* mine = static_cast<char*>(buffer) + at[static_cast<size_t>(rank_)];
    const int rc = rank_ == 0 ? MPI_Gatherv(MPI_IN_PLACE, 0, MPI_BYTE, buffer, counts.data(),
                                            at.data(), MPI_BYTE, 0, MPI_COMM_WORLD)
                              : MPI_Gatherv(mine, counts[static_cast<size_t>(rank_)], MPI_BYTE,
                                            nullptr, nullptr, nullptr, MPI_BYTE, 0, MPI_COMM_WORLD);
    check(rc, "MPI_Gatherv");
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

}  // namespace attnlab
