// The run config: a YAML file through load_config, with key=value overrides. Input: the
// YAML text, optionally a NUL and then one override per line. A config that loads must
// survive its own round trip: config_to_yaml's output loads to the same config.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "train/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [yaml, rest] = lathe::fuzz::split_at_nul(lathe::fuzz::as_text(data, size));
  const std::string path = lathe::fuzz::scratch_dir() + "/config.yaml";
  lathe::fuzz::write_file(path, yaml);
  std::vector<std::string> overrides;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    overrides.emplace_back(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  }
  std::string resolved;
  lathe::fuzz::run_guarded(
      [&] { resolved = lathe::config_to_yaml(lathe::load_config(path, overrides)); });
  if (resolved.empty()) return 0;
  lathe::fuzz::write_file(path, resolved);
  std::string again;
  try {
    again = lathe::config_to_yaml(lathe::load_config(path, {}));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resolved config does not load: %s\n%s", e.what(), resolved.c_str());
    std::abort();
  }
  if (again != resolved) {
    std::fprintf(stderr, "round trip changed the config:\n%s---\n%s", resolved.c_str(),
                 again.c_str());
    std::abort();
  }
  return 0;
}
