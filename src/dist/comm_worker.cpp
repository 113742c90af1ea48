#include "dist/comm_worker.h"

#include <chrono>

#include "core/trace.h"

namespace lathe {

CommWorker::CommWorker(std::unique_ptr<Communicator> comm, bool threaded)
    : comm_(std::move(comm)), threaded_(threaded) {
  if (threaded_) thread_ = std::thread([this] { loop(); });
}

CommWorker::~CommWorker() {
  if (!threaded_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

CommWorker::Ticket CommWorker::submit(std::function<void(Communicator&)> job) {
  if (!threaded_) {
    job(*comm_);
    finished_ = ++submitted_;
    return finished_;
  }
  std::lock_guard<std::mutex> lock(mu_);
  const Ticket t = ++submitted_;
  queue_.emplace_back(t, std::move(job));
  cv_.notify_all();
  return t;
}

bool CommWorker::done(Ticket t) {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_ >= t;
}

void CommWorker::wait(Ticket t) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return finished_ >= t || error_; });
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (error_) std::rethrow_exception(error_);
}

void CommWorker::wait_all() {
  Ticket t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    t = submitted_;
  }
  wait(t);
}

void CommWorker::loop() {
  trace::name_thread("communication");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    auto [ticket, job] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    std::exception_ptr err;
    // After a failed job the rest are dropped, not run: a collective after a failed one
    // would pair with a different call on the other ranks (or wait forever on a dead one),
    // and its buffers may hold what the failed job never finished writing.
    if (!failed_) {
      try {
        job(*comm_);
      } catch (...) {
        err = std::current_exception();
      }
    }
    lock.lock();
    if (err) failed_ = true;
    if (err && !error_) error_ = err;
    finished_ = ticket;
    cv_.notify_all();
  }
}

}  // namespace lathe
