#include "dist/communicator.h"

#include <mpi.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/trace.h"

namespace lathe {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single process"; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void reduce_scatter_sum(const float* in, float* out,
                          const std::vector<std::pair<size_t, size_t>>& r) override {
    if (in != out) std::memcpy(out, in + r[0].first, r[0].second * sizeof(float));
  }
  void allgather(float*, const std::vector<std::pair<size_t, size_t>>&) override {}
  void gather_to(const float* in, float* out, int,
                 const std::vector<std::pair<size_t, size_t>>& r) override {
    std::memcpy(out + r[0].first, in + r[0].first, r[0].second * sizeof(float));
  }
  void allgather_from(const float* send, float* out,
                      const std::vector<std::pair<size_t, size_t>>& r) override {
    std::memcpy(out + r[0].first, send, r[0].second * sizeof(float));
  }
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int) override {
    return std::make_unique<SingleProcess>();
  }
};

// Counts and displacements for the v-collectives (MPI takes int counts: chunk anything
// larger than 2^31 elements per process, which a 70B model's shards are not).
struct Counts {
  std::vector<int> counts, displs;
  explicit Counts(const std::vector<std::pair<size_t, size_t>>& r) {
    for (const auto& [off, n] : r) {
      LATHE_CHECK(n < size_t(1) << 31 && off < size_t(1) << 31,
                  "a shard of more than 2^31 elements: use more processes");
      counts.push_back(int(n));
      displs.push_back(int(off));
    }
  }
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s) : timeout_s_(timeout_s), owns_mpi_(true) {
    int inited = 0;
    MPI_Initialized(&inited);
    // MULTIPLE: gradients and gathers travel on a communication thread while the
    // training thread runs its own collectives (on another communicator).
    int provided = MPI_THREAD_SINGLE;
    if (!inited)
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    else
      MPI_Query_thread(&provided);
    concurrent_ = provided == MPI_THREAD_MULTIPLE;
    comm_ = MPI_COMM_WORLD;
    start();
  }
  // A sub-communicator (split); MPI itself stays owned by the world communicator.
  MpiCommunicator(MPI_Comm comm, double timeout_s, bool concurrent)
      : timeout_s_(timeout_s), owns_mpi_(false), concurrent_(concurrent) {
    comm_ = comm;
    start();
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub;
    check(MPI_Comm_split(comm_, color, key, &sub), "split");
    return std::make_unique<MpiCommunicator>(sub, timeout_s_, concurrent_);
  }
  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    watchdog_.join();
    // Unwinding after an error: finalizing would wait for processes that are waiting for
    // this one; the error handler ends the job instead (end_job_on_error).
    if (std::uncaught_exceptions() > 0) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && probe_ != MPI_COMM_NULL) MPI_Comm_free(&probe_);
    if (!owns_mpi_) {
      if (!finalized) MPI_Comm_free(&comm_);
      return;
    }
    if (!finalized) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "MPI"; }
  bool concurrent() const override { return concurrent_; }

  CommStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);  // a communication thread may be updating them
    return stats_;
  }

  void allreduce_sum(float* data, size_t n) override {
    Guard g(*this, "allreduce", 2.0 * ring_share() * double(n * sizeof(float)));
    for (size_t off = 0; off < n; off += kChunk)
      check(MPI_Allreduce(MPI_IN_PLACE, data + off, int(std::min(kChunk, n - off)), MPI_FLOAT,
                          MPI_SUM, comm_),
            "allreduce");
  }
  void allreduce_sum(double* data, size_t n) override {
    Guard g(*this, "allreduce", 2.0 * ring_share() * double(n * sizeof(double)));
    check(MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, comm_), "allreduce");
  }
  void reduce_scatter_sum(const float* in, float* out,
                          const std::vector<std::pair<size_t, size_t>>& r) override {
    Guard g(*this, "reduce-scatter", ring_share() * double(total(r) * sizeof(float)));
    // One bounded reduce per chunk of each process's range: MPI's own reduce-scatter
    // allocates a temporary as large as the whole gradient, which would cost 4Ψ per process.
    for (int owner = 0; owner < size_; ++owner) {
      const auto [first, count] = r[size_t(owner)];
      for (size_t off = 0; off < count; off += kChunk) {
        const int n = int(std::min(kChunk, count - off));
        float* dst = owner == rank_ ? out + off : nullptr;
        if (owner == rank_ && in + first + off == dst)
          check(MPI_Reduce(MPI_IN_PLACE, dst, n, MPI_FLOAT, MPI_SUM, owner, comm_), "reduce");
        else
          check(MPI_Reduce(in + first + off, dst, n, MPI_FLOAT, MPI_SUM, owner, comm_), "reduce");
      }
    }
  }
  void allgather(float* data, const std::vector<std::pair<size_t, size_t>>& r) override {
    Counts c(r);
    Guard g(*this, "allgather", ring_share() * double(total(r) * sizeof(float)));
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, c.counts.data(), c.displs.data(),
                         MPI_FLOAT, comm_),
          "allgather");
  }
  void allgather_from(const float* send, float* out,
                      const std::vector<std::pair<size_t, size_t>>& r) override {
    Counts c(r);
    Guard g(*this, "allgather", ring_share() * double(total(r) * sizeof(float)));
    check(MPI_Allgatherv(send, c.counts[size_t(rank_)], MPI_FLOAT, out, c.counts.data(),
                         c.displs.data(), MPI_FLOAT, comm_),
          "allgather");
  }
  void gather_to(const float* in, float* out, int root,
                 const std::vector<std::pair<size_t, size_t>>& r) override {
    Counts c(r);
    Guard g(*this, "gather", double(r[size_t(rank_)].second * sizeof(float)));
    const auto& mine = r[size_t(rank_)];
    check(MPI_Gatherv(in + mine.first, int(mine.second), MPI_FLOAT, out, c.counts.data(),
                      c.displs.data(), MPI_FLOAT, root, comm_),
          "gather");
  }
  void broadcast(void* data, size_t bytes, int root) override {
    Guard g(*this, "broadcast", double(bytes));
    check(MPI_Bcast(data, int(bytes), MPI_BYTE, root, comm_), "broadcast");
  }
  void barrier() override {
    Guard g(*this, "barrier", 0);
    check(MPI_Barrier(comm_), "barrier");
  }

 private:
  // Large collectives go in chunks of 4M floats (16 MiB), which bounds the temporaries MPI
  // allocates per call without costing bandwidth.
  static constexpr size_t kChunk = size_t(1) << 22;

  double ring_share() const { return double(size_ - 1) / double(size_); }
  static size_t total(const std::vector<std::pair<size_t, size_t>>& r) {
    size_t n = 0;
    for (const auto& x : r) n += x.second;
    return n;
  }

  void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fail("rank ", rank_, ": MPI ", what, " failed: ", std::string(msg, size_t(len)));
  }

  // Marks a collective in flight so the watchdog can end a job whose peers never arrive.
  struct Guard {
    MpiCommunicator& c;
    TraceScope event;  // a trace event per collective while train.profile_steps records
    Guard(MpiCommunicator& comm, const char* what, double bytes)
        : c(comm), event(what, "collective") {
      if (event.on()) event.args(str_cat("\"bytes\": ", bytes));
      std::lock_guard<std::mutex> lock(c.mu_);
      c.stats_.bytes += bytes;
      c.stats_.calls++;
      c.op_ = what;
      c.started_ = std::chrono::steady_clock::now();
      c.in_flight_ = true;
      ++c.seq_;
      c.cv_.notify_all();
    }
    ~Guard() {
      std::lock_guard<std::mutex> lock(c.mu_);
      c.in_flight_ = false;
      c.stats_.seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - c.started_).count();
    }
  };

  void start() {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    // This communicator's ranks as the job's (world) ranks, for messages.
    MPI_Group mine, world;
    MPI_Comm_group(comm_, &mine);
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    std::vector<int> ranks(size_t(size_), 0);
    for (int i = 0; i < size_; ++i) ranks[size_t(i)] = i;
    world_rank_.assign(size_t(size_), 0);
    MPI_Group_translate_ranks(mine, size_, ranks.data(), world, world_rank_.data());
    MPI_Group_free(&mine);
    MPI_Group_free(&world);
    // The watchdogs talk over a private duplicate, beside the collectives they watch.
    if (concurrent_) {
      MPI_Comm_dup(comm_, &probe_);
      MPI_Comm_set_errhandler(probe_, MPI_ERRORS_RETURN);
    }
    watchdog_ = std::thread([this] { watch(); });
  }

  // Where this process is: in collective #seq for `waited_ms`, or -1 when in none.
  std::array<int64_t, 2> state() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!in_flight_) return {-1, 0};
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started_);
    return {int64_t(seq_), int64_t(ms.count())};
  }

  // Every watchdog answers the others' "where are you?" while its process lives.
  void answer_pings() {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      if (MPI_Iprobe(MPI_ANY_SOURCE, kPing, probe_, &flag, &st) != MPI_SUCCESS || !flag) return;
      int64_t ping = 0;
      MPI_Recv(&ping, 1, MPI_INT64_T, st.MPI_SOURCE, kPing, probe_, MPI_STATUS_IGNORE);
      const std::array<int64_t, 2> s = state();
      MPI_Send(s.data(), 2, MPI_INT64_T, st.MPI_SOURCE, kPong, probe_);
    }
  }

  // After a timeout: asks every other process where it is and names those that did not
  // answer (stopped, crashed, unreachable) or are not in this collective.
  std::string find_culprits(uint64_t seq) {
    std::vector<MPI_Request> sent;
    int64_t ping = int64_t(seq);
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      sent.emplace_back();
      MPI_Isend(&ping, 1, MPI_INT64_T, r, kPing, probe_, &sent.back());
    }
    std::vector<std::array<int64_t, 2>> where(size_t(size_), {-2, 0});
    int answered = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
    while (answered < size_ - 1 && std::chrono::steady_clock::now() < deadline) {
      answer_pings();  // the others may be asking at the same time
      int flag = 0;
      MPI_Status st;
      if (MPI_Iprobe(MPI_ANY_SOURCE, kPong, probe_, &flag, &st) == MPI_SUCCESS && flag) {
        MPI_Recv(where[size_t(st.MPI_SOURCE)].data(), 2, MPI_INT64_T, st.MPI_SOURCE, kPong, probe_,
                 MPI_STATUS_IGNORE);
        ++answered;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (MPI_Request& r : sent) MPI_Request_free(&r);
    std::string silent, elsewhere;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      const int64_t at = where[size_t(r)][0];
      std::string* list = at == -2 ? &silent : at != int64_t(seq) ? &elsewhere : nullptr;
      if (list) *list += (list->empty() ? "" : ", ") + std::to_string(world_rank_[size_t(r)]);
    }
    if (!silent.empty())
      return "rank(s) " + silent +
             " did not answer (stopped, crashed or unreachable: see their logs)";
    if (!elsewhere.empty())
      return "rank(s) " + elsewhere +
             " are alive but not in this collective (still computing, or "
             "in a different one)";
    return "every process is waiting in it (the network or MPI stalls)";
  }

  void watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(250));
      if (stop_) break;
      if (probe_ != MPI_COMM_NULL) {
        lock.unlock();
        answer_pings();
        lock.lock();
      }
      if (!in_flight_) continue;
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
      if (waited < timeout_s_) continue;
      const std::string op = op_;
      const uint64_t seq = seq_;
      lock.unlock();
      const std::string who = probe_ != MPI_COMM_NULL
                                  ? find_culprits(seq)
                                  : "another process stopped or hangs (see its log)";
      std::fprintf(
          stderr,
          "error: rank %d: %s (collective #%llu) did not complete within dist.timeout=%gs: "
          "%s; ending the job\n",
          world_rank_[size_t(rank_)], op.c_str(), static_cast<unsigned long long>(seq), timeout_s_,
          who.c_str());
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
  }

  double timeout_s_;
  bool owns_mpi_;
  bool concurrent_ = false;
  static constexpr int kPing = 1, kPong = 2;
  MPI_Comm comm_ = MPI_COMM_NULL, probe_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<int> world_rank_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, in_flight_ = false;
  const char* op_ = "";
  uint64_t seq_ = 0;
  std::chrono::steady_clock::time_point started_;
  CommStats stats_;
  std::thread watchdog_;
};

}  // namespace

ProcessPlacement discover_placement() {
  ProcessPlacement p;
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) {
    p.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    p.size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    p.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    p.launcher = "mpirun";
  } else if (std::getenv("SLURM_PROCID") && std::getenv("SLURM_NTASKS")) {
    p.rank = env_int("SLURM_PROCID", 0);
    p.size = env_int("SLURM_NTASKS", 1);
    p.local_rank = env_int("SLURM_LOCALID", 0);
    p.launcher = "slurm";
  } else if (std::getenv("WORLD_SIZE") && std::getenv("RANK")) {
    p.rank = env_int("RANK", 0);
    p.size = env_int("WORLD_SIZE", 1);
    p.local_rank = env_int("LOCAL_RANK", 0);
    p.launcher = "torchrun";
  }
  return p;
}

int local_process_count() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "LOCAL_WORLD_SIZE"})
    if (std::getenv(name)) return std::max(1, env_int(name, 1));
  // Slurm: "4" or "4(x2)" per node; the first count is this node's in the common case.
  if (const char* v = std::getenv("SLURM_TASKS_PER_NODE")) return std::max(1, std::atoi(v));
  return 1;
}

std::unique_ptr<Communicator> make_communicator(double timeout_s) {
  const ProcessPlacement p = discover_placement();
  if (p.size <= 1) return std::make_unique<SingleProcess>();
  LATHE_CHECK(p.launcher != "torchrun", "RANK/WORLD_SIZE say this is process ", p.rank, " of ",
              p.size,
              " (torchrun-style), but lathe's processes meet over MPI: start them with "
              "`lathe launch --nproc N -- train ...`, mpirun or srun --mpi=pmix");
  auto c = std::make_unique<MpiCommunicator>(timeout_s);
  LATHE_CHECK(c->size() == p.size, "the launcher says ", p.size, " processes but MPI sees ",
              c->size(), ": is this binary linked against the same MPI as mpirun?");
  return c;
}

void end_job_on_error(const char* what) {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (!inited || finalized) return;
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size <= 1) return;
  std::fprintf(stderr, "error: rank %d of %d: %s\nrank %d is ending the job\n", rank, size, what,
               rank);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

std::vector<std::pair<size_t, size_t>> split_ranges(
    const std::vector<std::pair<size_t, size_t>>& ranges, size_t lo, size_t hi) {
  std::vector<std::pair<size_t, size_t>> out;
  for (const auto& [b, n] : ranges) {
    const size_t s = std::clamp(b, lo, hi), e = std::clamp(b + n, lo, hi);
    out.emplace_back(s - lo, e - s);
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> shard_ranges(size_t n, int world) {
  std::vector<std::pair<size_t, size_t>> r;
  const size_t per = ((n + size_t(world) - 1) / size_t(world) + 15) / 16 * 16;
  for (int i = 0; i < world; ++i) {
    const size_t b = std::min(n, size_t(i) * per), e = std::min(n, b + per);
    r.emplace_back(b, e - b);
  }
  return r;
}

}  // namespace lathe
