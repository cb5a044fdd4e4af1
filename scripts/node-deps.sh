#!/usr/bin/env bash
# Installs the project's npm dependencies from package-lock.json when node_modules is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "libqemu: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi
