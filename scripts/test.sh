#!/usr/bin/env bash
# Installs dependencies, builds with warnings as errors, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/build.sh -DLATHE_WERROR=ON -DLATHE_TESTS=ON
# The CUDA backend must keep compiling even where no GPU can run it.
if [ -x /usr/local/cuda/bin/nvcc ]; then
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATHE_CUDA=ON -DLATHE_TESTS=OFF \
    -DLATHE_WERROR=ON -DCUDAToolkit_ROOT=/usr/local/cuda >/dev/null
  cmake --build build-cuda --target lathe_cuda
  echo "CUDA backend: compiled (its GPU test runs only on a machine with a GPU)"
else
  echo "CUDA backend: not compiled (no CUDA toolkit at /usr/local/cuda)"
fi
cd build
ctest --output-on-failure -j 2 "$@"
