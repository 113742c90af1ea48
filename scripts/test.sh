#!/usr/bin/env bash
# Installs dependencies (with the test-only ones), builds with warnings as errors, and runs
# the whole test suite. Arguments after the options go to ctest.
#   bash scripts/test.sh               everything
#   bash scripts/test.sh --isa avx2    only the tests whose results depend on the CPU's
#                                      kernels, with lathe's kernels and oneDNN capped at
#                                      that level (CI runs this after the whole suite)
set -euo pipefail
cd "$(dirname "$0")/.."
isa=""
if [ "${1:-}" = "--isa" ]; then
  isa="${2:?--isa needs a level: baseline, avx2 or avx512}"
  shift 2
fi
bash scripts/setup.sh --test
bash scripts/build.sh -DLATHE_WERROR=ON -DLATHE_TESTS=ON
# The whole CUDA build (backend, kernels, the binary and the tests) must keep compiling
# with warnings as errors even where no GPU can run it; its GPU tests run on GPU machines
# (scripts/gpu_check.sh).
if [ -z "$isa" ]; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    launcher=()
    command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
    cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATHE_CUDA=ON -DLATHE_TESTS=ON \
      -DLATHE_WERROR=ON -DCUDAToolkit_ROOT=/usr/local/cuda "${launcher[@]}" >/dev/null
    cmake --build build-cuda
    echo "CUDA backend: compiled (its GPU tests run only on a machine with a GPU)"
  else
    echo "CUDA backend: not compiled (no CUDA toolkit at /usr/local/cuda)"
  fi
fi
cd build
if [ -z "$isa" ]; then
  ctest --output-on-failure -j 2 "$@"
  exit
fi
# Kernels, products, the model against its PyTorch goldens, training, generation, the
# memory plan and the MFU peak: everything whose numbers the kernels decide.
isa_dependent='^(IsaVariants|AdamW|Hypers/AdamW|AttentionDecode|AttentionDocs|CrossEntropy|DType|RmsNorm|Rope|RoundToBf16|SwiGlu|Shapes/|Sizes/|Transposes/|MatmulCache|SharedMath|EmulatedCuda|Golden/|Packing|Lora\.|GreedyGeneration|Stories260K|MemoryPlan|MatmulPeak|Training|reference\.)'
case "$isa" in
  baseline) onednn=SSE41 ;;
  avx2) onednn=AVX2 ;;
  avx512) onednn=AVX512_CORE_AMX ;;
  *) echo "test.sh: --isa $isa: expected baseline, avx2 or avx512" >&2; exit 2 ;;
esac
echo "tests on the $isa path: LATHE_CPU_ISA=$isa ONEDNN_MAX_CPU_ISA=$onednn"
LATHE_CPU_ISA="$isa" ONEDNN_MAX_CPU_ISA="$onednn" ctest --output-on-failure -j 2 -R "$isa_dependent" "$@"
