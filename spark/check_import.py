"""Check that mfrec serves what Spark trained: compare Spark's own predictions and top-10 lists, written by
`train_als.py --check-pairs N --check-users M` into OUTPUT/check/, with `mfrec predict` and
`mfrec recommend --include-rated -n 10` on the database the model was imported into.

    python3 spark/check_import.py --mfrec .build/release/mfrec --db shop.db --spark-output model/ --by rating

Predictions must agree within --tolerance after clipping Spark's to the rating scale; lists must be equal
except for swaps of adjacent items whose Spark scores differ by less than --tie (float32 ties). Exits 1 on
any mismatch, printing the first few.
"""

import argparse
import glob
import json
import os
import subprocess
import sys


def rows(folder):
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "part-*"))):
        if path.endswith(".crc"):
            continue
        with open(path) as f:
            out.extend(json.loads(line) for line in f if line.strip())
    return out


def mfrec(args, binary, db):
    run = subprocess.run([binary, *args, "--db", db], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"check_import.py: mfrec {' '.join(args)} failed ({run.returncode}): {run.stderr.strip()}")
    return run.stdout


def same_list(spark_items, spark_scores, ours, tie):
    """Equal, or equal after swapping adjacent items whose Spark scores are within `tie`; the last place may
    hold another item only when its score ties Spark's last."""
    if len(ours) != len(spark_items):
        return False
    ours = list(ours)
    for i, item in enumerate(spark_items):
        if ours[i] == item:
            continue
        j = ours.index(item) if item in ours else None
        if j is not None and j == i + 1 and abs(spark_scores[i] - spark_scores[i + 1 if i + 1 < len(spark_scores) else i]) < tie:
            ours[i], ours[j] = ours[j], ours[i]
            continue
        if i == len(spark_items) - 1 and i > 0 and abs(spark_scores[i] - spark_scores[i - 1]) < tie:
            continue
        return False
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mfrec", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--spark-output", required=True)
    p.add_argument("--by", choices=["rating", "ranking"], required=True)
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--tie", type=float, default=1e-5)
    p.add_argument("--lists-only", action="store_true", help="skip the predictions (a repeat check)")
    p.add_argument("--scale", default="1,5", help="rating scale min,max (Spark's predictions are clipped to it)")
    args = p.parse_args()
    low, high = (float(x) for x in args.scale.split(","))
    failures = []

    pairs = rows(os.path.join(args.spark_output, "check", "predictions")) if args.by == "rating" and not args.lists_only else []
    worst = 0.0
    for r in pairs:
        # predict prints the rating with 6 decimals when asked for JSON; plain output has 4.
        got = json.loads(mfrec(["predict", r["user"], r["item"], "--format", "json"], args.mfrec, args.db))
        want = min(max(r["prediction"], low), high)
        worst = max(worst, abs(got["prediction"] - want))
        if abs(got["prediction"] - want) > args.tolerance:
            failures.append(f"predict {r['user']!r} {r['item']!r}: mfrec {got['prediction']}, Spark {want}")

    lists = rows(os.path.join(args.spark_output, "check", "recommendations"))
    matched = 0
    for r in lists:
        out = json.loads(mfrec(["recommend", r["user"], "--by", args.by, "--include-rated", "-n", str(len(r["items"])),
                                "--format", "json"], args.mfrec, args.db))
        ours = [x["item"] for x in out["items"]]
        if same_list(r["items"], r["scores"], ours, args.tie):
            matched += 1
        else:
            failures.append(f"recommend {r['user']!r} --by {args.by}: mfrec {ours}, Spark {r['items']}")

    print(f"check_import: {len(pairs)} predictions (largest difference {worst:.2e}), "
          f"{matched}/{len(lists)} top-{len(lists[0]['items']) if lists else 10} lists equal to Spark's")
    if not pairs and not lists:
        failures.append("nothing to check: run train_als.py with --check-users/--check-pairs")
    if failures:
        print("\n".join(failures[:5]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
