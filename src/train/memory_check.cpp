#include "train/memory_check.h"

#include "core/error.h"
#include "core/host_memory.h"
#include "train/memory_plan.h"

namespace lathe {
namespace {

// The process itself: code, libraries (oneDNN, MPI), thread stacks and the tokenized rows.
// A whole stories260K run peaks at 40 MiB RSS on x86-64 (/usr/bin/time), so 64 MiB.
constexpr double kRuntimeBytes = 64.0 * (1 << 20);

}  // namespace

void check_memory_fits(const Config& cfg, const LlamaConfig& model, const MemoryCheckInput& in) {
  if (!cfg.train.memory_check) return;
  PlanInput pin = plan_input_from_config(cfg, in.world_size, in.local_processes);
  pin.bf16_kernels = in.bf16_kernels;
  const MemoryPlan plan = plan_memory(model, pin);
  // On the CPU backend the model states, activations and scratch are host memory too.
  const double per_process = (in.host_backend ? plan.device_total() : 0) + kRuntimeBytes;
  const double machine = per_process * in.local_processes + plan.host_per_node;
  const std::string advice =
      "; lower data.seq_len or train.batch_size, set train.activation_checkpointing=true, use "
      "peft.method=lora or qlora, or spread the states over more processes with "
      "dist.strategy=full_shard (`lathe plan CONFIG --world-size N` shows what fits). If the "
      "estimate is wrong for this machine, start anyway with train.memory_check=false";
  const std::string breakdown = str_cat(
      "the plan: ", format_bytes(per_process - kRuntimeBytes), " per process (model states ",
      format_bytes(in.host_backend ? plan.model_states() : 0), ", activations ",
      format_bytes(in.host_backend ? plan.activations() : 0), ", scratch ",
      format_bytes(in.host_backend ? plan.scratch() : 0), ") and ~", format_bytes(kRuntimeBytes),
      " of runtime");
  const MemoryLimit avail = machine_memory_available();
  if (avail.bytes > 0 && machine > avail.bytes)
    fail("this run needs about ", format_bytes(machine), " of memory on this machine (", breakdown,
         ", × ", in.local_processes, " processes",
         plan.host_per_node > 0
             ? str_cat(", + ", format_bytes(plan.host_per_node), " of host buffers")
             : "",
         ") but ", format_bytes(avail.bytes), " is available (", avail.source, ")", advice);
  if (const auto limit = process_memory_limit(); limit && per_process > limit->bytes)
    fail("this run needs about ", format_bytes(per_process), " of memory per process (", breakdown,
         ") but ", format_bytes(limit->bytes), " is left under ", limit->source, advice);
}

}  // namespace lathe
