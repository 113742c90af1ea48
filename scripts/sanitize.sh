#!/usr/bin/env bash
# Builds lathe, its tests and the lathe binary the tests spawn with AddressSanitizer and
# UndefinedBehaviorSanitizer (and LeakSanitizer) into build-asan/, and runs the whole ctest
# suite there. Any sanitizer report fails the test that triggered it. Arguments go to ctest.
#   bash scripts/sanitize.sh
#   bash scripts/sanitize.sh -R Safetensors     a subset
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# RelWithDebInfo (-O2 -g): the suite trains real models (stories260K, the PyTorch goldens),
# which at -O1 ran slower than the time -O2 costs to compile; -g gives file:line in reports.
cmake -S . -B build-asan "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLATHE_SANITIZE=ON -DLATHE_TESTS=ON -DLATHE_WERROR=ON >/dev/null
cmake --build build-asan -j "$(nproc)"

supp="$PWD/tests/sanitizers"
# halt_on_error / -fno-sanitize-recover: the first report ends the process with an error.
# detect_leaks: LeakSanitizer on lathe's code; third-party leaks are named in lsan.supp.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"

# Left out, each for the reason given:
#   install.deb_package  packages the build and installs it system-wide (dpkg -i, as root):
#                        an instrumented lathe would be what other users of the machine run
#                        meanwhile. The packaging is tested by scripts/test.sh; the quickstart
#                        training it runs is lathe code that e2e.gsm8k_finetune covers here.
excluded='^(install\.deb_package)$'
cd build-asan
ctest --output-on-failure -j 2 -E "$excluded" "$@"
