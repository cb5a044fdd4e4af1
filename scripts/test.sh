#!/usr/bin/env bash
# The README's test command: host packages, npm dependencies, type check, then the whole suite
# against real QEMU and private libvirtds the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/host-setup.sh
bash scripts/node-deps.sh
npx tsc -p tsconfig.json --noEmit
report=$(mktemp -t libqemu-vitest.XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line, whatever reporter is in use: "N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) { console.error("libqemu: no test ran"); process.exit(1); }
' "$report" || status=1
exit "$status"
