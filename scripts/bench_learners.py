"""Benchmark of the kNN learner (numbaflip.learners.KNN) against a plain NumPy/SciPy kNN.

What it measures
----------------
For each size (Fashion-MNIST with label-free PCA features, :func:`bench.fashion_problem`;
``--data synthetic`` uses :func:`bench.make_problem`) and each q:

* numbaflip, warm JIT cache: ``certify(X, y, H, q=q, learner=KNN(k), bounds=...)`` once with
  every bound, timed per phase inside the call (the wrappers of :func:`bench.instrumented`,
  plus ``neighbours`` = ``_FittedKNN._search``: the blocked product and the selection kernel),
  then once per bound alone (``exact`` / ``kl`` / ``tight``: wall time of the whole call, the
  neighbour search included).  q = 0 runs the exact bound only.
* the reference, in the same run: plain NumPy/SciPy written from the definitions, no Numba:

  - neighbours: every direct squared distance Σ_l (h_l − x_il)² (summed in feature order, a
    NumPy loop over the d features on blocks of test rows), ``np.argpartition`` for the k-th
    value, ties by training index — the same definition as numbaflip's, so the indices must
    be *identical* (digest);
  - exact certificate of the uniform vote from the class counts of the neighbours ("sort the
    votes, count the flips"): binary, the flips that move the count of ones across
    τ_q / w (exact rational threshold); K classes, per rival the flips of the leader's votes
    (2 each) then of the other votes (1 each) that close the gap (ties to the lower class) —
    a different algorithm from numbaflip's greedy kernels, so the radii must be *identical*;
  - kl / tight: ``scripts/reference.py``'s per-point Chernoff minimisation (scipy bounded
    Brent) on the k nonzero weights, and its radius functions with the true n; compared
    with the tolerance of ``reference.compare``.

  Neighbours and kl/tight run on a seeded subsample of test points (``--ref-points``) and
  are extrapolated linearly to all m; the exact counts run on the subsample's neighbours.

Printed with it: machine, numba threads, versions (:func:`bench.machine_info`) and the load
average before and after each size (the machine may be shared: timings under load are noisy).

How long it takes
-----------------
About 2.5 min in total on 2 cores (measured at load 3.5–6.7): loading and PCA ~45 s, size a
(binary, n=13007, d=51, m=2163, k=5001) ~25 s, size b (K=10, n=60000, d=30, m=10000,
k=1001) ~70 s, mostly numbaflip's per-bound calls and the reference on its subsample.
``--quick``: tiny synthetic sizes, ~20 s.

Usage::

    python scripts/bench_learners.py                       # sizes a and b, Fashion-MNIST
    python scripts/bench_learners.py --sizes a --qs 0,0.3
    python scripts/bench_learners.py --quick --out /tmp/bl.md
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from fractions import Fraction

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B            # noqa: E402  (machine_info, loaders, PhaseTimer, instrumented)
import reference as R        # noqa: E402  (plain NumPy/SciPy Chernoff and radii)

#: name → (K or None, n, d, m, k neighbours, default qs)
SIZES = {
    "a": (None, 13007, 51, 2163, 5001, ("0", "0.3")),
    "b": (10, 60000, 30, 10000, 1001, ("0", "0.05")),
}
QUICK_SIZES = {
    "a": (None, 900, 8, 60, 101, ("0", "0.3")),
    "b": (10, 1200, 6, 80, 51, ("0", "0.05")),
}
BOUNDS = ("kl", "tight", "exact")
#: issue 13's targets (seconds, warm, all bounds)
TARGETS = {"a": 2.0, "b": 30.0}


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Reference (plain NumPy / SciPy)
# --------------------------------------------------------------------------------------------

def ref_neighbours(X, H, k, block=32):
    """(m, k) indices in increasing order: the k smallest by (direct squared distance summed
    in feature order, index); every distance computed, argpartition for the k-th value."""
    n, d = X.shape
    out = np.empty((H.shape[0], k), np.int64)
    for s in range(0, H.shape[0], block):
        Hb = H[s:s + block]
        D = np.zeros((Hb.shape[0], n))
        for col in range(d):
            t = Hb[:, col, None] - X[None, :, col]
            t *= t
            D += t
        for r, dd in enumerate(D):
            if k == n:
                out[s + r] = np.arange(n)
                continue
            kth = dd[np.argpartition(dd, k - 1)[k - 1]]
            sure = np.flatnonzero(dd < kth)
            tied = np.flatnonzero(dd == kth)[:k - sure.size]
            out[s + r] = np.sort(np.concatenate([sure, tied]))
    return out


def ref_exact_uniform(votes, k, w, q, K, n):
    """(prediction, exact radius) of the uniform vote from the neighbours' labels ``votes``
    (m, k), in integer counts.  Binary: rule w·c₁ ≥ τ_q, τ_q = (1/2 − q k w)/(1 − 2q), i.e.
    c₁ ≥ C = ⌈τ_q / w⌉ (exact rationals).  K classes: argmax of the counts (lowest class on
    ties); per rival r the gap g = c_pred − c_r must fall to ≤ 0 (r < pred) or < 0 (r > pred):
    flipping a vote of pred to r closes 2, any other vote to r closes 1."""
    m = votes.shape[0]
    if K is None:
        qf = Fraction(q)
        t = (Fraction(1, 2) / Fraction(w) - qf * k) / (1 - 2 * qf)
        C = -((-t.numerator) // t.denominator)            # ceil
        c1 = votes.sum(axis=1).astype(np.int64)
        pred = (c1 >= C).astype(np.int64)
        r1 = np.where(C <= 0, n, c1 - C)                  # flips of ones needed: c1 − C + 1
        r0 = np.where(C > k, n, C - c1 - 1)               # flips of zeros needed: C − c1
        return pred, np.where(pred == 1, r1, r0).astype(np.int64)
    counts = np.zeros((m, K), np.int64)
    np.add.at(counts, (np.repeat(np.arange(m), k), votes.ravel()), 1)
    pred = np.argmax(counts, axis=1)
    cp = counts[np.arange(m), pred]
    best = np.full(m, np.iinfo(np.int64).max)
    for r in range(K):
        need = cp - counts[:, r] + (r > pred)              # reduction that flips the vote
        other = k - cp - counts[:, r]
        flips = np.where(need <= 2 * cp, (need + 1) // 2, cp + (need - 2 * cp))
        ok = (r != pred) & ((need <= 2 * cp) | (need - 2 * cp <= other))
        best = np.where(ok, np.minimum(best, flips), best)
    radius = np.where(best == np.iinfo(np.int64).max, n, np.minimum(best - 1, n))
    return pred, radius.astype(np.int64)


def ref_smoothed(W, Y, q, K, n, bounds):
    """reference.py's per-point Chernoff on the compact rows, radii with the true n."""
    tm = {}
    t0 = time.perf_counter()
    preds, ells = [], []
    for a, yy in zip(W, Y):
        if K is None:
            p, ell, _, _ = R.binary_log_b(a, yy, q)
        else:
            p, ell, _, _ = R.multiclass_log_b(a, yy, q, K)
        preds.append(p)
        ells.append(ell)
    tm["chernoff"] = time.perf_counter() - t0
    ell = np.asarray(ells)
    Kq = 2 if K is None else K
    radius, real = {}, {}
    t0 = time.perf_counter()
    if "kl" in bounds:
        radius["kl"], real["kl"] = R.kl_radius(ell, q, Kq, n, return_real=True)
    if "tight" in bounds:
        radius["tight"], real["tight"] = R.tight_radius(ell, q, Kq, n, return_real=True)
    tm["radii"] = time.perf_counter() - t0
    return R.ReferenceResult(prediction=np.asarray(preds, np.int64), radius=radius,
                             radius_real=real, log_p_wrong=ell,
                             evaluations=np.zeros(len(preds), np.int64), timings=tm)


# --------------------------------------------------------------------------------------------
# One size
# --------------------------------------------------------------------------------------------

def _warm_up():
    import numbaflip
    from numbaflip.learners import KNN
    for K in (None, 3):
        X, y, H, _ = B.make_problem(K, 80, 4, 8, seed=1)
        numbaflip.certify(X, y, H, q="0.2", learner=KNN(7), bounds=BOUNDS, num_classes=K,
                          progress=False)


def _timed_certify(X, y, H, q, k, bounds, K):
    """(result, wall, phases) of one certify call with the phase wrappers installed."""
    import numbaflip
    from numbaflip import learners as L
    timer = B.PhaseTimer()
    orig = L._FittedKNN._search
    L._FittedKNN._search = timer.wrap("neighbours", orig)
    try:
        with B.instrumented(timer):
            t0 = time.perf_counter()
            res = numbaflip.certify(X, y, H, q=q, learner=L.KNN(k), bounds=bounds,
                                    num_classes=K, progress=False)
            wall = time.perf_counter() - t0
    finally:
        L._FittedKNN._search = orig
    phases = {p: round(timer.seconds.get(p, 0.0), 4)
              for p in ("neighbours",) + B.PHASES if timer.seconds.get(p, 0.0) > 0}
    return res, wall, phases


def run_size(name, spec, qs, ref_points, data, seed=B.SEED):
    import numbaflip
    from numbaflip.learners import KNN
    K, n, d, m, k, _ = spec
    out = {"size": name, "K": K, "n": n, "d": d, "m": m, "k": k, "data": data,
           "load_before": os.getloadavg(), "runs": []}
    t0 = time.perf_counter()
    loader = B.fashion_problem if data == "fashion" else B.make_problem
    X, y, H, yt = loader(K, n, d, m, seed)
    out["data_seconds"] = time.perf_counter() - t0
    _warm_up()
    rng = np.random.default_rng(seed + 1)
    npts = min(m, ref_points)
    rows = np.sort(rng.choice(m, size=npts, replace=False))
    scale = m / npts
    B._log(f"size {name}: reference neighbours on {npts} of {m} points ...")
    t0 = time.perf_counter()
    ref_idx = ref_neighbours(X, H[rows], k)
    ref_nb = (time.perf_counter() - t0) * scale
    fitted = KNN(k).fit(X)
    nb_idx, w = fitted.sparse_alpha(H[rows])
    out["neighbours"] = {"ref_seconds": ref_nb, "points": npts,
                         "digest": _digest(nb_idx), "ref_digest": _digest(ref_idx),
                         "identical": bool(np.array_equal(nb_idx, ref_idx))}
    for q in qs:
        bounds = ("exact",) if float(q) == 0 else BOUNDS
        B._log(f"size {name}: numbaflip q={q} {bounds} ...")
        res, wall, phases = _timed_certify(X, y, H, q, k, bounds, K)
        alone = {}
        for b in bounds if len(bounds) > 1 else ():
            t0 = time.perf_counter()
            numbaflip.certify(X, y, H, q=q, learner=KNN(k), bounds=(b,), num_classes=K,
                              progress=False)
            alone[b] = time.perf_counter() - t0
        run = {"q": q, "bounds": list(bounds), "wall": wall, "phases": phases,
               "alone": alone, "digest": B.result_digest(res),
               "accuracy": float(np.mean(res.prediction == yt)),
               "median_radius": {b: float(np.median(r)) for b, r in res.radius.items()},
               "load_after": os.getloadavg()}
        B._log(f"size {name}: q={q} numbaflip {wall:.2f} s {phases} alone {alone}")
        run["ref"] = _reference_run(res, rows, ref_idx, y, q, K, n, k, fitted.w, bounds,
                                    ref_nb, scale)
        out["runs"].append(run)
    out["load_after"] = os.getloadavg()
    return out


def _reference_run(res, rows, ref_idx, y, q, K, n, k, w, bounds, ref_nb, scale):
    """The reference on the subsample ``rows`` and its agreement with ``res`` there."""
    votes = y[ref_idx]
    t0 = time.perf_counter()
    pred, ex = ref_exact_uniform(votes, k, w, q, K, n)
    ref_exact = (time.perf_counter() - t0) * scale
    agree = {"prediction": int(np.sum(pred != res.prediction[rows])),
             "exact": int(np.sum(ex != res.radius["exact"][rows]))}
    out = {"points": int(rows.size), "exact_alone": ref_nb + ref_exact,
           "exact_digest": _digest(pred, ex),
           "numbaflip_exact_digest": _digest(res.prediction[rows], res.radius["exact"][rows])}
    smooth = [b for b in bounds if b in ("kl", "tight")]
    if smooth:
        W = np.full(ref_idx.shape, w)
        ref = ref_smoothed(W, votes, float(Fraction(q)), K, n, smooth)
        bad = R.compare(ref, res, rows)
        agree.update({b: int(bad[b].size) for b in smooth})
        agree["prediction_smoothed"] = int(bad["prediction"].size)
        out["all_bounds"] = (ref_nb + ref_exact + ref.timings["chernoff"] * scale
                             + ref.timings["radii"])
        out["timings"] = ref.timings
    out["agree"] = agree
    B._log(f"reference q={q}: {out}")
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def render(report):
    mi = report["machine"]
    L = ["# numbaflip kNN benchmark\n",
         f"Machine: {mi['cpu']}, {mi['cores']} cores, numba threads {mi['numba_threads']}; "
         f"Python {mi['python']}, NumPy {mi['numpy']}, SciPy {mi['scipy']}, Numba "
         f"{mi['numba']}, llvmlite {mi['llvmlite']}; numbaflip {mi['numbaflip']} (git "
         f"{mi.get('git', '?')}); {mi['date']}.  Generated by `scripts/bench_learners.py "
         f"{' '.join(report['argv'])}`.\n",
         "Warm JIT cache, seconds of wall time, `certify(..., learner=KNN(k))` with uniform "
         "weights.  *all bounds* = one call with every bound (q = 0: exact only); *alone* = "
         "one call per bound, neighbour search included.  *Reference* = plain NumPy/SciPy "
         "(every distance, argpartition; exact radius from the vote counts; "
         "`scripts/reference.py` Chernoff per point), timed on a subsample and extrapolated "
         "to m.  *Agree* = disagreements on that subsample (must be 0 for predictions, "
         "neighbours and exact; kl/tight with `reference.compare`'s tolerance).  *Load* = "
         "1-min load average before → after (2 cores, shared).\n",
         "| size | K | n | d | m | k | q | all bounds | target | ref | × | exact alone | kl "
         "alone | tight alone | neighbours | agree | load |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for sz in report["sizes"]:
        for run in sz["runs"]:
            ref = run["ref"]
            refall = ref.get("all_bounds", ref["exact_alone"])
            al = run["alone"]
            exact_alone = al.get("exact", run["wall"] if run["bounds"] == ["exact"] else None)
            nbr = run["phases"].get("neighbours")
            L.append(
                f"| {sz['size']} | {sz['K'] or 2} | {sz['n']} | {sz['d']} | {sz['m']} | "
                f"{sz['k']} | {run['q']} | {run['wall']:.2f} | "
                f"{TARGETS.get(sz['size'], float('nan')):.0f} | {refall:.1f} | "
                f"{refall / run['wall']:.0f} | {B._f(exact_alone)} | {B._f(al.get('kl'))} | "
                f"{B._f(al.get('tight'))} | {B._f(nbr)} | "
                f"{', '.join(f'{k}:{v}' for k, v in ref['agree'].items())} of {ref['points']}"
                f" | {sz['load_before'][0]:.1f} → {run['load_after'][0]:.1f} |")
    L.append("\n## Phases inside the all-bounds call (s)\n")
    for sz in report["sizes"]:
        for run in sz["runs"]:
            L.append(f"* size {sz['size']} q={run['q']}: " +
                     ", ".join(f"{p} {v:.3f}" for p, v in run["phases"].items()))
    L.append("\n## Digests (identical certificates / neighbours)\n")
    for sz in report["sizes"]:
        nb = sz["neighbours"]
        L.append(f"* size {sz['size']}: neighbours of {nb['points']} points numbaflip "
                 f"`{nb['digest']}`, reference `{nb['ref_digest']}` "
                 f"({'identical' if nb['identical'] else 'DIFFERENT'}); reference neighbours "
                 f"{nb['ref_seconds']:.1f} s extrapolated to m")
        for run in sz["runs"]:
            ref = run["ref"]
            L.append(f"  * q={run['q']}: certificate digest `{run['digest']}`; exact on the "
                     f"subsample numbaflip `{ref['numbaflip_exact_digest']}`, reference "
                     f"`{ref['exact_digest']}`; accuracy {run['accuracy']:.4f}, median radii "
                     f"{run['median_radius']}")
    return "\n".join(L) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="a,b")
    p.add_argument("--qs", default=None, help="comma-separated q (default per size: 0 and "
                   "0.3 binary, 0 and 0.05 K=10)")
    p.add_argument("--ref-points", type=int, default=400)
    p.add_argument("--data", choices=("fashion", "synthetic"), default="fashion")
    p.add_argument("--quick", action="store_true", help="tiny synthetic sizes (smoke test)")
    p.add_argument("--out", default=os.path.join("out", "bench_learners.md"))
    args = p.parse_args(argv)
    table = QUICK_SIZES if args.quick else SIZES
    data = "synthetic" if args.quick else args.data
    report = {"argv": list(argv) if argv is not None else sys.argv[1:],
              "machine": B.machine_info(), "sizes": []}
    for s in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        if s not in table:
            raise SystemExit(f"unknown size {s!r}; choose from {', '.join(table)}")
        qs = args.qs.split(",") if args.qs else table[s][5]
        report["sizes"].append(run_size(s, table[s], qs, args.ref_points, data))
    return B._write_report(render(report), report, args.out)


if __name__ == "__main__":
    sys.exit(main())
