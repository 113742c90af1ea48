#!/usr/bin/env bash
# `lathe serve` on stories260K driven by OpenAI's official Python client (the pin of
# tests/requirements.txt in .venv/): completions, chat, streaming, logprobs against the
# PyTorch reference, LoRA adapters, errors, limits and the SIGTERM drain
# (tests/serve/openai_client.py lists the checks). Skips (77) without the client.
set -euo pipefail
lathe=$1
src=$2
venv="$src/.venv"
if ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
  echo "SKIPPED: no openai in $venv; run: bash scripts/setup.sh --test"
  exit 77
fi
exec "$venv/bin/python" "$src/tests/serve/openai_client.py" "$lathe" "$src"
