// Collectives between the processes of a data-parallel job. MPI (OpenMPI: mpirun, srun)
// on CPUs; a NCCL implementation takes the same interface on GPUs. A single process gets
// the same code path with a communicator whose collectives are no-ops.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lathe {

// Traffic of this process so far: bytes it sends under the standard algorithms (ring
// all-reduce 2(N-1)/N·B, reduce-scatter and all-gather (N-1)/N·B each), and the seconds
// spent inside collectives (waiting for the others included).
struct CommStats {
  double bytes = 0, seconds = 0;
  int64_t calls = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;

  // In place, summed over processes.
  virtual void allreduce_sum(float* data, size_t n) = 0;
  virtual void allreduce_sum(double* data, size_t n) = 0;
  // in: the whole buffer on every process; out: this process's range of the sum.
  // ranges[r] = {offset, count} of process r, contiguous and covering the buffer.
  virtual void reduce_scatter_sum(const float* in, float* out,
                                  const std::vector<std::pair<size_t, size_t>>& ranges) = 0;
  // In place: each process contributes its range of `data`, everyone ends with all of it.
  virtual void allgather(float* data, const std::vector<std::pair<size_t, size_t>>& ranges) = 0;
  // Each process sends ranges[own].second values from `send`; every process receives all
  // of them into out[ranges[r].first ...] (full_shard gathering a layer).
  virtual void allgather_from(const float* send, float* out,
                              const std::vector<std::pair<size_t, size_t>>& ranges) = 0;
  // Process r's range of its local buffer `in` → the whole buffer on `root` (others: null).
  virtual void gather_to(const float* in, float* out, int root,
                         const std::vector<std::pair<size_t, size_t>>& ranges) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  virtual CommStats stats() const { return {}; }
  // Whether collectives may run on this communicator from one thread while another
  // thread runs them on a different one (MPI_THREAD_MULTIPLE).
  virtual bool concurrent() const { return false; }
  // The processes with the same color, ranked by key (MPI_Comm_split); a collective.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

// Where this process sits in the job, from its launcher's environment: OpenMPI
// (OMPI_COMM_WORLD_*), Slurm (SLURM_PROCID / SLURM_NTASKS), or torchrun-style (RANK /
// WORLD_SIZE). launcher is "mpirun", "slurm", "torchrun" or "" (a single process).
struct ProcessPlacement {
  int rank = 0, size = 1, local_rank = 0;
  std::string launcher;
};
ProcessPlacement discover_placement();
// Processes of this job on this machine (OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_TASKS_PER_NODE
// or LOCAL_WORLD_SIZE), 1 when unknown.
int local_process_count();

// The job's communicator: MPI when the launcher started several processes, otherwise a
// single-process one. A collective that has not completed after timeout_s seconds ends
// the job with an error naming it.
std::unique_ptr<Communicator> make_communicator(double timeout_s);

// After an error on this process of a multi-process job: prints it with this process's
// rank and ends every process of the job (MPI_Abort), so none waits for this one until
// dist.timeout. Returns (doing nothing) in a single process.
void end_job_on_error(const char* what);

// The parts of [lo, hi) that fall in each of `ranges`, as {offset from lo, count}: the
// ranges argument of a collective on that piece of a sharded buffer.
std::vector<std::pair<size_t, size_t>> split_ranges(
    const std::vector<std::pair<size_t, size_t>>& ranges, size_t lo, size_t hi);

// Where a process's piece of [lo, hi) (split_ranges' {offset from lo, count}) lands in its
// shard buffer, which holds the flat range from shard_begin. A process that owns none of
// [lo, hi) receives nothing, and gets the buffer itself: lo + offset - shard_begin would
// wrap below it.
template <class T>
T* piece_in_shard(T* shard, size_t shard_begin, size_t lo, std::pair<size_t, size_t> piece) {
  return piece.second == 0 ? shard : shard + (lo + piece.first - shard_begin);
}

// Contiguous shard ranges of n elements over `world` processes, each a multiple of 16
// elements (64 bytes) except the last.
std::vector<std::pair<size_t, size_t>> shard_ranges(size_t n, int world);

}  // namespace lathe
