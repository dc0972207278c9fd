#!/usr/bin/env bash
# Replays issue 12's reproductions (the defects found trying mfrec as a new user would) against an `mfrec`
# binary and says, for each, whether the defect reproduces or behaves as the issue expects. Run it against a
# binary built before the fixes and against today's: the repo's tests check the same behaviours in process,
# this shows the same behaviours on an old build, where those tests cannot run.
#   bash scripts/issue12-repro.sh .build/release/mfrec
#   bash scripts/issue12-repro.sh /tmp/old/.build/release/mfrec
# Everything happens in a temp folder it creates (links and FIFOs included): no system path is touched.
# Exit status: the number of defects that reproduce (0: all behave).
set -uo pipefail
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
DATA="$(cd "$(dirname "$0")/../../shared/data/ml-100k" && pwd)"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
cd "$T"
reproduced=0
total=0
# check NAME CONDITION...: the condition (a shell command) holds when mfrec behaves as the issue expects.
check() {
    local name="$1"
    shift
    total=$((total + 1))
    if "$@" >/dev/null 2>&1; then
        echo "behaves      $name"
    else
        echo "REPRODUCES   $name"
        reproduced=$((reproduced + 1))
    fi
}
# status CMD...: the exit status of CMD under a 10 s timeout (124 when it hung, 128+N when it died of signal N).
status() { timeout -s KILL 10 "$@" >/dev/null 2>&1; echo $?; }

tune=()
"$BIN" train --help 2>/dev/null | grep -q -- "--tune" && tune=(--tune off)
"$BIN" ingest "$DATA/u.data" --items "$DATA/u.item" --db m.db >/dev/null 2>&1
"$BIN" train --db m.db --factors 8 --epochs 3 "${tune[@]}" >/dev/null 2>&1 || { echo "cannot train"; exit 100; }

# 1. Output files: links followed, FIFOs written through, - is standard output.
echo old >target.csv
ln -s target.csv link.csv
"$BIN" recommend --all -n 3 --db m.db --output link.csv >/dev/null 2>&1
check "1 --output through a symlink keeps the link and writes its target" \
    bash -c '[ -L link.csv ] && grep -q "^user" target.csv'
mkfifo pipe
(timeout 10 cat pipe >fromfifo.csv) &
reader=$!
timeout -s KILL 10 "$BIN" recommend --all -n 3 --db m.db --output pipe >/dev/null 2>&1
wait $reader
check "1 --output to a FIFO writes through it (the FIFO stays a FIFO)" bash -c '[ -p pipe ] && grep -q "^user" fromfifo.csv'
timeout -s KILL 10 "$BIN" recommend --all -n 3 --db m.db --output - >stdout.csv 2>/dev/null
check "1 --output - writes standard output, no file named -" bash -c '[ ! -e ./- ] && grep -q "^user" stdout.csv'
check "1 export -o - is a usage error (export writes a folder)" bash -c "[ \$(timeout 10 '$BIN' export -o - --db m.db >/dev/null 2>&1; echo \$?) = 64 ]"

# 2. Traps: out-of-range numbers are usage errors (exit 64), not crashes.
for args in "similar 1 -n=-1" "eval --max-users=-1" "snapshot diff 1 1 --users=-1" "eval --top 0" "recommend 1 -n -1"; do
    # shellcheck disable=SC2086
    code=$(status "$BIN" $args --db m.db)
    check "2 mfrec $args exits 64 (got $code)" test "$code" = 64
done

# 3. --threads 0 spun forever; temp files of dead processes are removed by the next run.
code=$(status "$BIN" recommend --all --threads 0 -n 3 --output x.csv --db m.db)
check "3 recommend --all --threads 0 exits 64 at once (got $code)" test "$code" = 64
check "3 no x.csv.tmp-PID file left behind" bash -c '! ls x.csv.tmp-* 2>/dev/null | grep -q .'
echo stale >y.csv.tmp-999999
timeout -s KILL 30 "$BIN" recommend --all -n 3 --output y.csv --db m.db >/dev/null 2>&1
check "3 a later run removes OUTPUT.tmp-PID of a process that is gone" test ! -e y.csv.tmp-999999

# 4. Read-only commands create or change nothing; unrelated SQLite files are refused; failed first ingest cleans up.
for cmd in "info" "recommend 1" "snapshot list"; do
    db="typo-${cmd// /-}.db"
    # shellcheck disable=SC2086
    timeout -s KILL 10 "$BIN" $cmd --db "$db" >/dev/null 2>&1
    check "4 mfrec $cmd --db (missing file) creates no database" test ! -e "$db"
done
python3 -c "import sqlite3; c = sqlite3.connect('other.sqlite'); c.execute('create table t (x)'); c.commit()"
before=$(md5sum other.sqlite | cut -d' ' -f1)
code=$(status "$BIN" info --db other.sqlite)
after=$(md5sum other.sqlite | cut -d' ' -f1)
check "4 info on an unrelated SQLite file is refused (got $code) and changes nothing" \
    bash -c "[ $code != 0 ] && [ $before = $after ] && [ ! -e other.sqlite-wal ]"
timeout -s KILL 10 "$BIN" ingest nosuch.csv --db fresh.db >/dev/null 2>&1
check "4 a failed first ingest leaves no database behind" test ! -e fresh.db

# 5. The live model is what export sees: a user added by rate is in the exported vectors.
cp m.db live.db
[ -e m.db.items ] && cp m.db.items live.db.items
timeout -s KILL 10 "$BIN" rate newcomer 50 5 --db live.db >/dev/null 2>&1
timeout -s KILL 10 "$BIN" rate newcomer 100 4 --db live.db >/dev/null 2>&1
timeout -s KILL 30 "$BIN" export -o exported --db live.db >/dev/null 2>&1
check "5 export without --snapshot writes the live model (a user added by rate is there)" \
    bash -c 'grep -rqs "^newcomer" exported/'

# 6. The rating scale: the smallest standard scale holding the file, the same rule for every writer.
printf '1\t1\t2\t1\n1\t2\t4\t2\n2\t1\t3\t3\n2\t2\t3\t4\n' >two-to-four.data
"$BIN" ingest two-to-four.data --db scale.db >/dev/null 2>&1
"$BIN" train --db scale.db --factors 2 --epochs 2 "${tune[@]}" >/dev/null 2>&1
code=$(status "$BIN" rate 3 1 5 --db scale.db)
check "6 ratings 2-4 give the scale 1-5: rate 3 1 5 is accepted (got $code)" test "$code" = 0
printf '1\t1\t3\t1\n' >one.data
check "6 a one-rating file gets a standard scale (1-5), not 3-3" \
    bash -c "'$BIN' ingest one.data --db one.db 2>&1 | grep -q 'scale 1.*5'"
printf '9\t9\t7\t9\n' >seven.data
code=$(status "$BIN" ingest seven.data --update --db scale.db)
check "6 ingest --update refuses a rating outside the scale as rate does (got $code)" test "$code" != 0

# 8. A crafted item matrix header is reported corrupt and rebuilt, not a trap.
cp m.db crafted.db
cp m.db.items crafted.db.items 2>/dev/null
python3 -c "
f = open('crafted.db.items', 'r+b'); f.seek(16); f.write(b'\xff' * 8); f.close()" 2>/dev/null
code=$(status "$BIN" recommend 1 -n 3 --db crafted.db)
check "8 a crafted item-matrix header does not crash recommend (got $code)" test "$code" = 0

# 9. The smaller ones.
printf '1\t1\t5\t1\n   \n2\t1\t4\t2\n' >blank.data
check "9 a whitespace-only line is accepted like a blank one" "$BIN" ingest blank.data --db blank.db
printf '1\t1\t5\n2\t1\t4\n' >nots.tsv
check "9 TSV without timestamps is accepted (CSV allows it)" "$BIN" ingest nots.tsv --db nots.db
printf 'user,item,rating\n"x,y",1,5\nz,1,4\n' >quoted.csv
check "9 a quoted CSV field holding the delimiter is one field" \
    bash -c "'$BIN' ingest quoted.csv --db quoted.db 2>&1 | grep -q '2 users'"
check "9 --db \"\" says what is wrong (not 'cannot switch to WAL')" \
    bash -c "! '$BIN' info --db '' 2>&1 | grep -q 'WAL'"
check "9 '1 rating', not '1 ratings'" bash -c "'$BIN' ingest one.data --db one2.db 2>&1 | grep -q '1 rating\\b'"
"$BIN" snapshot create --db m.db >/dev/null 2>&1
n1=$("$BIN" snapshot list --db m.db 2>/dev/null | wc -l)
"$BIN" snapshot create --db m.db >/dev/null 2>&1
n2=$("$BIN" snapshot list --db m.db 2>/dev/null | wc -l)
check "9 snapshot create with no change makes no duplicate ($n1 -> $n2 lines)" test "$n1" = "$n2"
check "9 snapshot list --format csv prints CSV" \
    bash -c "'$BIN' snapshot list --format csv --db m.db 2>/dev/null | head -1 | grep -q ','"
check "9 eval --json has rmse" bash -c "'$BIN' eval --json --db m.db 2>/dev/null | grep -q rmse"
: >empty.data
check "9 an empty ratings file is not a silent success" \
    bash -c "! '$BIN' ingest empty.data --db empty.db >/dev/null 2>&1 || '$BIN' ingest empty.data --db empty2.db 2>&1 | grep -qi warn"

echo "$reproduced of $total reproduce"
exit "$reproduced"
