// Data parallel through mpirun and the real binary: for each strategy, 4 processes with
// micro-batch 1 must give the losses and final weights of 1 process with micro-batch 4
// (fp32, 1e-5 relative); a checkpoint written by 4 processes resumes on 2 and continues
// the uninterrupted run; LoRA adapters train the same way; a killed process ends the job
// with a message naming it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "io/safetensors.h"
#include "model/golden.h"
#include "support/command.h"

namespace fs = std::filesystem;

namespace lathe {
namespace {

struct Shell {
  int status;
  std::string output;
};

Shell sh(const std::string& cmd) {
  const testing::CommandResult r = testing::run_command(cmd + " 2>&1");
  return {r.status, r.out};
}

std::string mpirun(int np) {
  std::string cmd =
      "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE mpirun --oversubscribe --bind-to none -np " +
      std::to_string(np) + " ";
  if (geteuid() == 0) cmd += "--allow-run-as-root ";
  return cmd;
}

bool have_mpirun() { return sh("command -v mpirun").status == 0; }

std::string common_args(const std::string& extra = "") {
  const std::string g = testing::golden_dir("gqa_untied");
  return " train /dev/null model.path=" + g + "/model data.train=" + g +
         "/train/data.jsonl data.seq_len=24 data.shuffle=true train.precision=fp32 train.lr=2e-3 "
         "train.weight_decay=0.1 train.betas=[0.9,0.95] train.warmup_steps=3 train.max_steps=10 "
         "train.grad_clip=0.5 train.grad_accum=2 train.threads=1 output.save_dtype=fp32 " +
         extra;
}

std::vector<double> losses(const std::string& dir) {
  std::vector<double> out;
  std::ifstream f(dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"]);
  }
  return out;
}

double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]) / std::fabs(b[i]));
  return worst;
}

double weights_rel(const std::string& a, const std::string& b) {
  SafetensorsModel x(a), y(b);
  double worst = 0;
  for (const std::string& name : y.names()) {
    const TensorInfo& p = x.get(name);
    const TensorInfo& q = y.get(name);
    worst =
        std::max(worst, testing::rel_error(static_cast<const float*>(p.data),
                                           static_cast<const float*>(q.data), size_t(q.numel())));
  }
  return worst;
}

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_mpirun()) GTEST_SKIP() << "mpirun not found (scripts/setup.sh installs openmpi-bin)";
  }
};

TEST_F(DataParallel, EachStrategyMatchesOneProcessWithTheWholeBatch) {
  const std::string dir = testing::temp_dir("dp_equiv");
  const std::string lathe = LATHE_BINARY;
  Shell one = sh("OMP_WAIT_POLICY=PASSIVE " + lathe +
                 common_args("train.batch_size=4 output.dir=" + dir + "/one"));
  ASSERT_EQ(one.status, 0) << one.output;
  const std::vector<double> want = losses(dir + "/one");
  ASSERT_EQ(want.size(), 10u);
  for (const char* strategy :
       {"no_shard", "zero1", "shard_grad_op", "full_shard", "hybrid_shard"}) {
    const std::string out = dir + "/" + strategy;
    Shell r =
        sh(mpirun(4) + lathe +
           common_args(std::string("train.batch_size=1 dist.shard_group_size=2 dist.strategy=") +
                       strategy + " output.dir=" + out));
    ASSERT_EQ(r.status, 0) << strategy << "\n" << r.output;
    const std::vector<double> got = losses(out);
    ASSERT_EQ(got.size(), want.size()) << strategy;
    const double loss_err = max_rel(got, want);
    const double w_err = weights_rel(out + "/final", dir + "/one/final");
    EXPECT_LT(loss_err, 1e-5) << strategy;
    // The weights after the last update: four partial sums reduced over processes round
    // differently from one batch's sum, and AdamW divides each gradient element by its own
    // running RMS, so an element whose gradient is near zero (a rare token's embedding row)
    // turns a last-bit difference into up to lr = 2e-3 of movement. Measured, as max |a-b|
    // over max |b| per tensor: 0.9e-5 and 2.3e-5 with two builds of the attention kernel,
    // 5.0e-5 under ASan; the losses above agree to 1e-8.
    EXPECT_LT(w_err, 1e-4) << strategy;
    std::printf(
        "[ reached  ] %s, 4 processes x micro-batch 1 vs 1 x 4: losses %.1e, final weights %.1e\n",
        strategy, loss_err, w_err);
  }
}

TEST_F(DataParallel, FourProcessCheckpointResumesOnTwo) {
  for (const std::string strategy : {"shard_grad_op", "full_shard", "hybrid_shard"}) {
    const std::string dir = testing::temp_dir("dp_elastic_" + strategy);
    const std::string lathe = LATHE_BINARY;
    const std::string args =
        "dist.strategy=" + strategy + " dist.shard_group_size=2 output.save_every=5 ";
    Shell full = sh(mpirun(4) + lathe +
                    common_args(args + "train.batch_size=1 output.dir=" + dir + "/full"));
    ASSERT_EQ(full.status, 0) << full.output;
    // The same run stopped after step 5: its step-5 checkpoint, without the later one.
    fs::copy(dir + "/full", dir + "/split", fs::copy_options::recursive);
    fs::remove_all(dir + "/split/checkpoints/step_00000010");
    ASSERT_TRUE(fs::exists(dir + "/split/checkpoints/step_00000005"));
    // Continue with 2 processes of micro-batch 2 (the same 4 rows per micro-step).
    Shell second =
        sh(mpirun(2) + lathe +
           common_args(args + "train.batch_size=2 train.resume=true output.dir=" + dir + "/split"));
    ASSERT_EQ(second.status, 0) << second.output;
    EXPECT_NE(second.output.find("resumed from"), std::string::npos) << second.output;
    // metrics.jsonl of the split run: the copied log was cut back to the checkpoint's step 5
    // before the resume logged 6..10, so each step is there once.
    const std::vector<double> a = losses(dir + "/full"), b = losses(dir + "/split");
    ASSERT_EQ(b.size(), 10u);
    const std::vector<double> tail_a(a.end() - 5, a.end()), tail_b(b.end() - 5, b.end());
    const double err = max_rel(tail_b, tail_a);
    EXPECT_LT(err, 1e-5) << strategy;
    EXPECT_LT(weights_rel(dir + "/split/final", dir + "/full/final"), 1e-5) << strategy;
    std::printf("[ reached  ] %s, resume 4 -> 2 processes: losses of steps 6-10 rel error %.1e\n",
                strategy.c_str(), err);
  }
}

TEST_F(DataParallel, OverlappedCommunicationGivesTheSameBitsAsInline) {
  // The communication thread runs the same collectives in the same order as the inline
  // path; only when they run changes, so the losses and weights are identical.
  const std::string dir = testing::temp_dir("dp_overlap");
  const std::string lathe = LATHE_BINARY;
  for (const char* strategy : {"no_shard", "shard_grad_op", "full_shard", "hybrid_shard"}) {
    std::vector<double> runs[2];
    const bool hybrid = std::string(strategy) == "hybrid_shard";  // 2 groups of 2
    for (const bool overlap : {true, false}) {
      const std::string out = dir + "/" + strategy + (overlap ? "_on" : "_off");
      Shell r =
          sh(mpirun(hybrid ? 4 : 2) + lathe +
             common_args(std::string("train.batch_size=") + (hybrid ? "1" : "2") +
                         " dist.shard_group_size=2 train.precision=bf16 dist.strategy=" + strategy +
                         " dist.overlap=" + (overlap ? "true" : "false") + " output.dir=" + out));
      ASSERT_EQ(r.status, 0) << strategy << "\n" << r.output;
      runs[overlap] = losses(out);
      // Overlapped runs report the communication thread's time next to the waiting time.
      std::ifstream f(out + "/metrics.jsonl");
      std::string first;
      std::getline(f, first);
      EXPECT_EQ(first.find("comm_thread_s") != std::string::npos, overlap) << first;
    }
    ASSERT_EQ(runs[0].size(), 10u);
    EXPECT_EQ(runs[0], runs[1]) << strategy;
    EXPECT_EQ(weights_rel(dir + "/" + strategy + "_on/final", dir + "/" + strategy + "_off/final"),
              0.0)
        << strategy;
  }
}

TEST_F(DataParallel, FullShardBf16WithCheckpointingMatchesOneProcess) {
  const std::string dir = testing::temp_dir("dp_fs_bf16");
  const std::string lathe = LATHE_BINARY;
  const std::string args = "train.precision=bf16 train.activation_checkpointing=true ";
  Shell one = sh("OMP_WAIT_POLICY=PASSIVE " + lathe +
                 common_args(args + "train.batch_size=4 output.dir=" + dir + "/one"));
  ASSERT_EQ(one.status, 0) << one.output;
  Shell four = sh(mpirun(4) + lathe +
                  common_args(args +
                              "train.batch_size=1 dist.strategy=full_shard "
                              "output.dir=" +
                              dir + "/four"));
  ASSERT_EQ(four.status, 0) << four.output;
  const double err = max_rel(losses(dir + "/four"), losses(dir + "/one"));
  // The two sum the batch in different orders. bf16 rounds every product operand,
  // gradients included (as autocast does), so an order-level difference (1e-7) now and
  // then moves one element by a bf16 step (4e-3): the losses part by about 1e-5, not 1e-7.
  EXPECT_LT(err, 5e-5);
  std::printf(
      "[ reached  ] full_shard, bf16, activation checkpointing, 4 x 1 vs 1 x 4: losses %.1e\n",
      err);
}

TEST_F(DataParallel, ASaveCutShortLeavesThePreviousCheckpointToResumeFrom) {
  const std::string dir = testing::temp_dir("dp_cut_save");
  const std::string lathe = LATHE_BINARY;
  const std::string args = "train.batch_size=1 dist.strategy=zero1 output.save_every=5 ";
  Shell full = sh(mpirun(2) + lathe + common_args(args + "output.dir=" + dir + "/full"));
  ASSERT_EQ(full.status, 0) << full.output;
  // What a process killed while writing step 10 leaves behind: the step-5 checkpoint and a
  // half-written step_00000010.tmp (its state file cut off mid-tensor).
  fs::copy(dir + "/full", dir + "/cut", fs::copy_options::recursive);
  fs::remove_all(dir + "/cut/checkpoints/step_00000010");
  fs::remove_all(dir + "/cut/final");
  fs::create_directories(dir + "/cut/checkpoints/step_00000010.tmp");
  {
    // Each process writes its own shard file; one of them was cut off, and the manifest
    // (written last) never came.
    const std::string shard = "state-rank00001-of-00002.safetensors";
    ASSERT_TRUE(fs::exists(dir + "/full/checkpoints/step_00000010/" + shard));
    fs::copy(dir + "/full/checkpoints/step_00000010/state-rank00000-of-00002.safetensors",
             dir + "/cut/checkpoints/step_00000010.tmp/state-rank00000-of-00002.safetensors");
    std::ifstream src(dir + "/full/checkpoints/step_00000010/" + shard, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
    std::ofstream(dir + "/cut/checkpoints/step_00000010.tmp/" + shard, std::ios::binary)
        << bytes.substr(0, bytes.size() / 3);
  }
  Shell resumed =
      sh(mpirun(2) + lathe + common_args(args + "train.resume=true output.dir=" + dir + "/cut"));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("step_00000005"), std::string::npos) << resumed.output;
  const std::vector<double> a = losses(dir + "/full"), b = losses(dir + "/cut");
  ASSERT_EQ(b.size(), 10u);  // steps 6-10 of the copied log were cut, then logged once
  const double err =
      max_rel(std::vector<double>(b.end() - 5, b.end()), std::vector<double>(a.end() - 5, a.end()));
  EXPECT_LT(err, 1e-5);
  EXPECT_LT(weights_rel(dir + "/cut/final", dir + "/full/final"), 1e-5);
  std::printf("[ reached  ] resume past a cut-off save: losses of steps 6-10 rel error %.1e\n",
              err);
}

TEST_F(DataParallel, EvalLossSplitOverProcessesIsTheWholeEvalLoss) {
  const std::string dir = testing::temp_dir("dp_eval");
  const std::string lathe = LATHE_BINARY;
  const std::string args = "data.test_split=0.3 train.max_steps=3 train.eval_every=1 ";
  Shell one = sh("OMP_WAIT_POLICY=PASSIVE " + lathe +
                 common_args(args + "train.batch_size=4 output.dir=" + dir + "/one"));
  ASSERT_EQ(one.status, 0) << one.output;
  Shell four =
      sh(mpirun(4) + lathe + common_args(args + "train.batch_size=1 output.dir=" + dir + "/four"));
  ASSERT_EQ(four.status, 0) << four.output;
  auto evals = [](const std::string& d) {
    std::vector<double> out;
    std::ifstream f(d + "/metrics.jsonl");
    for (std::string line; std::getline(f, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("eval_loss")) out.push_back(j["eval_loss"]);
    }
    return out;
  };
  const std::vector<double> a = evals(dir + "/one"), b = evals(dir + "/four");
  ASSERT_EQ(a.size(), 4u);  // before training and after each of the 3 steps
  ASSERT_EQ(b.size(), a.size());
  EXPECT_LT(max_rel(b, a), 1e-6);
}

TEST_F(DataParallel, KilledWhileCheckpointingEveryStepThenResumed) {
  // Every step writes a checkpoint, so a SIGKILL lands in or near a save; whatever it
  // interrupted, resuming from the newest valid checkpoint must continue the
  // uninterrupted run exactly.
  const std::string dir = testing::temp_dir("dp_kill_save");
  const std::string lathe = LATHE_BINARY;
  const std::string args =
      "train.batch_size=1 dist.strategy=full_shard output.save_every=1 "
      "output.keep_last=2 train.max_steps=400 ";
  Shell full = sh(mpirun(2) + lathe + common_args(args + "output.dir=" + dir + "/full"));
  ASSERT_EQ(full.status, 0) << full.output;
  Shell started = sh(mpirun(2) + lathe + common_args(args + "output.dir=" + dir + "/killed") +
                     " > " + dir + "/log 2>&1 & echo $!");
  const std::string mpirun_pid = started.output.substr(0, started.output.find('\n'));
  for (int i = 0; i < 400 && losses(dir + "/killed").size() < 20; ++i) usleep(20000);
  sh("pkill -9 -P " + mpirun_pid + " -n -f 'lathe train'");
  for (int i = 0; i < 300 && sh("kill -0 " + mpirun_pid).status == 0; ++i) usleep(100000);
  const std::vector<double> before = losses(dir + "/killed");
  ASSERT_GE(before.size(), 20u);
  ASSERT_LT(before.size(), 400u) << "the run finished before it was killed";
  Shell resumed =
      sh(mpirun(2) + lathe + common_args(args + "train.resume=true output.dir=" + dir + "/killed"));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  // The resumed run's losses are the last ones in metrics.jsonl; they end at step 400.
  const std::vector<double> want = losses(dir + "/full"), got = losses(dir + "/killed");
  size_t k = 0;  // how many steps the resume ran
  const auto pos = resumed.output.find("(step ");
  ASSERT_NE(pos, std::string::npos) << resumed.output;
  k = 400 - size_t(std::stoll(resumed.output.substr(pos + 6)));
  ASSERT_GE(got.size(), k);
  const std::vector<double> tail_got(got.end() - std::ptrdiff_t(k), got.end());
  const std::vector<double> tail_want(want.end() - std::ptrdiff_t(k), want.end());
  const double err = max_rel(tail_got, tail_want);
  EXPECT_LT(err, 1e-5);
  std::printf("[ reached  ] killed after %zu steps, resumed for %zu: losses rel error %.1e\n",
              before.size(), k, err);
}

TEST_F(DataParallel, LoraAdaptersTrainTheSameOnFourProcesses) {
  const std::string dir = testing::temp_dir("dp_lora");
  const std::string lathe = LATHE_BINARY;
  const std::string lora =
      "peft.method=lora peft.r=4 peft.alpha=8 peft.dropout=0 "
      "peft.target_modules=all-linear train.lr=1e-2 ";
  Shell one = sh("OMP_WAIT_POLICY=PASSIVE " + lathe +
                 common_args(lora + "train.batch_size=4 output.dir=" + dir + "/one"));
  ASSERT_EQ(one.status, 0) << one.output;
  Shell four = sh(mpirun(4) + lathe +
                  common_args(lora +
                              "train.batch_size=1 dist.strategy=shard_grad_op "
                              "output.dir=" +
                              dir + "/four"));
  ASSERT_EQ(four.status, 0) << four.output;
  const double err = max_rel(losses(dir + "/four"), losses(dir + "/one"));
  EXPECT_LT(err, 1e-5);
  std::printf("[ reached  ] LoRA, shard_grad_op, 4 x 1 vs 1 x 4: losses %.1e\n", err);
}

TEST_F(DataParallel, LoraOnAFrozenBaseSplitOverProcessesTrainsTheSame) {
  // full_shard with LoRA: each process keeps every 4th layer of the frozen base (fp32,
  // bf16 or NF4 as stored) and receives the others when they run; hybrid_shard splits it
  // within groups of 2. The adapters must train as on one process.
  const std::string dir = testing::temp_dir("dp_lora_fs");
  const std::string lathe = LATHE_BINARY;
  for (const char* base : {"fp32", "bf16", "nf4"}) {
    const std::string lora =
        std::string(
            "peft.method=lora peft.r=4 peft.alpha=8 peft.dropout=0 "
            "peft.target_modules=all-linear train.lr=1e-2 peft.base_dtype=") +
        base + " peft.double_quant=" + (std::string(base) == "nf4" ? "true " : "false ");
    Shell one = sh("OMP_WAIT_POLICY=PASSIVE " + lathe +
                   common_args(lora + "train.batch_size=4 output.dir=" + dir + "/one_" + base));
    ASSERT_EQ(one.status, 0) << one.output;
    for (const char* strategy : {"full_shard", "hybrid_shard"}) {
      const std::string out = dir + "/" + strategy + "_" + base;
      Shell four =
          sh(mpirun(4) + lathe +
             common_args(lora + "train.batch_size=1 dist.shard_group_size=2 dist.strategy=" +
                         strategy + " output.dir=" + out));
      ASSERT_EQ(four.status, 0) << four.output;
      EXPECT_NE(four.output.find("frozen base"), std::string::npos);
      const double err = max_rel(losses(out), losses(dir + "/one_" + base));
      ASSERT_EQ(losses(out).size(), 10u);
      EXPECT_LT(err, 1e-5) << strategy << " " << base;
      std::printf("[ reached  ] LoRA, %s, %s base, 4 x 1 vs 1 x 4: losses %.1e\n", strategy, base,
                  err);
    }
  }
}

TEST_F(DataParallel, AKilledProcessEndsTheJobNamingIt) {
  const std::string dir = testing::temp_dir("dp_kill");
  const std::string lathe = LATHE_BINARY;
  // A long run; process 1 is killed with SIGKILL shortly after start.
  const std::string cmd = mpirun(2) + lathe +
                          common_args(
                              "train.batch_size=1 train.max_steps=100000 dist.timeout=10 "
                              "output.dir=" +
                              dir + "/run") +
                          " > " + dir + "/log 2>&1 & echo $!";
  Shell started = sh(cmd);
  ASSERT_EQ(started.status, 0);
  const std::string mpirun_pid = started.output.substr(0, started.output.find('\n'));
  // Wait until training runs, then kill rank 1 (its parent is this mpirun).
  for (int i = 0; i < 100 && !fs::exists(dir + "/run/metrics.jsonl"); ++i) usleep(100000);
  usleep(500000);
  const auto t0 = std::chrono::steady_clock::now();
  Shell kill = sh("pkill -9 -P " + mpirun_pid + " -n -f 'lathe train'");
  (void)kill;
  int waited = 0;
  while (sh("kill -0 " + mpirun_pid).status == 0 && waited < 300) usleep(100000), ++waited;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ifstream f(dir + "/log");
  const std::string log((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_LT(seconds, 15.0) << log;
  EXPECT_NE(log.find("rank"), std::string::npos) << log;
  std::printf("[ reached  ] job ended %.1fs after a process was killed\n", seconds);
}

TEST_F(DataParallel, AnErrorOnOneProcessEndsTheJobAtOnce) {
  // Rank 1's machine lacks the data file (mpirun's MPMD form gives it its own arguments):
  // it fails while loading and must end the job with its message, not leave rank 0
  // waiting in a collective until dist.timeout.
  const std::string dir = testing::temp_dir("dp_error");
  const std::string lathe = LATHE_BINARY;
  std::string cmd =
      "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE mpirun --oversubscribe --bind-to none ";
  if (geteuid() == 0) cmd += "--allow-run-as-root ";
  const std::string args = "train.batch_size=1 dist.timeout=60 output.dir=" + dir + "/run";
  cmd += "-np 1 " + lathe + common_args(args) + " : -np 1 " + lathe +
         common_args(args + " data.train=" + dir + "/missing.jsonl");
  const auto t0 = std::chrono::steady_clock::now();
  Shell r = sh(cmd);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.status, 0);
  EXPECT_LT(seconds, 30.0) << r.output;
  EXPECT_NE(r.output.find("error: rank 1 of 2:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("missing.jsonl"), std::string::npos) << r.output;
  std::printf("[ reached  ] an error on rank 1 ended the job in %.1fs (dist.timeout=60)\n",
              seconds);
}

TEST_F(DataParallel, AHungProcessEndsTheJobAfterTheTimeout) {
  const std::string dir = testing::temp_dir("dp_hang");
  const std::string lathe = LATHE_BINARY;
  const std::string cmd = mpirun(2) + lathe +
                          common_args(
                              "train.batch_size=1 train.max_steps=100000 dist.timeout=3 "
                              "output.dir=" +
                              dir + "/run") +
                          " > " + dir + "/log 2>&1 & echo $!";
  Shell started = sh(cmd);
  ASSERT_EQ(started.status, 0);
  const std::string mpirun_pid = started.output.substr(0, started.output.find('\n'));
  for (int i = 0; i < 100 && !fs::exists(dir + "/run/metrics.jsonl"); ++i) usleep(100000);
  usleep(500000);
  // SIGSTOP: the process is alive but never reaches the next collective.
  const std::string pid = sh("pgrep -P " + mpirun_pid + " -n -f 'lathe train'").output;
  const std::string rank = sh("tr '\\0' '\\n' < /proc/" + pid.substr(0, pid.find('\n')) +
                              "/environ | sed -n 's/^OMPI_COMM_WORLD_RANK=//p'")
                               .output;
  ASSERT_FALSE(rank.empty()) << pid;
  const auto t0 = std::chrono::steady_clock::now();
  sh("kill -STOP " + pid.substr(0, pid.find('\n')));
  int waited = 0;
  while (sh("kill -0 " + mpirun_pid).status == 0 && waited < 300) usleep(100000), ++waited;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sh("pkill -KILL -P " + mpirun_pid + " -f 'lathe train'");
  std::ifstream f(dir + "/log");
  const std::string log((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_LT(seconds, 3.0 + 5.0) << log;
  EXPECT_NE(log.find("did not complete within dist.timeout=3s"), std::string::npos) << log;
  // The others name the process that stopped answering.
  const std::string named = "rank(s) " + rank.substr(0, rank.find('\n')) + " did not answer";
  EXPECT_NE(log.find(named), std::string::npos) << named << "\n" << log;
  std::printf("[ reached  ] a stopped process ended the job %.1fs later (dist.timeout=3)\n",
              seconds);
}

}  // namespace
}  // namespace lathe
