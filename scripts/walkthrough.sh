#!/usr/bin/env bash
# Runs the README walkthrough on MovieLens 100K (../shared/data/ml-100k beside the repo, or $MFREC_DATA)
# in a temp folder with the release binary, and prints every command's output with the figures that
# depend on the clock masked (seconds, timestamps). Two commits whose walkthroughs print the same
# thing behave the same for a user: `scripts/walkthrough.sh > before.txt`, change, run again, diff.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
data="$(cd "${MFREC_DATA:-$repo/../shared/data}" && pwd)"
[ -f "$data/ml-100k/u.data" ] || { echo "walkthrough.sh: no $data/ml-100k/u.data" >&2; exit 2; }

(cd "$repo" && swift build -c release --product mfrec >/dev/null)
bin="$(cd "$repo" && swift build -c release --show-bin-path)/mfrec"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export MFREC_DB="$work/mfrec.db" MFREC_WORK="$work" MFREC_DATA_DIR="$data"

# Times ("0.18 s", "12 ms", the `seconds` column of a table) and ISO timestamps vary run to run.
mask() {
    python3 -c '
import re, sys, os
work = os.environ["MFREC_WORK"]
end = None  # where the `seconds` column of the current table ends (columns are right-aligned)
for line in sys.stdin:
    line = line.rstrip("\n").replace(work, "<work>").replace(os.environ["MFREC_DATA_DIR"], "<data>")
    line = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", line)
    line = re.sub(r"\b\d+(\.\d+)? (s|ms|µs)\b", r"<t> \2", line)
    m = re.search(r"\bseconds\b", line)
    if m and not re.search(r"\d", line):
        end = m.end()
    elif not line.strip():
        end = None
    elif end is not None:
        for n in re.finditer(r"\d+\.\d+", line):
            if n.end() == end:
                line = line[:n.start()] + "<t>".rjust(n.end() - n.start()) + line[n.end():]
    print(line)
'
}

step() {
    echo "\$ mfrec $*" | mask
    "$bin" "$@" 2>&1 | mask
    echo
}

step ingest "$data/ml-100k/u.data" --items "$data/ml-100k/u.item"
step info
step train
step train --factors 3,5,10,20 --quiet
step rollback 1
step eval --compare
step info
step export --format npy -o emb
ls emb
echo
step recommend 1 -n 5
step recommend 1 -n 3 --explain
step recommend 1 -n 5 --by rating
step similar 50 -n 5
step similar 50 -n 5 --by ranking
step predict 1 50
step rate newcomer 1 5
step rate newcomer 50 5
step rate newcomer 121 3
step recommend newcomer -n 5 --explain
step recommend newcomer -n 3 --by rating
step snapshot list
step snapshot diff 1 2
step rollback 1
step rate 1 50 5
# A stream of new ratings: the last 5,000 lines of u.data, rated once more by their users.
tail -n 5000 "$data/ml-100k/u.data" | awk -F'\t' '{ r = ($3 % 5) + 1; print $1 "\t" $2 "\t" r "\t" $4 + 1 }' > new-ratings.data
step ingest new-ratings.data --update
step snapshot create --note walkthrough
step snapshot list
step recommend --all -n 10 --output all.csv
wc -l < all.csv
md5sum all.csv | cut -d' ' -f1
