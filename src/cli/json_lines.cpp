#include "cli/json_lines.h"

#include <fstream>

#include "core/error.h"

namespace lathe::cli {

void for_each_json_line(const std::string& path, const std::string& what,
                        const std::function<void(const nlohmann::json&, int64_t)>& row) {
  std::ifstream in(path, std::ios::binary);
  LATHE_CHECK(in, path, ": cannot open ", what);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail(path, ":", n, ": not valid JSON (", e.what(), ")");
    }
    row(j, n);
  }
}

}  // namespace lathe::cli
