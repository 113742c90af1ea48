// dist.strategy: what data-parallel processes shard. FSDP and DeepSpeed names both work.
#pragma once
#include <string>

namespace lathe {

enum class ShardStrategy {
  NoShard,  // DDP / FSDP NO_SHARD: gradients all-reduced, everything replicated
  Zero1,    // optimizer state sharded; gradients all-reduced
  Zero2,    // FSDP SHARD_GRAD_OP: gradients reduce-scattered, optimizer state sharded
  FullShard,    // ZeRO-3 / FSDP FULL_SHARD
  HybridShard,  // FSDP HYBRID_SHARD
};

ShardStrategy shard_strategy_from_name(const std::string& name);
const char* shard_strategy_name(ShardStrategy s);

}  // namespace lathe
