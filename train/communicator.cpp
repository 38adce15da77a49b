#include "attnlab/train/communicator.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>

namespace attnlab {
namespace {

// One rank's timer over one collective.
class CommunicationTimer {
 public:
  explicit CommunicationTimer(double& total) : total_(total) {}
  ~CommunicationTimer() {
    total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

#if ATTNLAB_HAVE_MPI
std::unique_ptr<Communicator> make_mpi_communicator();  // mpi_communicator.cpp
#endif

void Communicator::all_to_all(const void* send, std::span<const int64_t> send_bytes, void* recv,
                              std::span<const int64_t> recv_bytes) {
  ATTN_CHECK(static_cast<int>(send_bytes.size()) == size() &&
                 static_cast<int>(recv_bytes.size()) == size(),
             "all_to_all: {} and {} counts for {} ranks", send_bytes.size(), recv_bytes.size(),
             size());
  CommunicationTimer timer(seconds_);
  do_all_to_all(send, send_bytes, recv, recv_bytes);
}

void Communicator::all_gather(void* buffer, std::span<const int64_t> bytes) {
  ATTN_CHECK(static_cast<int>(bytes.size()) == size(), "all_gather: {} counts for {} ranks",
             bytes.size(), size());
  CommunicationTimer timer(seconds_);
  do_all_gather(buffer, bytes);
}

void Communicator::gather_to_root(void* buffer, std::span<const int64_t> bytes) {
  ATTN_CHECK(static_cast<int>(bytes.size()) == size(), "gather_to_root: {} counts for {} ranks",
             bytes.size(), size());
  CommunicationTimer timer(seconds_);
  do_gather_to_root(buffer, bytes);
}

double Communicator::take_seconds_communicating() {
  const double s = seconds_;
  seconds_ = 0;
  return s;
}

void SingleProcess::abort(int exit_code) {
  std::exit(exit_code);
}

void SingleProcess::do_all_to_all(const void* send, std::span<const int64_t> send_bytes, void* recv,
                                  std::span<const int64_t> recv_bytes) {
  ATTN_CHECK(send_bytes[0] == recv_bytes[0], "all_to_all: sends {} bytes to itself, expects {}",
             send_bytes[0], recv_bytes[0]);
  if (send_bytes[0] > 0) std::memcpy(recv, send, static_cast<size_t>(send_bytes[0]));
}

int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    const char* v = std::getenv(name);
    if (v && *v) return std::atoi(v);
  }
  return 0;
}

bool built_with_mpi() {
#if ATTNLAB_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> connect_ranks() {
  const int launched = launched_ranks();
#if ATTNLAB_HAVE_MPI
  if (launched > 0) return make_mpi_communicator();
#else
  ATTN_CHECK(launched <= 1,
             "this attnlab was built without MPI (CMake option ATTNLAB_MPI=OFF, or no "
             "libopenmpi-dev when it was configured): it cannot train as one of the {} "
             "processes mpirun started; rebuild it with MPI (scripts/install-deps.sh installs "
             "OpenMPI), or run it without mpirun",
             launched);
#endif
  return std::make_unique<SingleProcess>();
}

void fail_on_every_rank(const Communicator& ranks, const std::string& message) {
  throw ErrorOnEveryRank(message, ranks.is_root());
}

}  // namespace attnlab
