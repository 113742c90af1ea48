// Out of memory, foreseen: before a run loads anything, its memory plan (train/memory_plan.h,
// the figures `lathe plan` prints) is compared with what the machine and this process may
// still take, and a run that cannot fit refuses with the numbers instead of being killed
// by the kernel minutes later. train.memory_check=false starts it anyway.
#pragma once
#include "model/llama.h"
#include "train/config.h"

namespace lathe {

struct MemoryCheckInput {
  int world_size = 1;
  int local_processes = 1;   // processes of this run on this machine
  bool bf16_kernels = true;  // as the backend runs bf16 products
  bool host_backend = true;  // model states live in host memory (the CPU backend)
};

void check_memory_fits(const Config& cfg, const LlamaConfig& model, const MemoryCheckInput& in);

}  // namespace lathe
