#!/usr/bin/env bash
# The Spark path end to end, on ~200k generated ratings with non-numeric user and item keys:
#   mfrec ingest → mfrec export --ratings → spark/train_als.py (local[2]) → mfrec import spark → check
# that mfrec predicts and ranks as Spark does (spark/check_import.py), that a rating moves the imported
# models, and that rollback restores the previous answers. Installs a pinned PySpark (pip) and a Java
# runtime (apt) when missing, and fails — never skips — when it cannot run.
#
#   scripts/spark-roundtrip.sh            # builds mfrec with the test command's flags
#   MFREC=/path/to/mfrec scripts/spark-roundtrip.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PYSPARK_VERSION=3.5.3   # tested with Java 17

install_start=$(date +%s.%N)
if ! command -v java >/dev/null 2>&1; then
    echo "installing a Java runtime"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y openjdk-17-jre-headless
fi
if ! python3 -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$PYSPARK_VERSION')" 2>/dev/null; then
    echo "installing pyspark $PYSPARK_VERSION"
    python3 -m pip install --quiet "pyspark==$PYSPARK_VERSION"
fi
if [ -z "${MFREC:-}" ]; then
    swift build --product mfrec -Xswiftc -O -Xcc -O2
    MFREC="$repo/.build/debug/mfrec"
fi
install_end=$(date +%s.%N)

start=$(date +%s.%N)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
db="$work/shop.db"
spark() {
    spark-submit --master 'local[2]' --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=8 \
        "$repo/spark/train_als.py" "$@" >"$work/spark.log" 2>"$work/spark.err" || {
        tail -40 "$work/spark.err" >&2
        echo "spark-roundtrip: the Spark job failed" >&2
        exit 1
    }
    tail -1 "$work/spark.log"
}
check() { python3 "$repo/spark/check_import.py" --mfrec "$MFREC" --db "$db" "$@"; }
step() { echo "== $* ($(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.0f", n - s }') s)"; }

step "generate 200,000 ratings with string keys, ingest, export --ratings"
"$MFREC" generate --users 2000 --items 1500 --ratings 200000 --seed 7 -o gen.csv >/dev/null
awk -F, 'NR == 1 { print "user,item,rating,timestamp"; next }
         { printf "cust-%05d-%s,sku:%s/\"v%d\",%s,%s\n", $1, substr("abcdefghij", $1 % 10 + 1, 3), $2, $2 % 3, $3, $4 }' \
    gen.csv >keyed.csv
"$MFREC" ingest keyed.csv --db "$db"
"$MFREC" export --ratings ratings.csv.gz --db "$db"
"$MFREC" export --ratings ratings.jsonl --db "$db"

step "Spark: explicit ALS (the rating model), from the CSV"
spark --ratings ratings.csv.gz --output als-rating --model rating --rank 10 --max-iter 10 --reg-param 0.05 \
    --check-users 50 --check-pairs 1000
"$MFREC" import spark als-rating --as rating --db "$db"
check --spark-output als-rating --by rating

step "Spark: implicit ALS (the ranking model), from the JSON Lines, factors gzip-compressed"
spark --ratings ratings.jsonl --output als-implicit --model implicit --rank 10 --max-iter 10 --reg-param 0.05 \
    --alpha 2 --check-users 50 --compression gzip
"$MFREC" import spark als-implicit --as ranking --db "$db"
check --spark-output als-implicit --by ranking
# The rating model was kept beside the imported ranking model.
check --spark-output als-rating --by rating --lists-only

step "a rating moves both imported models; rollback restores the previous answers"
user=$(python3 -c "import json,glob; print(json.loads(open(sorted(glob.glob('als-implicit/check/recommendations/part-*'))[0]).readline())['user'])")
item=$("$MFREC" recommend "$user" --by rating -n 1 --format json --db "$db" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['items'][0]['item'])")
before_predict=$("$MFREC" predict "$user" "$item" --format json --db "$db")
before_list=$("$MFREC" recommend "$user" --by ranking -n 10 --format json --db "$db")
live=$("$MFREC" snapshot list --format json --db "$db" | python3 -c "import json,sys; print([s['id'] for s in json.load(sys.stdin) if s['live']][0])")
"$MFREC" rate "$user" "$item" 1 --db "$db"
after_predict=$("$MFREC" predict "$user" "$item" --format json --db "$db")
after_list=$("$MFREC" recommend "$user" --by ranking -n 10 --format json --db "$db")
[ "$before_predict" != "$after_predict" ] || { echo "rate did not move the imported rating model" >&2; exit 1; }
[ "$before_list" != "$after_list" ] || { echo "rate did not move the imported ranking model's list" >&2; exit 1; }
"$MFREC" rollback "$live" --db "$db"
"$MFREC" snapshot list --db "$db"
# The rating stays stored, so the user's list is the ALS user step over their ratings now; the rating
# model's prediction is the imported snapshot's again.
restored=$("$MFREC" predict "$user" "$item" --format json --db "$db")
[ "$restored" = "$before_predict" ] || {
    echo "rollback did not restore the prediction: $restored, before $before_predict" >&2
    exit 1
}
check --spark-output als-rating --by rating --lists-only

end=$(date +%s.%N)
awk -v a="$install_start" -v b="$install_end" -v c="$start" -v d="$end" \
    'BEGIN { printf "spark-roundtrip: passed; one-time installs and build %.1f s, round trip %.1f s\n", b - a, d - c }'
