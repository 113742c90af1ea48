// Where lathe keeps per-user caches (measured matmul peak, tokenized datasets).
#pragma once
#include <string>

namespace lathe {

// $XDG_CACHE_HOME/lathe, else ~/.cache/lathe, else /tmp/lathe.
std::string user_cache_dir();

}  // namespace lathe
