#!/usr/bin/env bash
# Installs dependencies, builds with warnings as errors, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh -DLATHE_WERROR=ON -DLATHE_TESTS=ON
cd build
ctest --output-on-failure -j 2 "$@"
