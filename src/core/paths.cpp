#include "core/paths.h"

#include <cstdlib>

namespace lathe {

std::string user_cache_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string base = xdg && *xdg ? xdg : (home ? std::string(home) + "/.cache" : "/tmp");
  return base + "/lathe";
}

}  // namespace lathe
