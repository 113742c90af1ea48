#include "dist/strategy.h"

#include "core/error.h"

namespace lathe {

ShardStrategy shard_strategy_from_name(const std::string& n) {
  if (n == "no_shard" || n == "ddp") return ShardStrategy::NoShard;
  if (n == "zero1") return ShardStrategy::Zero1;
  if (n == "shard_grad_op" || n == "zero2") return ShardStrategy::Zero2;
  if (n == "full_shard" || n == "zero3") return ShardStrategy::FullShard;
  if (n == "hybrid_shard" || n == "hybrid") return ShardStrategy::HybridShard;
  fail("unknown dist.strategy '", n, "': use no_shard (ddp), zero1, shard_grad_op (zero2), "
       "full_shard (zero3) or hybrid_shard");
}

const char* shard_strategy_name(ShardStrategy s) {
  switch (s) {
    case ShardStrategy::NoShard: return "no_shard";
    case ShardStrategy::Zero1: return "zero1";
    case ShardStrategy::Zero2: return "shard_grad_op";
    case ShardStrategy::FullShard: return "full_shard";
    case ShardStrategy::HybridShard: return "hybrid_shard";
  }
  return "?";
}

}  // namespace lathe
