#!/usr/bin/env bash
# Installs what lathe needs to build and run, builds it (without the tests), and fine-tunes
# the bundled stories260K model on GSM8K questions. The result is runs/quickstart/final/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh -DLATHE_TESTS=OFF
# Running the quickstart again starts the demo over (a run folder holds one run, so without
# output.overwrite=true a second fresh run into runs/quickstart would refuse).
./build/lathe train configs/quickstart.yaml output.overwrite=true "$@"
