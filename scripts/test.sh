#!/usr/bin/env bash
# The README's test command: host packages, npm dependencies, type check, then the whole suite
# against real QEMU and private libvirtds the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/host-setup.sh
bash scripts/node-deps.sh
npx tsc -p tsconfig.json --noEmit
npx vitest run "$@"
