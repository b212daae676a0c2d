#!/usr/bin/env bash
# Runs the tap suite (compiled tests in build/test) and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(build/test/*.test.js)
out=$(mktemp)
npx tap --disable-coverage --jobs=2 --timeout=600 "${files[@]}" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: ' "$out" | tail -n 1)
rm -f "$out"
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
pass=${pass:-0}
failed=${failed:-0}
# Any failure tap reports without counting it (a crashed file) still fails the run.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "${pass} passed, ${failed} failed"
exit "$status"
