#!/usr/bin/env python3
"""Open-tool peers for `mfrec-bench ranking`, tuned on the same validation carve-out as mfrec.

usage: peers.py FIT VAL TRAIN TEST
Files are tab-separated user, item, rating. Each peer picks its settings by NDCG@10 on FIT -> VAL, is refitted
on TRAIN and scored on TEST with mfrec's protocol (K = 10, relevant = rating >= 4, users of TRAIN with a relevant
test item, every TRAIN item ranked except the user's TRAIN items). Prints one line per peer:
peer<TAB>chosen<TAB>val_ndcg<TAB>p10<TAB>ndcg10<TAB>coverage<TAB>fit_seconds<TAB>grid
Peers whose package is missing (implicit) are reported as skipped."""
import sys, time
import numpy as np, scipy.sparse as sp

def read(path):
    rows = [l.rstrip("\n").split("\t") for l in open(path, encoding="utf-8") if l.strip()]
    return [(r[0], r[1], float(r[2])) for r in rows]

def matrices(train, test):
    users = {u: k for k, u in enumerate(sorted({u for u, _, _ in train}))}
    items = {i: k for k, i in enumerate(sorted({i for _, i, _ in train}))}
    R = sp.csr_matrix(([r for _, _, r in train], ([users[u] for u, _, _ in train], [items[i] for _, i, _ in train])),
                      shape=(len(users), len(items)), dtype=np.float64)
    rel = {}
    for u, i, r in test:
        if r >= 4 and u in users:
            rel.setdefault(users[u], set()).add(items.get(i, -1 - len(rel.get(users[u], ()))))
    return R, rel

def score(S, R, rel, K=10):
    S = np.array(S, dtype=np.float64)
    c = R.tocoo(); S[c.row, c.col] = -np.inf
    users = np.array(sorted(rel))
    top = np.argpartition(-S[users], K, axis=1)[:, :K]
    order = np.argsort(-np.take_along_axis(S[users], top, 1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, 1)
    disc = 1 / np.log2(np.arange(2, K + 2)); p = nd = 0.0
    for row, u in zip(top, users):
        h = np.array([1.0 if t in rel[u] else 0.0 for t in row])
        p += h.sum() / K; nd += (h * disc).sum() / disc[:min(K, len(rel[u]))].sum()
    return p / len(users), nd / len(users), len(np.unique(top)) / R.shape[1]

def ease(R, lam):
    B = (R > 0).astype(np.float64); G = (B.T @ B).toarray(); G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G); W = P / (-np.diag(P)); np.fill_diagonal(W, 0)
    return B @ W

def puresvd(R, k):
    _, _, vt = sp.linalg.svds(R, k=k); return R @ vt.T @ vt

def itemknn(R, k):
    B = (R > 0).astype(np.float64); n = np.sqrt(np.asarray(B.sum(0)).ravel()) + 1e-9
    S = (B.T @ B).toarray() / n[:, None] / n[None, :]; np.fill_diagonal(S, 0)
    idx = np.argpartition(-S, k, axis=1)[:, k:]; np.put_along_axis(S, idx, 0, axis=1)
    return B @ S

def als(R, confidence, factors, reg, alpha):
    """Hu, Koren and Volinsky's implicit ALS: confidence 1 + alpha * x, x = 1 for a rated pair ("binary") or the
    rating itself ("rating": the explicit ratings as confidence, as the issue suggests)."""
    from implicit.als import AlternatingLeastSquares
    m = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=alpha, iterations=15, random_state=1)
    X = (R > 0).astype(np.float32) if confidence == "binary" else R.astype(np.float32)
    m.fit(X.tocsr(), show_progress=False)
    return np.asarray(m.user_factors) @ np.asarray(m.item_factors).T

def bpr(R, factors, lr, reg, iterations):
    from implicit.bpr import BayesianPersonalizedRanking
    m = BayesianPersonalizedRanking(factors=factors, learning_rate=lr, regularization=reg, iterations=iterations,
                                    random_state=1)
    m.fit((R > 0).astype(np.float32).tocsr(), show_progress=False)
    return np.asarray(m.user_factors) @ np.asarray(m.item_factors).T

def popular(R):
    return np.tile(np.asarray((R >= 4).sum(0)).ravel().astype(np.float64), (R.shape[0], 1))

PEERS = [
    ("popular", popular, [()]),
    ("item-kNN cosine", itemknn, [(k,) for k in (20, 50, 100, 200, 400)]),
    ("EASE", ease, [(l,) for l in (100, 250, 500, 1000, 2000)]),
    ("PureSVD", puresvd, [(k,) for k in (10, 15, 20, 30, 50)]),
    # implicit's regularization is not scaled by the rating counts: on ML-100K the useful range is 10-100.
    ("implicit ALS", als, [(c, f, r, a) for c in ("binary", "rating") for f in (32, 64, 128)
                           for r in (1.0, 10.0, 30.0, 100.0) for a in (0.5, 1.0, 3.0)]),
    ("implicit BPR", bpr, [(f, lr, reg, it) for f in (32, 64) for lr in (0.002, 0.005, 0.01) for reg in (0.001, 0.01)
                           for it in (100, 300)]),
]

def main():
    fit, val, train, test = (read(p) for p in sys.argv[1:5])
    Rf, relv = matrices(fit, val)
    Rt, relt = matrices(train, test)
    for name, fn, grid in PEERS:
        try:
            scored = [(score(fn(Rf, *g), Rf, relv)[1], g) for g in grid]
        except ImportError:
            print(f"{name}\tskipped (package not installed)", flush=True); continue
        best = max(scored, key=lambda x: x[0])
        t = time.perf_counter(); S = fn(Rt, *best[1]); seconds = time.perf_counter() - t
        p, nd, cov = score(S, Rt, relt)
        grid_text = " ".join(f"{g}:{v:.4f}" for v, g in scored)
        print(f"{name}\t{best[1]}\t{best[0]:.4f}\t{p:.4f}\t{nd:.4f}\t{cov:.4f}\t{seconds:.2f}\t{grid_text}", flush=True)

if __name__ == "__main__":
    main()
