// The communication thread: jobs run in submission order (so collectives match across
// processes), a ticket is done only when its job and all earlier ones are, errors reach
// the waiting thread, and the inline mode gives the same results without a thread.
#include "dist/comm_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/error.h"

namespace lathe {
namespace {

TEST(CommWorker, RunsJobsInOrderAndTicketsCoverEarlierJobs) {
  for (const bool threaded : {true, false}) {
    CommWorker w(make_communicator(60), threaded);
    EXPECT_EQ(w.threaded(), threaded);
    std::vector<int> order(50, -1);
    std::atomic<int> ran{0};
    std::vector<CommWorker::Ticket> tickets;
    for (int i = 0; i < 50; ++i)
      tickets.push_back(w.submit([&order, &ran, i](Communicator& c) {
        EXPECT_EQ(c.size(), 1);
        if (i % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        order[size_t(ran.fetch_add(1))] = i;
      }));
    w.wait(tickets[24]);
    EXPECT_TRUE(w.done(tickets[24]));
    EXPECT_GE(ran.load(), 25);
    w.wait_all();
    ASSERT_EQ(ran.load(), 50);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(order[size_t(i)], i);
  }
}

TEST(CommWorker, AFailedJobIsRethrownToTheWaiterAndLaterJobsAreDropped) {
  std::atomic<int> after{0};  // outlives the worker, whose thread may still be draining
  {
    CommWorker w(make_communicator(60), true);
    w.submit([](Communicator&) { throw Error("rank 0: MPI allreduce failed: test"); });
    const auto t = w.submit([&after](Communicator&) { ++after; });
    try {
      w.wait(t);
      FAIL() << "the error did not reach wait()";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("allreduce failed"), std::string::npos) << e.what();
    }
    EXPECT_THROW(w.wait_all(), Error);
  }  // the destructor drains the queue
  EXPECT_EQ(after.load(), 0) << "a job after the failed one ran";
}

TEST(CommWorker, WaitingTimeIsCounted) {
  CommWorker w(make_communicator(60), true);
  const auto t =
      w.submit([](Communicator&) { std::this_thread::sleep_for(std::chrono::milliseconds(30)); });
  w.wait(t);
  EXPECT_GT(w.wait_seconds(), 0.0);  // blocked for part of the job, however short
  const double before = w.wait_seconds();
  w.wait(t);  // already done
  EXPECT_LT(w.wait_seconds() - before, 0.01);
}

TEST(SplitRanges, PiecesOfARangeAcrossShards) {
  const std::vector<std::pair<size_t, size_t>> shards = {{0, 16}, {16, 16}, {32, 4}};
  const auto p = split_ranges(shards, 10, 34);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0], (std::pair<size_t, size_t>{0, 6}));
  EXPECT_EQ(p[1], (std::pair<size_t, size_t>{6, 16}));
  EXPECT_EQ(p[2], (std::pair<size_t, size_t>{22, 2}));
  const auto none = split_ranges(shards, 16, 32);
  EXPECT_EQ(none[0].second, 0u);
  EXPECT_EQ(none[1], (std::pair<size_t, size_t>{0, 16}));
  EXPECT_EQ(none[2].second, 0u);
}

}  // namespace
}  // namespace lathe
