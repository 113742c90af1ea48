#!/usr/bin/env bash
# Installs dependencies, builds lathe, and fine-tunes the bundled stories260K model on
# GSM8K questions (about a minute on 2 cores). The result is runs/quickstart/final/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/lathe train configs/quickstart.yaml "$@"
