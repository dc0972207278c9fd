#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (ASan on). Out of CI; run before a release.
#   bash scripts/fuzz.sh TARGET SECONDS     one target (ratings, items, item-matrix, snapshot-blob, cooccurrence, cli)
#   bash scripts/fuzz.sh all SECONDS        every target, two at a time (one per core)
# The corpus lives in fuzz/corpus/TARGET: seeded with valid inputs (`mfrec-fuzz --write-seeds`), grown by
# the run, then minimized with -merge=1 (kept under 2 MB). A crash is copied to fuzz/regressions/TARGET, which `swift test` replays.
# The cli target runs command lines in-process against a trained database in a temp folder (Sources/mfrec-fuzz/CLIFuzz.swift);
# its dictionary (every command and option name from `mfrec --experimental-dump-help`, plus typical values) is made here.
# The fuzz flags live only here: the package builds and tests without them.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}
targets=(ratings items item-matrix snapshot-blob cooccurrence cli)

build() {
    swift build -c release --product mfrec-fuzz --scratch-path .build-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -D -Xswiftc FUZZING -Xswiftc -use-ld=lld 2>&1 | tail -1
}

run_one() {
    local t=$1 bin work
    bin=$(swift build -c release --product mfrec-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -D -Xswiftc FUZZING -Xswiftc -use-ld=lld --show-bin-path)/mfrec-fuzz
    work=$(mktemp -d)
    mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t" "$work/new"
    cp "$seeds/$t"/* "$work/new/"
    # A run: new inputs go to $work/new; the kept corpus is read too.
    set +e
    local extra=()
    # cli: command lines are short; ASan's leak check is off (ArgumentParser and Foundation keep caches per process).
    if [ "$t" = cli ]; then extra=(-dict="$dict" -max_len=512 -detect_leaks=0); fi
    (cd "$work" && TMPDIR="$work" MFREC_FUZZ_TARGET=$t "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
        -rss_limit_mb=4096 -print_final_stats=1 -close_fd_mask=1 -artifact_prefix="$work/" "${extra[@]}" \
        "$work/new" "$OLDPWD/fuzz/corpus/$t") >"$work/log" 2>&1
    status=$?
    set -e
    local execs cov
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$' || echo 0)
    cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 | grep -o '[0-9]*' || echo 0)
    local crashes=0
    for f in "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-*; do
        [ -e "$f" ] || continue
        cp "$f" "fuzz/regressions/$t/"
        crashes=$((crashes + 1))
    done
    # Minimize: keep the inputs that add coverage, old and new.
    local merged="$work/merged"
    mkdir -p "$merged"
    # Absolute paths: the cli target changes its current folder.
    TMPDIR="$work" MFREC_FUZZ_TARGET=$t "$bin" -merge=1 -close_fd_mask=1 "${extra[@]}" "$merged" "$PWD/fuzz/corpus/$t" "$work/new" \
        >/dev/null 2>&1 || true
    if [ -n "$(ls -A "$merged")" ]; then
        rm -f fuzz/corpus/"$t"/*
        cp "$merged"/* "fuzz/corpus/$t/"
    fi
    echo "$t: $execs executions in ${seconds}s ($((execs / seconds))/s), coverage $cov edges (libFuzzer cov), corpus $(ls "fuzz/corpus/$t" | wc -l) files ($(cat fuzz/corpus/"$t"/* | wc -c) bytes), $crashes crashes (exit $status)"
    if [ "$crashes" -gt 0 ]; then tail -40 "$work/log"; fi
    rm -rf "$work"
    [ "$crashes" -eq 0 ]
}

build
# Valid inputs to start from, written by the plain build of the same targets.
seeds=$(mktemp -d)
swift build -c release --product mfrec-fuzz 2>&1 | tail -1
swift build -c release --product mfrec 2>&1 | tail -1
"$(swift build -c release --product mfrec-fuzz --show-bin-path)/mfrec-fuzz" --write-seeds "$seeds"
dict="$seeds/cli.dict"
"$(swift build -c release --product mfrec-fuzz --show-bin-path)/mfrec" --experimental-dump-help | python3 -c '
import json, sys
words = set()
def walk(command):
    for argument in command.get("arguments", []):
        for name in argument.get("names", []):
            words.add(("--" if name["kind"] == "long" else "-") + name["name"])
    for sub in command.get("subcommands", []):
        words.add(sub["commandName"])
        walk(sub)
walk(json.load(sys.stdin)["command"])
words |= {"0", "1", "-1", "2", "5", "100", "9223372036854775807", "-9223372036854775808", "0.5", "nan", "inf", "-", "u1",
          "i1", "new", "ranking", "rating", "cooccurrence", "popular", "csv", "json", "jsonl", "npy", "off", "on",
          "ratings.data", "items.item", "more.csv", "mfrec.db", "out", "Comedy", "spark"}
for word in sorted(words):
    print(json.dumps(word))
print("\"\\x0A\"")  # the argument separator
' >"$dict"
if [ "$target" = all ]; then
    failed=0
    for ((i = 0; i < ${#targets[@]}; i += 2)); do
        run_one "${targets[i]}" &
        a=$!
        b=
        if [ $((i + 1)) -lt ${#targets[@]} ]; then run_one "${targets[i + 1]}" & b=$!; fi
        wait $a || failed=1
        if [ -n "$b" ]; then wait "$b" || failed=1; fi
    done
    echo "corpus total: $(cat fuzz/corpus/*/* | wc -c) bytes"
    exit $failed
else
    run_one "$target"
fi
