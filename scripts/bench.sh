#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/host-setup.sh
bash scripts/node-deps.sh
exec npx tsx bench/index.ts "$@"
