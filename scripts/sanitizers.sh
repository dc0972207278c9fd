#!/usr/bin/env bash
# Runs the whole test suite under AddressSanitizer and ThreadSanitizer, each in its own build folder,
# optimized as CI builds it (-O: at -O0 under TSan the ML-100K tests take hours on 2 cores).
# Not part of CI's path (two extra builds); run it before a release:
#   bash scripts/sanitizers.sh            # both
#   bash scripts/sanitizers.sh address    # one
set -euo pipefail
cd "$(dirname "$0")/.."
# Leaks at process exit (the Swift runtime's and XCTest's, and every `mfrec` child the CLI tests start) are
# not memory errors, and LeakSanitizer's exit code 23 would fail the CLI tests' status checks: off.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
# Both sanitizers slow the work itself down (ASan about 2×, TSan 5–15×), so the tests' one time bound (cancellation
# within 1 s) is scaled by 10 here; correctness checks are unchanged.
export MFREC_TIME_SCALE="${MFREC_TIME_SCALE:-10}"
for sanitizer in "${@:-address thread}"; do
    for s in $sanitizer; do
        echo "== swift test --sanitize=$s"
        swift test --sanitize="$s" --scratch-path ".build-$s" -Xswiftc -O -Xcc -O2 2>&1 | tee ".build-$s.log" | grep -E "Test run|SUMMARY|WARNING: ThreadSanitizer|ERROR: AddressSanitizer" || true
        if grep -qE "ERROR: AddressSanitizer|WARNING: ThreadSanitizer" ".build-$s.log"; then
            echo "$s sanitizer reported problems: see .build-$s.log"
            exit 1
        fi
        grep -q "Test run with .* passed" ".build-$s.log" || { echo "tests failed under $s: see .build-$s.log"; exit 1; }
    done
done
echo "sanitizers: clean"
