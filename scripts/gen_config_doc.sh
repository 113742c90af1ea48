#!/usr/bin/env bash
# Regenerates docs/config.md from the binary's own key table (a test checks they agree).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Configuration keys"
  echo
  echo 'Every key with its default, as `lathe train` prints it at start. Set them in the YAML'
  echo 'file or on the command line as `section.key=value`.'
  echo
  echo '```yaml'
  { ./build/lathe train /dev/null 2>&1 || true; } | sed -n '/^# resolved config$/,/^$/p' | sed '1d;$d'
  echo '```'
} > docs/config.md
