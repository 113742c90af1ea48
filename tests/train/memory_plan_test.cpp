// The memory planner: the ZeRO formulas by hand, lathe's layout by hand for the 56M bench
// model, and the planner's total against the peak RSS `lathe bench` measures.
#include "train/memory_plan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "backend/peak.h"
#include "core/error.h"
#include "core/json.h"
#include "model/lora.h"
#include "sanitizers/address_sanitizer.h"

namespace lathe {
namespace {

constexpr double kMiB = 1048576.0;
constexpr double kGiB = 1024.0 * kMiB;

LlamaConfig bench_56m() {
  return llama_config_from_json_file(std::string(LATHE_SOURCE_DIR) +
                                     "/configs/bench/llama-56m.json");
}

// Llama-2-7B: the 2-layer bench shape with all 32 layers.
LlamaConfig llama2_7b() {
  LlamaConfig c = llama_config_from_json_file(std::string(LATHE_SOURCE_DIR) +
                                              "/configs/bench/llama2-7b-2layers.json");
  c.num_hidden_layers = 32;
  return c;
}

PlanInput input(Precision p, int64_t B, int64_t T) {
  PlanInput in;
  in.precision = p;
  in.batch_size = B;
  in.seq_len = T;
  return in;
}

// Ψ of the 56M model by hand: embedding and untied lm_head 32000 × 512 each; per layer two
// norms (512), q 512², k and v 256 × 512 (4 KV heads of 64), o 512², gate, up, down
// 1376 × 512; the final norm.
constexpr size_t kEmbed56 = 32000 * 512;
constexpr size_t kLayer56 = 2 * 512 + 512 * 512 + 2 * 256 * 512 + 512 * 512 + 3 * 1376 * 512;
constexpr size_t kPsi56 = 2 * kEmbed56 + 8 * kLayer56 + 512;

TEST(MemoryPlan, ZeroFormulas) {
  const double psi = 7e9;
  EXPECT_DOUBLE_EQ(zero_formula(psi, ShardStrategy::NoShard, 64).total(), 112e9);
  EXPECT_DOUBLE_EQ(zero_formula(psi, ShardStrategy::Zero1, 64).total(), 4 * psi + 12 * psi / 64);
  EXPECT_DOUBLE_EQ(zero_formula(psi, ShardStrategy::Zero1, 64).total(), 29.3125e9);
  EXPECT_DOUBLE_EQ(zero_formula(psi, ShardStrategy::Zero2, 64).total(), 2 * psi + 14 * psi / 64);
  EXPECT_DOUBLE_EQ(zero_formula(psi, ShardStrategy::Zero2, 64).total(), 15.53125e9);
  EXPECT_DOUBLE_EQ(zero_formula(psi, ShardStrategy::FullShard, 64).total(), 1.75e9);
  EXPECT_DOUBLE_EQ(zero_formula(psi, ShardStrategy::HybridShard, 8).total(), 14e9);
  // One process: every stage is DDP.
  for (ShardStrategy s : {ShardStrategy::Zero1, ShardStrategy::Zero2, ShardStrategy::FullShard})
    EXPECT_DOUBLE_EQ(zero_formula(psi, s, 1).total(), 112e9);
  // The paper's Table 1 (Ψ = 7.5B, N_d = 64): 120 GB, 31.4 GB, 16.6 GB, 1.88 GB.
  const double p75 = 7.5e9;
  EXPECT_NEAR(zero_formula(p75, ShardStrategy::NoShard, 64).total() / 1e9, 120, 0.05);
  EXPECT_NEAR(zero_formula(p75, ShardStrategy::Zero1, 64).total() / 1e9, 31.4, 0.05);
  EXPECT_NEAR(zero_formula(p75, ShardStrategy::Zero2, 64).total() / 1e9, 16.6, 0.05);
  EXPECT_NEAR(zero_formula(p75, ShardStrategy::FullShard, 64).total() / 1e9, 1.88, 0.005);
  // The split: 2Ψ params, 2Ψ grads, 12Ψ optimizer (fp32 master, m, v).
  const ZeroStates z2 = zero_formula(psi, ShardStrategy::Zero2, 64);
  EXPECT_DOUBLE_EQ(z2.params, 2 * psi);
  EXPECT_DOUBLE_EQ(z2.grads, 2 * psi / 64);
  EXPECT_DOUBLE_EQ(z2.optimizer, 12 * psi / 64);
}

TEST(MemoryPlan, LatheModelStates56M) {
  const LlamaConfig c = bench_56m();
  const MemoryPlan fp32 = plan_memory(c, input(Precision::FP32, 4, 256));
  ASSERT_EQ(fp32.num_params, kPsi56);
  ASSERT_EQ(kPsi56, 55976448u);  // what lathe bench reports as "params"
  EXPECT_DOUBLE_EQ(fp32.master, 4.0 * kPsi56);
  EXPECT_DOUBLE_EQ(fp32.compute_copy, 0);
  EXPECT_DOUBLE_EQ(fp32.grads, 4.0 * kPsi56);
  EXPECT_DOUBLE_EQ(fp32.optimizer, 8.0 * kPsi56);
  EXPECT_DOUBLE_EQ(fp32.model_states(), 16.0 * kPsi56);
  EXPECT_DOUBLE_EQ(fp32.zero.total(), 16.0 * kPsi56);

  // bf16: + a bf16 copy of everything but the (untied) embedding table.
  const MemoryPlan bf16 = plan_memory(c, input(Precision::BF16, 4, 256));
  EXPECT_DOUBLE_EQ(bf16.compute_copy, 2.0 * double(kPsi56 - kEmbed56));
  EXPECT_DOUBLE_EQ(bf16.model_states(), 16.0 * kPsi56 + 2.0 * double(kPsi56 - kEmbed56));

  // 4 processes: ranges of ceil(Ψ/4) rounded up to 16 elements (shard_ranges).
  const double range = 13994112;  // 55976448 / 4, already a multiple of 16
  PlanInput in = input(Precision::FP32, 4, 256);
  in.world_size = 4;
  in.strategy = ShardStrategy::Zero1;
  const MemoryPlan z1 = plan_memory(c, in);
  EXPECT_DOUBLE_EQ(z1.optimizer, 8 * range);
  EXPECT_DOUBLE_EQ(z1.grads, 4.0 * kPsi56);
  EXPECT_DOUBLE_EQ(z1.master, 4.0 * kPsi56);
  EXPECT_DOUBLE_EQ(z1.zero.total(), 4.0 * kPsi56 + 12.0 * kPsi56 / 4);
  // shard_grad_op as the trainer does it: the whole fp32 gradient during backward, plus
  // the reduce-scattered range.
  in.strategy = ShardStrategy::Zero2;
  const MemoryPlan z2 = plan_memory(c, in);
  EXPECT_DOUBLE_EQ(z2.grads, 4.0 * kPsi56);
  EXPECT_DOUBLE_EQ(z2.shard_buffers, 4 * range);
  EXPECT_DOUBLE_EQ(z2.optimizer, 8 * range);
  // full_shard: everything split, plus the model's gather buffers: two layers (2,900,992
  // floats each: one computing, one prefetched) and two layer gradients (one written, one
  // being reduced), the embedding and lm_head (32000 × 512 each) and their gradients, the
  // final norm and its gradient; reductions land in the shard, so no reduce scratch.
  in.strategy = ShardStrategy::FullShard;
  const MemoryPlan z3 = plan_memory(c, in);
  EXPECT_DOUBLE_EQ(z3.master, 4 * range);
  EXPECT_DOUBLE_EQ(z3.grads, 4 * range);
  EXPECT_DOUBLE_EQ(z3.optimizer, 8 * range);
  EXPECT_DOUBLE_EQ(z3.shard_buffers, 4.0 * (4 * 2900992.0 + 4 * kEmbed56 + 2 * 512));
  EXPECT_DOUBLE_EQ(z3.compute_copy, 0.0);
  EXPECT_DOUBLE_EQ(z3.zero.total(), 16.0 * kPsi56 / 4);
  // hybrid_shard over groups of 2: full_shard within the group.
  in.strategy = ShardStrategy::HybridShard;
  in.shard_group_size = 2;
  const MemoryPlan hy = plan_memory(c, in);
  EXPECT_EQ(hy.shard_degree, 2);
  EXPECT_DOUBLE_EQ(hy.master, 4 * 27988224.0);
  EXPECT_DOUBLE_EQ(hy.zero.total(), 16.0 * kPsi56 / 2);
  in.shard_group_size = 3;
  EXPECT_THROW(plan_memory(c, in), Error);  // 3 does not divide 4
}

// LlamaModel::ensure_buffers and head_loss_and_grad, counted by hand for the 56M model at
// batch 4 × 256 (M = 1024 tokens).
TEST(MemoryPlan, Activations56M) {
  const LlamaConfig c = bench_56m();
  const MemoryPlan p = plan_memory(c, input(Precision::FP32, 4, 256));
  const double M = 1024;
  // Per layer and token: x_in 512, rstd1 1, qkv 512+256+256, att 512, lse 8, x_mid 512,
  // rstd2 1, gate|up 2·1376.
  const double per_layer = 512 + 1 + 1024 + 512 + 8 + 512 + 1 + 2752;
  // Shared: xn, h, x_final, xn_final, rstd_final, dx, dxn, dh, dgu, datt, dqkv.
  const double shared = 512 + 1376 + 512 + 512 + 1 + 512 + 512 + 1376 + 2752 + 512 + 1024;
  const double ints = 4 * 4 * M;       // ids, targets, positions, doc_start
  const double rope = 4 * 256.0 * 64;  // [T, D]
  EXPECT_DOUBLE_EQ(p.activations_no_ckpt, 4 * M * (8 * per_layer + shared) + ints + rope);
  EXPECT_DOUBLE_EQ(p.activations_no_ckpt, 213798912.0);
  // Checkpointing: one set without x_in, plus the 8 layer inputs.
  EXPECT_DOUBLE_EQ(p.activations_ckpt,
                   4 * M * ((per_layer - 512) + 8 * 512 + shared) + ints + rope);
  // The logits chunk: min(1024 rows, 32M floats / 32000 = 1048) rows, rows_x / rows_dx,
  // and the chunk's row indices and targets.
  EXPECT_EQ(p.logits_rows, 1024);
  EXPECT_DOUBLE_EQ(p.logits_scratch, 4.0 * 1024 * 32000 + 2 * 4.0 * 1024 * 512 + 2 * 4.0 * 1024);
  // At least 16 rows even for a huge vocabulary.
  LlamaConfig big = c;
  big.vocab_size = 1 << 22;
  EXPECT_EQ(plan_memory(big, input(Precision::FP32, 4, 256)).logits_rows, 16);
}

// One process streams its saves through the 64 MiB staging buffer whatever the model's
// size (the 56M model's fp32 weights are 224 MiB); a bf16 export adds the fp32 piece it
// converts from. Several processes keep rank 0's converted copy.
TEST(MemoryPlan, SingleProcessSavesStreamThroughTheStagingBuffer) {
  const LlamaConfig c = bench_56m();
  const double MiB = 1 << 20;
  PlanInput in = input(Precision::BF16, 4, 256);
  const MemoryPlan one = plan_memory(c, in);
  EXPECT_DOUBLE_EQ(one.host_checkpoint_rank0, 64 * MiB);
  EXPECT_DOUBLE_EQ(one.host_export, 128 * MiB);
  in.save_bytes = 4;
  EXPECT_DOUBLE_EQ(plan_memory(c, in).host_export, 64 * MiB);
  in.save_bytes = 2;
  in.world_size = 2;
  const MemoryPlan two = plan_memory(c, in);
  EXPECT_DOUBLE_EQ(two.host_checkpoint_rank0, 0);
  EXPECT_DOUBLE_EQ(two.host_export, 2 * double(two.num_params));
}

TEST(MemoryPlan, FrozenBaseBytesPerParameter) {
  const LlamaConfig c = llama2_7b();
  const double C = 4096, V = 32000, L = 32;
  const double other = L * 2 * C * 4 + 2 * V * C * 4 + C * 4;  // norms, embedding, lm_head
  const double linear_params = L * (4 * C * C + 3 * C * 11008);
  PlanInput in = input(Precision::BF16, 1, 128);
  in.lora = true;
  in.lora_spec.r = 16;
  in.lora_spec.targets = parse_lora_targets({"all-linear"});
  auto per_param = [&](BaseDtype d, bool dq) {
    in.base_dtype = d;
    in.double_quant = dq;
    return (plan_memory(c, in).frozen_base - other) / linear_params;
  };
  EXPECT_DOUBLE_EQ(per_param(BaseDtype::BF16, false), 2.0);
  EXPECT_NEAR(per_param(BaseDtype::NF4, false), 0.5625, 1e-6);  // 4 bits + fp32 per 64
  EXPECT_NEAR(per_param(BaseDtype::NF4, true), 0.5 + 1.0 / 64 + 8.0 / (64 * 256), 1e-6);
  EXPECT_NEAR(per_param(BaseDtype::NF4, true), 0.5161, 1e-4);
  // fp32 keeps whole per-layer slices, the norms' places included.
  EXPECT_DOUBLE_EQ(per_param(BaseDtype::F32, false),
                   4.0 * (linear_params + L * 2 * C) / linear_params);
  // Trainable: the adapters only, r·(in + out) per projection.
  const MemoryPlan p = plan_memory(c, in);
  const double adapters = L * 16 * (4 * (C + C) + 3 * (C + 11008));
  EXPECT_DOUBLE_EQ(double(p.trainable_params), adapters);
  EXPECT_DOUBLE_EQ(p.optimizer, 8 * adapters);
  EXPECT_DOUBLE_EQ(p.compute_copy, 4 * adapters);  // bf16: lora_compute_
  // full_shard over 6 processes: each keeps ⌈32/6⌉ = 6 layers of the NF4 base and two slots
  // for the layers it receives; the adapters stay whole, their AdamW state and reduced
  // gradient are split (as under shard_grad_op).
  in.base_dtype = BaseDtype::NF4;
  in.double_quant = false;
  in.world_size = 6;
  in.strategy = ShardStrategy::FullShard;
  const double nf4_layer = 0.5625 * linear_params / L;
  const MemoryPlan fs = plan_memory(c, in);
  EXPECT_NEAR(fs.frozen_base, 6 * nf4_layer + other, 1.0);
  const double range = std::ceil(std::ceil(adapters / 6) / 16) * 16;
  EXPECT_NEAR(fs.shard_buffers, 4 * range + 2 * nf4_layer, 1.0);
  EXPECT_DOUBLE_EQ(fs.grads, 4 * adapters);
  EXPECT_DOUBLE_EQ(fs.master, 4 * adapters);
  EXPECT_DOUBLE_EQ(fs.optimizer, 8 * range);
}

TEST(MemoryPlan, Recommendations) {
  // The 56M model fits anywhere unsharded.
  PlanInput small = input(Precision::BF16, 4, 256);
  small.world_size = 8;
  const Recommendation r1 = recommend_strategy(bench_56m(), small, 23 * kGiB, 256 * kGiB);
  ASSERT_TRUE(r1.fits) << r1.reason;
  EXPECT_EQ(r1.plan.in.strategy, ShardStrategy::NoShard);

  // Llama-2-7B in bf16 on 16 × 24 GiB (1 GiB reserved): lathe's 20 bytes per parameter
  // unsharded (135 GB) rule out no_shard, zero1 and shard_grad_op; full_shard fits.
  PlanInput big = input(Precision::BF16, 1, 2048);
  big.world_size = 16;
  const Recommendation r2 = recommend_strategy(llama2_7b(), big, 23 * kGiB, 256 * kGiB);
  std::cout << "[ reached ] Llama-2-7B, 16 x 24 GiB, batch 1 x 2048: " << r2.reason << "\n";
  ASSERT_TRUE(r2.fits) << r2.reason;
  EXPECT_EQ(r2.plan.in.strategy, ShardStrategy::FullShard);
  EXPECT_LE(r2.plan.device_total(), 23 * kGiB);

  // One process cannot hold it: the planner says how many would do.
  big.world_size = 1;
  const Recommendation r3 = recommend_strategy(llama2_7b(), big, 23 * kGiB, 256 * kGiB);
  EXPECT_FALSE(r3.fits);
  EXPECT_NE(r3.reason.find("would fit with"), std::string::npos) << r3.reason;
}

TEST(MemoryPlan, ByteSizes) {
  EXPECT_DOUBLE_EQ(parse_byte_size("24GiB"), 24 * kGiB);
  EXPECT_DOUBLE_EQ(parse_byte_size("80GB"), 80e9);
  EXPECT_DOUBLE_EQ(parse_byte_size("512 MiB"), 512 * kMiB);
  EXPECT_DOUBLE_EQ(parse_byte_size("1.5T"), 1.5 * 1024 * kGiB);
  EXPECT_DOUBLE_EQ(parse_byte_size("4096"), 4096);
  EXPECT_THROW(parse_byte_size("24 parsecs"), Error);
  EXPECT_THROW(parse_byte_size("lots"), Error);
  EXPECT_EQ(format_bytes(1.5 * kGiB), "1.50 GiB");
}

// A child's stdout and its own peak RSS (wait4), for the measurements below.
struct ChildRun {
  std::string out;
  double max_rss_mb = 0;
  int status = -1;
};

ChildRun run_child(const std::vector<std::string>& args) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  ChildRun r;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) r.out.append(buf, size_t(n));
  close(fds[0]);
  rusage ru{};
  wait4(pid, &r.status, 0, &ru);
  r.max_rss_mb = double(ru.ru_maxrss) / 1024.0;
  return r;
}

// What a lathe process holds besides the planned buffers (the binary, oneDNN, OpenMP): the
// peak RSS of `lathe bench --peak`, measured once, less the product it times (three fp32
// matrices, zero-filled when allocated, and their bf16 packs where bf16 kernels run),
// which it frees before a bench's steps.
double process_baseline_mb() {
  static const double mb = [] {
    const ChildRun r = run_child({LATHE_BINARY, "bench", "--peak"});
    EXPECT_EQ(r.status, 0) << r.out;
    const double M = kPeakM, N = kPeakN, K = kPeakK;
    double product = 4 * (M * K + K * N + M * N);
    if (make_cpu_backend(0)->bf16_kernels()) product += 2 * (M * K + K * N);
    return r.max_rss_mb - product / kMiB;
  }();
  return mb;
}

void compare_with_bench(const std::string& what, const PlanInput& in,
                        const std::vector<std::string>& extra) {
#if defined(LATHE_TEST_ASAN)
  // AddressSanitizer's lathe holds freed memory in its quarantine (256 MiB by default) and
  // pads every allocation with redzones, so its peak RSS is not the plan's to predict
  // (measured: -20% for LoRA and QLoRA against the 15% bound).
  GTEST_SKIP() << what << ": peak RSS under AddressSanitizer is not the plan's to predict";
#endif
  const std::string cfg = std::string(LATHE_SOURCE_DIR) + "/configs/bench/llama-56m.json";
  std::vector<std::string> args = {LATHE_BINARY, "bench", "--model-config", cfg, "--batch",  "4",
                                   "--seq",      "256",   "--steps",        "1", "--warmup", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  const ChildRun r = run_child(args);
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const double measured = j.at("peak_rss_mb").get<double>();
  const double base = process_baseline_mb();
  // Planned for the kernels this machine runs: bf16 products on bf16 kernels only where
  // the CPU has bf16 dot products (AVX512_BF16, AMX); each kind has its own scratch.
  PlanInput for_here = in;
  for_here.bf16_kernels = make_cpu_backend(0)->bf16_kernels();
  const MemoryPlan p = plan_memory(bench_56m(), for_here);
  const double predicted = p.device_total() / kMiB;
  const double net = measured - base;
  const double err = (predicted - net) / net;
  std::printf(
      "[ reached ] %s, %s kernels: predicted %.1f MiB (states %.1f, activations %.1f, scratch "
      "%.1f); "
      "measured peak RSS %.1f MiB - baseline %.1f MiB (lathe bench --peak) = %.1f MiB; "
      "error %+.1f%%\n",
      what.c_str(), for_here.bf16_kernels ? "bf16" : "fp32", predicted, p.model_states() / kMiB,
      p.activations() / kMiB, p.scratch() / kMiB, measured, base, net, 100 * err);
  EXPECT_LT(std::fabs(err), 0.15) << what;
}

TEST(MemoryPlan, MatchesMeasuredRssFp32) {
  compare_with_bench("56M fp32, batch 4 x 256", input(Precision::FP32, 4, 256),
                     {"--precision", "fp32"});
}

TEST(MemoryPlan, MatchesMeasuredRssBf16) {
  compare_with_bench("56M bf16, batch 4 x 256", input(Precision::BF16, 4, 256),
                     {"--precision", "bf16"});
}

// lathe bench --peft lora: r = 16, alpha 32, all-linear, no dropout, base in the precision.
TEST(MemoryPlan, MatchesMeasuredRssLora) {
  PlanInput in = input(Precision::FP32, 4, 256);
  in.lora = true;
  in.lora_spec.r = 16;
  in.lora_spec.alpha = 32;
  in.lora_spec.targets = parse_lora_targets({"all-linear"});
  in.base_dtype = BaseDtype::F32;
  compare_with_bench("56M LoRA r=16 all-linear, fp32 base, batch 4 x 256", in,
                     {"--precision", "fp32", "--peft", "lora", "--lora-r", "16"});
}

TEST(MemoryPlan, MatchesMeasuredRssQlora) {
  PlanInput in = input(Precision::BF16, 4, 256);
  in.lora = true;
  in.lora_spec.r = 16;
  in.lora_spec.alpha = 32;
  in.lora_spec.targets = parse_lora_targets({"all-linear"});
  in.base_dtype = BaseDtype::NF4;
  compare_with_bench("56M QLoRA r=16 all-linear, NF4 base, bf16, batch 4 x 256", in,
                     {"--precision", "bf16", "--peft", "qlora", "--lora-r", "16"});
}

// lathe plan --json prints what plan_memory computes.
TEST(MemoryPlan, PlanVerbJson) {
  const std::string cfg = std::string(LATHE_SOURCE_DIR) + "/configs/bench/llama-56m.json";
  const ChildRun r = run_child({LATHE_BINARY, "plan", "--model-config", cfg, "--world-size", "4",
                                "train.batch_size=4", "data.seq_len=256", "dist.strategy=zero1",
                                "train.precision=fp32", "--json"});
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  PlanInput in = input(Precision::FP32, 4, 256);
  in.world_size = 4;
  in.strategy = ShardStrategy::Zero1;
  const MemoryPlan p = plan_memory(bench_56m(), in);
  EXPECT_EQ(j.at("strategy"), "zero1");
  EXPECT_DOUBLE_EQ(j.at("lathe").at("total").get<double>(), p.device_total());
  EXPECT_DOUBLE_EQ(j.at("zero_formula").at("total").get<double>(), p.zero_total());
  EXPECT_EQ(j.at("recommendation").at("strategy"), "no_shard");
  EXPECT_TRUE(j.at("recommendation").at("fits").get<bool>());
}

}  // namespace
}  // namespace lathe
