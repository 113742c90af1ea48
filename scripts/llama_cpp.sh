#!/usr/bin/env bash
# Builds llama.cpp's llama-server and llama-quantize (CPU only) from the llama.cpp source
# that the pinned llama-cpp-python source distribution vendors, into build/llama.cpp/.
# Debian 12 packages no llama.cpp (nor ggml: `apt-cache search llama` and `ggml` find
# nothing), and PyPI is the one registry besides Debian's that this project's machines
# reach, so the pinned sdist is where a known llama.cpp comes from. Skips everything when
# build/llama.cpp/bin holds both programs built from that pin.
#   bash scripts/llama_cpp.sh          prints the bin/ folder on its last line; exits 3
#                                      when PyPI cannot be reached, 1 on any other failure
# Two targets only: llama-quantize (the tests compare its bytes with lathe's) and
# llama-server (the tests' generation and tokenization, and serving benchmarks); they need
# ggml, libllama, llama-common, mtmd and the server, 210 compile steps, about 14 min of CPU
# time (7 min on 2 free cores; see docs/export.md), far less when ccache has them.
# Environment: LATHE_LLAMA_CPP_DIR (default <repo>/build/llama.cpp), LATHE_JOBS (default nproc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# llama-cpp-python 0.3.36 (October 2026) vendors llama.cpp with gguf-py 0.19.0, the gguf pin
# of tests/requirements.txt.
version=0.3.36
sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
dir=${LATHE_LLAMA_CPP_DIR:-$root/build/llama.cpp}
bin=$dir/bin
stamp=$dir/built-from
targets=(llama-server llama-quantize)

have_all() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "llama-cpp-python==$version" ] || return 1
  for t in "${targets[@]}"; do [ -x "$bin/$t" ] || return 1; done
  [ -f "$dir/src/convert_hf_to_gguf.py" ]  # the converter, which the tests run too
}
if have_all; then
  echo "llama_cpp: $bin has ${targets[*]} from llama-cpp-python==$version"
  echo "$bin"
  exit 0
fi

python=/usr/bin/python3
[ -x "$root/.venv/bin/python" ] && python=$root/.venv/bin/python
command -v cmake >/dev/null || { echo "llama_cpp: cmake is missing (bash scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$dir"
start=$(date +%s)
sdist=$(ls "$dir"/llama_cpp_python-$version.tar.gz 2>/dev/null || true)
if [ -z "$sdist" ]; then
  # --no-binary for this package only: with :all:, pip would also build the sdist's build
  # backend (scikit-build-core) and its own build dependencies from source, one nested
  # environment inside another, for minutes; the file is the same either way (43 s here).
  echo "llama_cpp: downloading llama-cpp-python==$version (source distribution)"
  "$python" -m pip download --quiet --disable-pip-version-check --no-binary llama-cpp-python \
    --no-deps -d "$dir" "llama-cpp-python==$version" ||
    { echo "llama_cpp: cannot download llama-cpp-python==$version from PyPI" >&2; exit 3; }
  sdist=$dir/llama_cpp_python-$version.tar.gz
fi
echo "$sha256  $sdist" | sha256sum --check --quiet ||
  { echo "llama_cpp: $sdist is not the file this script was written for (sha256)" >&2; exit 1; }
src=$dir/src
rm -rf "$src" && mkdir -p "$src"
tar -xzf "$sdist" -C "$src" --strip-components=3 "llama_cpp_python-$version/vendor/llama.cpp"
rm -f "$src/.git"  # a git submodule pointer into the sdist's own repository, absent here
fetched=$(date +%s)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# CPU only; no network at configure or build time (no prebuilt web UI, no HTTPS client);
# GGML_NATIVE: built for this machine's CPU, where the tests run it.
cmake -S "$src" -B "$dir/cmake" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF \
  -DGGML_METAL=OFF -DGGML_BLAS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_LLGUIDANCE=OFF >"$dir/configure.log" 2>&1 ||
  { tail -n 30 "$dir/configure.log" >&2; exit 1; }
# CCACHE_BASEDIR: compiler paths relative to this folder, so that a clone elsewhere on the
# same machine (CI's) reuses the objects ccache already holds.
CCACHE_BASEDIR="$dir" cmake --build "$dir/cmake" -j "${LATHE_JOBS:-$(nproc)}" \
  --target "${targets[@]}" >"$dir/build.log" ||
  { tail -n 30 "$dir/build.log" >&2; exit 1; }
mkdir -p "$bin"
for t in "${targets[@]}"; do cp "$dir/cmake/bin/$t" "$bin/$t"; done
echo "llama-cpp-python==$version" >"$stamp"
end=$(date +%s)
echo "llama_cpp: ${targets[*]} built in $((end - fetched)) s (download and unpack $((fetched - start)) s)"
echo "$bin"
