// Running a shell command line and capturing its standard output: how the tests that drive
// the lathe binary (and the scripts around it) call it.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace lathe::testing {

struct CommandResult {
  int status;       // the exit status; -1 when the command did not exit (a signal)
  std::string out;  // its standard output (redirect stderr in `cmd` to capture it too)
};

inline CommandResult run_command(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

}  // namespace lathe::testing
