#!/usr/bin/env bash
# Runs one Python test of tests/interop/ with the project's .venv (the pins of
# tests/requirements.txt and tests/requirements-no-deps.txt), or skips (77) naming what is
# missing there.
#   in_venv.sh REPO "module ..." SCRIPT [ARGS...]
set -euo pipefail
src=$1
modules=$2
shift 2
python="$src/.venv/bin/python"
for m in $modules; do
  if ! "$python" -c "import $m" 2>/dev/null; then
    echo "SKIPPED: no Python package '$m' in $src/.venv; run: bash scripts/setup.sh --test"
    exit 77
  fi
done
# OpenMP threads sleep when idle: lathe and PyTorch take turns on the same cores.
export OMP_WAIT_POLICY=PASSIVE
exec "$python" "$@"
