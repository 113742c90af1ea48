#!/usr/bin/env bash
# Packs the CUDA build for a lent GPU machine, which has the NVIDIA driver, the CUDA
# toolkit, cmake, ninja and python3 but none of Debian's -dev libraries and no network:
#   gpu-bundle/bin/   lathe, lathe_tests, bench_cuda_kernels (stripped)
#   gpu-bundle/lib/   every shared library they load that is not part of glibc or the
#                     driver (oneDNN, Open MPI and its dependencies, yaml-cpp, libgomp,
#                     libstdc++, the CUDA runtime); the largest xz-compressed
#   gpu-bundle/env.sh sets LD_LIBRARY_PATH (the bundle first, then the machine's toolkit)
#   gpu-bundle/golden/ the PyTorch goldens of the whole-model tests (4 MiB)
# cuBLASLt (libcublasLt.so.13, ~520 MiB) is too large to carry: the GPU machine's CUDA 13
# toolkit provides it (/usr/local/cuda/lib64). Copy the repository with gpu-bundle/ to
# the GPU machine and run scripts/gpu_check.sh there.
#   bash scripts/gpu_bundle.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=build-cuda
OUT=gpu-bundle

if command -v ccache >/dev/null; then
  LAUNCH=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
else
  LAUNCH=()
fi
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATHE_CUDA=ON -DLATHE_TESTS=ON \
  -DLATHE_WERROR=ON -DCUDAToolkit_ROOT=/usr/local/cuda "${LAUNCH[@]}" "$@" >/dev/null
nice -n 10 cmake --build "$BUILD" -j "${LATHE_JOBS:-2}" --target lathe lathe_tests bench_cuda_kernels

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
BINS=("$BUILD/lathe" "$BUILD/tests/lathe_tests" "$BUILD/bench_cuda_kernels")
for b in "${BINS[@]}"; do
  cp "$b" "$OUT/bin/"
  strip --strip-unneeded "$OUT/bin/$(basename "$b")"
done

# glibc's own libraries and the driver's stay the machine's: a second libc cannot be
# loaded beside the system one, and libcuda must match the kernel module. cuBLASLt and
# cuBLAS come from the machine's toolkit (see above).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libresolv\.so|libcuda\.so|libnvidia-|libcublasLt\.so|libcublas\.so)'
for b in "${BINS[@]}"; do
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if [[ $name =~ $skip ]]; then continue; fi
  cp -L "$path" "$OUT/lib/$name"
  strip --strip-unneeded "$OUT/lib/$name" 2>/dev/null || true
done
# The PyTorch goldens of the whole-model CUDA tests (tests/reference/llama_ref.py needs
# torch, which the build machine has): written like ctest's reference.generate fixture,
# again whenever the reference script is newer; gpu_check.sh points LATHE_GOLDEN_DIR here.
GOLDEN=$BUILD/tests/golden
if [ ! -f "$GOLDEN/manifest.json" ] || [ tests/reference/llama_ref.py -nt "$GOLDEN/manifest.json" ]; then
  "${LATHE_PYTHON:-/usr/bin/python3}" tests/reference/llama_ref.py --out "$GOLDEN"
fi
mkdir -p "$OUT/golden"
for g in gqa_untied mha_tied llama3_rope manifest.json; do cp -r "$GOLDEN/$g" "$OUT/golden/"; done

if [ ! -f "$OUT/lib/libcudart.so.13" ] && [ -f /usr/local/cuda/lib64/libcudart.so.13 ]; then
  cp -L /usr/local/cuda/lib64/libcudart.so.13 "$OUT/lib/"
fi

# Libraries above 8 MiB (oneDNN: 38 MiB) travel xz-compressed (about a quarter of the
# size); scripts/gpu_check.sh unpacks them on the GPU machine (xz, or Python's lzma).
for f in "$OUT"/lib/*; do
  if [ "$(stat -c %s "$f")" -gt $((8 << 20)) ]; then xz -T2 -6 "$f"; fi
done

cat >"$OUT/env.sh" <<'ENV'
# source gpu-bundle/env.sh: the bundle's libraries first, then the machine's CUDA toolkit
# (cuBLASLt). OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning.
BUNDLE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CUDA_LIB="${CUDA_HOME:-/usr/local/cuda}/lib64"
export LD_LIBRARY_PATH="$BUNDLE_DIR/lib:$CUDA_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$BUNDLE_DIR/bin:$PATH"
export OMP_WAIT_POLICY=PASSIVE
ENV
git -C "$ROOT" rev-parse HEAD >"$OUT/COMMIT" 2>/dev/null || true

echo "gpu-bundle: $(du -sh "$OUT" | cut -f1) ($(du -sm "$OUT" | cut -f1) MiB)"
# shellcheck disable=SC2012
ls -la "$OUT/bin" "$OUT/lib" | awk 'NF > 5 {printf "  %10d  %s\n", $5, $9}'
size=$(du -sm "$OUT" | cut -f1)
if [ "$size" -gt 60 ]; then
  echo "warning: the bundle is $size MiB, over the 60 MiB budget" >&2
fi
