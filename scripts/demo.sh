#!/usr/bin/env bash
# The README's main command: host packages, npm dependencies, then the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/host-setup.sh
bash scripts/node-deps.sh
exec npx tsx examples/demo.ts "$@"
