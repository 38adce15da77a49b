// The processes (ranks) of a data-parallel run, as train/ needs them: who am
// I, how many are we, and three collectives that only move bytes. No
// collective here adds anything: ranks exchange the pieces and add them
// themselves in the canonical order (canonical_sum.hpp, data_parallel.hpp),
// so no result depends on the number of ranks or on how an MPI library
// chooses to reduce.
//
// Two implementations: SingleProcess (one rank, the collectives are copies)
// and, in a build with MPI (CMake option ATTNLAB_MPI), one over
// MPI_COMM_WORLD, made by connect_ranks() when the process was started by
// mpirun.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "attnlab/tensor/error.hpp"

namespace attnlab {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }

  // Rank r sends send_bytes[s] bytes to rank s (send holds them in rank
  // order) and receives recv_bytes[s] bytes from rank s into recv (in rank
  // order).
  void all_to_all(const void* send, std::span<const int64_t> send_bytes, void* recv,
                  std::span<const int64_t> recv_bytes);
  // In place: rank r's bytes[r] bytes sit in buffer at the offset of
  // bytes[0 .. r); afterwards every rank holds every rank's part.
  void all_gather(void* buffer, std::span<const int64_t> bytes);
  // The same, but only rank 0 receives the others' parts.
  void gather_to_root(void* buffer, std::span<const int64_t> bytes);

  // Wall time spent in the collectives above since the last call (what a
  // step spent communicating, waiting for the slowest rank included).
  double take_seconds_communicating();

  // Ends every rank of the job at once, with this exit code (MPI_Abort), for
  // an error that only this rank has met: the others would wait for it
  // forever. SingleProcess ends this process.
  [[noreturn]] virtual void abort(int exit_code) = 0;

 protected:
  virtual void do_all_to_all(const void* send, std::span<const int64_t> send_bytes, void* recv,
                             std::span<const int64_t> recv_bytes) = 0;
  virtual void do_all_gather(void* buffer, std::span<const int64_t> bytes) = 0;
  virtual void do_gather_to_root(void* buffer, std::span<const int64_t> bytes) = 0;

 private:
  double seconds_ = 0;
};

// One process alone: rank 0 of 1.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  [[noreturn]] void abort(int exit_code) override;

 protected:
  void do_all_to_all(const void* send, std::span<const int64_t> send_bytes, void* recv,
                     std::span<const int64_t> recv_bytes) override;
  void do_all_gather(void*, std::span<const int64_t>) override {}
  void do_gather_to_root(void*, std::span<const int64_t>) override {}
};

// The number of processes mpirun (or another MPI launcher) started this one
// among, from its environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE); 0 when it
// was not started by one.
int launched_ranks();

// True when this build can train on several ranks (built with MPI).
bool built_with_mpi();

// The ranks this process belongs to: MPI's world when started by mpirun with
// MPI built in (this initializes MPI; the object finalizes it), else
// SingleProcess. A build without MPI started as one of several ranks is
// refused with an Error that says so.
std::unique_ptr<Communicator> connect_ranks();

// An error that every rank raises at the same point, with the same message
// (a check whose inputs every rank has, such as the step's loss): rank 0
// reports it, the others end quietly, and nobody needs to abort anybody.
class ErrorOnEveryRank : public Error {
 public:
  ErrorOnEveryRank(const std::string& message, bool report) : Error(message), report_(report) {}
  bool report() const { return report_; }

 private:
  bool report_;
};

// Throws ErrorOnEveryRank(message), reported by rank 0 only.
[[noreturn]] void fail_on_every_rank(const Communicator& ranks, const std::string& message);

}  // namespace attnlab
