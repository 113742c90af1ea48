// Collectives on a thread of their own, so that communication overlaps computation: the
// backward hands each layer's gradient over as soon as it is final and goes on with the
// next layer; full_shard gathers the next layer's parameters while this one computes.
// Jobs run one at a time in the order they were submitted, which every process does in
// the same order, so the collectives inside them match up across processes. The worker
// owns its communicator (a duplicate of the job's), so the training thread can still run
// its own collectives on the original meanwhile. On GPUs a NCCL stream takes this role.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "dist/communicator.h"

namespace lathe {

class CommWorker {
 public:
  using Ticket = uint64_t;
  // threaded = false runs every job inside submit() (the same results, no overlap).
  CommWorker(std::unique_ptr<Communicator> comm, bool threaded);
  ~CommWorker();
  CommWorker(const CommWorker&) = delete;
  CommWorker& operator=(const CommWorker&) = delete;

  Communicator& comm() { return *comm_; }
  const Communicator& comm() const { return *comm_; }
  // Queues a job; the returned ticket is done once the job and every earlier one are.
  Ticket submit(std::function<void(Communicator&)> job);
  // Blocks until `t` is done; rethrows the first error a job raised.
  void wait(Ticket t);
  void wait_all();
  bool done(Ticket t);
  bool threaded() const { return threaded_; }
  // Seconds callers spent blocked in wait(): communication that did not overlap.
  double wait_seconds() const { return wait_s_; }

 private:
  void loop();
  std::unique_ptr<Communicator> comm_;
  bool threaded_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Ticket, std::function<void(Communicator&)>>> queue_;
  Ticket submitted_ = 0, finished_ = 0;
  std::exception_ptr error_;
  bool failed_ = false;  // read and written by the worker thread only
  bool stop_ = false;
  double wait_s_ = 0;
  std::thread thread_;
};

}  // namespace lathe
