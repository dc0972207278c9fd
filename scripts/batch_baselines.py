"""Same-run baselines for `mfrec-bench batch` (issue 16): scoring every user against every item with the
matrices `mfrec export --format npy` wrote, in blocks of 2,048 users.

  sgemm     numpy (OpenBLAS) blocked sgemm, no selection: the arithmetic floor
  argpart   the same plus numpy argpartition/argsort per row (top-n, no exclusion)
  implicit  implicit's C++ topk (blocked sgemm + per-row heap), when `pip install implicit` is done

Prints one line per baseline: NAME MEDIAN_SECONDS (the median of --runs runs after one warm-up).
"""
import argparse
import statistics
import sys
import time

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("folder")
parser.add_argument("--model", choices=["rating", "ranking"], default="rating")
parser.add_argument("--n", type=int, default=10)
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--block", type=int, default=2048)
parser.add_argument("--only", choices=["sgemm", "argpart", "implicit"], action="append",
                    help="run only these baselines (repeatable; default: all)")
args = parser.parse_args()

prefix = "" if args.model == "rating" else "ranking_"
users = np.ascontiguousarray(np.load(f"{args.folder}/{prefix}user_factors.npy"), dtype=np.float32)
items = np.ascontiguousarray(np.load(f"{args.folder}/{prefix}item_factors.npy"), dtype=np.float32)
item_t = np.ascontiguousarray(items.T)
print(f"# {users.shape[0]} users x {items.shape[0]} items x k {items.shape[1]}", file=sys.stderr)


def sgemm():
    for s in range(0, users.shape[0], args.block):
        users[s:s + args.block] @ item_t


def argpart():
    n = args.n
    for s in range(0, users.shape[0], args.block):
        scores = users[s:s + args.block] @ item_t
        top = np.argpartition(-scores, n, axis=1)[:, :n]
        order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
        np.take_along_axis(top, order, axis=1)


def timed(body):
    body()  # warm-up
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


wanted = set(args.only or ["sgemm", "argpart", "implicit"])
if "sgemm" in wanted:
    print(f"sgemm {timed(sgemm):.4f}")
if "argpart" in wanted:
    print(f"argpart {timed(argpart):.4f}")
try:
    if "implicit" not in wanted:
        raise ImportError
    from implicit.cpu.topk import topk  # noqa: E402

    def implicit_topk():
        for s in range(0, users.shape[0], args.block):
            topk(items, users[s:s + args.block], args.n, num_threads=2)

    print(f"implicit {timed(implicit_topk):.4f}")
except ImportError:
    if "implicit" in wanted:
        print("implicit -")
