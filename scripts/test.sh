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
# A file whose setup (beforeAll) failed reports its tests as skipped: they count as failed here.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  let passed = 0, failed = 0, skipped = 0;
  const brokenFiles = [];
  for (const file of r.testResults) {
    const tests = file.assertionResults;
    const setupFailed = file.status === "failed" && !tests.some((t) => t.status === "failed");
    if (setupFailed) brokenFiles.push(file.name);
    for (const t of tests) {
      if (t.status === "passed") passed++;
      else if (t.status === "failed" || setupFailed) failed++;
      else skipped++;
    }
    if (setupFailed && tests.length === 0) failed++;
  }
  for (const f of brokenFiles) console.error(`libqemu: ${f} failed before its tests ran`);
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) { console.error("libqemu: no test ran"); process.exit(1); }
  if (failed > 0) process.exit(1);
' "$report" || status=1
exit "$status"
