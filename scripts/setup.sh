#!/usr/bin/env bash
# Installs the Debian 12 packages lathe needs. Safe to re-run: does nothing when they are
# present.
#   bash scripts/setup.sh          what building and running lathe needs (the quickstart)
#   bash scripts/setup.sh --test   that, plus what the test suite and benchmarks need, and
#                                  .venv/ at the repository root: Debian's python3 with the
#                                  PyPI packages pinned in tests/requirements.txt (Ray,
#                                  TensorBoard, Selenium, transformers) and
#                                  tests/requirements-no-deps.txt (peft)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev            # oneDNN: CPU matrix products
  ocl-icd-opencl-dev     # oneDNN's CMake package requires OpenCL (its GPU runtime); only a Recommends
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libopenmpi-dev openmpi-bin   # processes and machines: data-parallel training over MPI
  libprotobuf-dev protobuf-compiler  # TensorBoard event files (output.tensorboard)
  libcpp-httplib-dev     # lathe dashboard and output.dashboard: the HTTP server (links libcpp-httplib0.11)
  libjs-dygraphs         # the dashboard's charts, compiled into the binary at build time
)
test_packages=(
  libgtest-dev           # unit tests
  iproute2               # tests/dist/two_hosts.sh: two network namespaces
  slurmctld slurmd slurm-client munge   # tests/dist/local_slurm.sh runs the sbatch script on a one-node Slurm
  python3 python3-torch python3-numpy   # the independent PyTorch reference and the bench peer
  python3-venv           # .venv/ for tests/requirements.txt (tests/dist/local_ray.sh runs Ray)
  python3-sentencepiece python3-regex python3-nltk  # independent tokenizer and metric references for the tests
  libopenblas0-pthread   # an optimized BLAS for the PyTorch peer (Debian's torch uses libblas.so.3)
  clang-format
  clang libclang-rt-14-dev libomp-dev  # scripts/fuzz.sh: libFuzzer (clang only) and clang's OpenMP
  time                   # per-process peak RSS in bench/dist_bench.sh
  dpkg-dev file          # the .deb that CPack builds (dpkg-shlibdeps), checked by the tests
  ccache                 # scripts/llama_cpp.sh (tests/io/llama_cpp.sh): llama.cpp rebuilt in a fresh clone from the cache, 57 s instead of ~7 min
  chromium chromium-driver  # tests/metrics/dashboard_browser.sh: a headless browser opens the dashboard
)
test=no
case "${1:-}" in
  --test) packages+=("${test_packages[@]}"); test=yes ;;
  "") ;;
  *) echo "usage: setup.sh [--test]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ "$test" = yes ] || exit 0

# The test suite's PyPI packages, in a virtual environment of Debian's own python3 (a
# python3 earlier on PATH, such as pyenv's, is another interpreter without Debian's
# packages). --system-site-packages keeps python3-torch and the others importable from it.
venv="$root/.venv"
requirements="$root/tests/requirements.txt"
# Installed without their dependencies: they declare a torch that Debian's 1.13.0a0 does not
# meet, and pip would bring PyPI's (see the file's header).
no_deps="$root/tests/requirements-no-deps.txt"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
# pip would ask PyPI even when nothing changed; a re-run with every pin met does nothing.
if "$venv/bin/python" "$root/scripts/pins_satisfied.py" "$requirements" "$no_deps"; then
  echo "setup: $venv has every pin of tests/requirements.txt and tests/requirements-no-deps.txt"
else
  echo "setup: installing tests/requirements.txt and tests/requirements-no-deps.txt into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$no_deps"
fi
