"""Training-set partitions for :func:`numbaflip.distributed.certify` (``partition="train"``;
docs/scaling.md §2, math.md §2b).

The training set stays where it is, in row partitions (the row chunks of a dask ``X_train``,
or near-equal row ranges of a numpy one, one per worker).  Per call:

1. **Gram matrix and λ.**  Every part sends X̃_pᵀX̃_p (X̃ with the intercept column), added
   in a tree of tasks; with ``lam="auto"`` also the R factor of its rows, combined by a
   tall-skinny QR tree (X = QR, so R has the singular values of X̃: λ is
   :func:`numbaflip.alpha.default_lambda`'s, label-free, from k̃ × k̃ messages).  The client
   factorises G + λI and computes W = (G + λI)⁻¹ H̃ᵀ for the test rows.
2. **Per block of test rows**, every part computes its α rows α_p = (X̃_p W_B)ᵀ and keeps them
   in its memory; it sends group sums (:func:`..._kernels.histogram_merge.part_stats`),
   merged in a tree: the coordinator task decides the predictions where float64 with a
   rigorous band can, and fixes the global largest exponent of each α row.  Then every part
   sends its histogram cells keyed by that exponent, and for the exact bound its largest
   helpful moves, merged in a tree.  A coordinator task runs Newton, the certified U(t̂) and
   the lower bound on the merged histograms (binary or per rival pair), and the exact walk on
   the merged moves.
3. **On the client** the radii of U and of the lower bound are compared as in the in-process
   engine (math.md §2b).  Every point that is not settled there — a decision inside the band
   (possible ties, the zero / unbounded / limit cases of math.md §2), a sandwich that does not
   close, an exact walk whose enclosure is ambiguous, and every point with
   ``precision="mp"`` — has its α row fetched from the parts (n·8 bytes) and goes
   through the in-process engine (``numbaflip.certify._Engine.run_block``) on that row, so
   it is exactly what :func:`numbaflip.certify_alpha` gives for that α.  An exact walk that
   ran out of sent moves first gets rounds of 4× as many moves from the parts.

**Guarantee.**  The certified classifier is the ridge classifier of this α, which differs from
the in-process α only by the reassociation of float64 sums (XᵀX as a sum over parts, α as
X̃_p W instead of H̃ M).  Every bound is the in-process bound for this α: U(t̂) on the merged
histogram is the in-process U on the same buckets (the cell keys are the same; the merged
Ŝ₁, Ŝ₂ keep the γ_c bounds, see :mod:`numbaflip._kernels.histogram_merge`), the lower bound
only decides closure, and the exact walk is :func:`numbaflip._kernels.exact._walk` on an
enclosure that covers the merge.  So radii never exceed the truth for the classifier that
runs; compared with the in-process call they can differ only where the reassociation of α
moves a value across a radius boundary.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .errors import NumbaflipInputError

#: X_train size from which ``partition="auto"`` keeps a row-chunked dask X_train in its
#: partitions (below it, test-point partitions are faster and bit-identical).
AUTO_TRAIN_BYTES = 1 << 28
#: Default number of largest helpful moves per test point each part sends first for "exact"
#: (a walk that needs more gets rounds of 4× as many).
EXACT_CANDIDATES = 256


# --------------------------------------------------------------------------------------------
# client: inputs
# --------------------------------------------------------------------------------------------

def wants_train(partition, X_train, is_dask) -> bool:
    """Whether a call runs on training partitions (``partition`` checked here)."""
    if partition not in ("auto", "train", "test"):
        raise NumbaflipInputError(
            f"partition must be 'auto', 'train' or 'test', got {partition!r}.")
    if partition != "auto":
        return partition == "train"
    if not is_dask(X_train):
        return False
    chunks = getattr(X_train, "chunks", None)
    return bool(chunks) and len(chunks[0]) > 1 and \
        float(getattr(X_train, "nbytes", 0) or 0) >= AUTO_TRAIN_BYTES


def _ridge_params(learner, lam, fit_intercept):
    """(lam, fit_intercept) of the ridge learner; other learners are refused."""
    if learner is None:
        return lam, (True if fit_intercept is None else bool(fit_intercept))
    from .learners import Ridge
    if not isinstance(learner, Ridge):
        raise NumbaflipInputError(
            f"partition='train' supports the ridge learner only (learner=None or Ridge), got "
            f"learner={getattr(learner, 'name', type(learner).__name__)!r}; use "
            "partition='test' (test-point partitions, the training set on every worker) for "
            "KNN, RBFRidge and custom learners.")
    from ._problem import check_learner
    check_learner(learner, lam=lam, fit_intercept=fit_intercept)
    return learner.lam, learner.fit_intercept


def _row_chunks(X_train, y_train, is_dask, unknown, nparts):
    """Row boundaries of the parts, after the checks of the two arrays' layout."""
    from ._problem import check_shape_2d
    shp = tuple(X_train.shape)
    if len(shp) != 2:
        check_shape_2d(shp, "X_train")
    if is_dask(X_train):
        if unknown(X_train):
            raise NumbaflipInputError(
                f"X_train is a dask array with unknown chunk sizes (chunks {X_train.chunks}); "
                "the training parts are its row chunks, so call X_train.compute_chunk_sizes() "
                "(or to_dask_array(lengths=True)) first.")
        rows = tuple(int(c) for c in X_train.chunks[0])
    else:
        n = int(shp[0])
        p = max(1, min(nparts, n))
        rows = tuple(int(v) for v in np.diff(np.linspace(0, n, p + 1).astype(np.int64)))
    if is_dask(y_train):
        if unknown(y_train):
            raise NumbaflipInputError(
                f"y_train is a dask array with unknown chunk sizes (chunks {y_train.chunks}); "
                "call y_train.compute_chunk_sizes() first.")
        if len(y_train.shape) != 1 or int(y_train.shape[0]) != int(shp[0]):
            raise NumbaflipInputError(
                f"y_train has shape {tuple(y_train.shape)} but X_train has {shp[0]} rows; "
                "pass one label per training row.")
        if is_dask(X_train) and tuple(int(c) for c in y_train.chunks[0]) != rows:
            raise NumbaflipInputError(
                f"X_train is chunked by rows as {rows} but y_train as "
                f"{tuple(int(c) for c in y_train.chunks[0])}; the labels of a training part "
                "must be chunked like its features: y_train = y_train.rechunk((X_train.chunks"
                "[0],)).")
    return rows


def validate(X_train, y_train, X_test, q, lam, fit_intercept, learner, bounds, num_classes,
             precision, is_dask, unknown, nparts):
    """Every check before anything is submitted: (Problem for the labels, λ given, intercept,
    test features (m, k) as float64, row boundaries of the parts, X_train (numpy: checked and
    coerced; dask: layout and dtype here, values in the tasks))."""
    from ._problem import check_matrix, problem, resolve_lambda
    lam, fi = _ridge_params(learner, lam, fit_intercept)
    if not is_dask(X_train):
        X_train = check_matrix(X_train, "X_train")
    rows = _row_chunks(X_train, y_train, is_dask, unknown, nparts)
    k = int(X_train.shape[1])
    if is_dask(X_train):
        check_matrix(np.zeros((1, k), dtype=X_train.dtype), "X_train")
    if not (isinstance(lam, str) and lam == "auto"):
        lam = resolve_lambda(lam, None, 0.0, fi)
    y_np = np.asarray(y_train.compute()) if is_dask(y_train) else y_train
    if np.shape(y_np) != (int(X_train.shape[0]),):
        raise NumbaflipInputError(
            f"y_train has {np.size(y_np)} labels but there are {X_train.shape[0]} training "
            "rows; pass one label per training row.")
    n = int(X_train.shape[0])
    # the labels, q, bounds, classes and precision, checked as certify does (A: a stand-in)
    pb = problem(y_np, q=q, A=np.zeros((1, n)), bounds=bounds, num_classes=num_classes,
                 precision=precision)
    if is_dask(X_test):
        X_test = np.asarray(X_test.compute())
    H = check_matrix(X_test, "X_test", cols=k)
    return pb, y_np, lam, fi, H, rows, X_train


# --------------------------------------------------------------------------------------------
# worker tasks
# --------------------------------------------------------------------------------------------

def _design(X, fi):
    from .alpha import design_matrix
    return design_matrix(np.asarray(X), fi)


def _part_gram(X, fi, want_r, start):
    """(X̃_pᵀX̃_p, R_p or None); non-finite features are an input error naming the rows."""
    X = np.asarray(X)
    if not np.isfinite(X).all():
        bad = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0]) + start
        raise NumbaflipInputError(
            f"X_train has non-finite values (first in row {bad}); replace or drop them.")
    Xd = _design(X, fi)
    G = Xd.T @ Xd
    R = np.linalg.qr(Xd, mode="r") if want_r else None
    return G, R


def _add_gram(a, b):
    G = a[0] + b[0]
    R = None
    if a[1] is not None:
        R = np.linalg.qr(np.vstack([a[1], b[1]]), mode="r")
    return G, R


def _part_alpha(X, W, fi):
    """This part's α rows of a test block: (X̃_p W)ᵀ, C-contiguous (b × n_p)."""
    from .alpha import _require_finite
    with np.errstate(over="ignore", invalid="ignore"):
        A = np.ascontiguousarray((_design(X, fi) @ W).T)
    return _require_finite(A, "alpha")


def _part_stats(A, y, nlab):
    from ._kernels import histogram_merge as hm
    b = A.shape[0]
    out = dict(sums=np.empty((b, 2 * nlab)), sq=np.empty((b, nlab)), amax=np.empty(b),
               top=np.empty(b, np.int64))
    with _threads():
        hm.part_stats(A, y, nlab, out["sums"], out["sq"], out["amax"], out["top"])
    return out


def _merge_stats(a, b):
    return dict(sums=a["sums"] + b["sums"], sq=a["sq"] + b["sq"],
                amax=np.maximum(a["amax"], b["amax"]), top=np.maximum(a["top"], b["top"]))


def _decide(st, n, mc, S, q, smoothing, exact):
    """The coordinator's decisions from the merged sums (ok: settled here), and which
    histograms and candidate groups the parts must send."""
    from ._kernels import histogram_merge as hm
    b = st["top"].shape[0]
    pred = np.empty(b, np.int64)
    ok = np.empty(b, np.bool_)
    guess = np.ones(b)
    if mc:
        hm.mc_decide(st["sums"], n, S, pred, ok)
    else:
        hm.binary_decide(st["sums"], st["sq"], n, q, smoothing, pred, ok, guess)
    want = ok & exact
    return dict(pred=pred, ok=ok, guess=guess, top=st["top"], sums=st["sums"], sq=st["sq"],
                amax=st["amax"], need=ok & smoothing, want=want)


def _candidates(A, y, pred, want, mc, L):
    """Per row of ``want`` its L largest helpful moves and the bound on the rest
    (:func:`..._kernels.histogram_merge.part_moves`), as a move payload."""
    from ._kernels import histogram_merge as hm
    b = A.shape[0]
    rows = np.flatnonzero(want)
    counts = np.zeros(b, np.int64)
    if rows.size:
        hm.part_count_moves(A, y, pred, rows, mc, L, counts)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    mkey, grp = np.empty(int(ptr[-1])), np.empty(int(ptr[-1]), np.int32)
    bound = np.zeros(b)
    if rows.size:
        hm.part_moves(A, y, pred, rows, mc, L, ptr, mkey, grp, bound)
    return dict(ptr=ptr, mkey=mkey, grp=grp, bound=bound, rows=int(rows.size))


def _part_more(A, y, rows, pred, mc, L):
    """More moves (L) for the rows whose exact walk ran out of sent moves."""
    with _threads():
        return _candidates(np.ascontiguousarray(A[rows]), y, pred,
                           np.ones(rows.size, np.bool_), mc, L)


def _part_cells(A, y, dec, mc, S, L):
    """This part's histogram cells (rows ``dec["need"]``) and candidate moves (groups
    ``dec["want"]``)."""
    from ._kernels import histogram_merge as hm
    b = A.shape[0]
    need = dec["need"]
    with _threads():
        counts = np.zeros(b, np.int64)
        if need.any():
            hm.part_count_cells(A, y, dec["top"], need, mc, S, counts)
        ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        tot = int(ptr[-1])
        key, cnt = np.empty(tot, np.int32), np.empty(tot, np.int32)
        s1, s2 = np.empty(tot), np.empty(tot)
        if tot:
            hm.part_cells(A, y, dec["top"], need, mc, S, ptr, key, cnt, s1, s2)
        cand = _candidates(A, y, dec["pred"], dec["want"], mc, L)
    cells = dict(ptr=ptr, key=key, cnt=cnt, s1=s1, s2=s2)
    G = dec["sums"].shape[1]
    nbytes = dict(cells=24 * tot, cand=_cand_bytes(cand), stats=8 * (3 * G // 2 + 2) * b)
    return dict(cells=cells, cand=cand, nbytes=nbytes, parts=1)


def _cand_bytes(cand):
    """Bytes of a move payload: 12 per move (key, group), 8 per row asked (its bound)."""
    return 12 * int(cand["mkey"].size) + 8 * int(cand["rows"])


def _compact(ptr, n_used, arrays):
    """Row-packed copies of cell arrays with capacity ``ptr`` and used counts ``n_used``."""
    new = np.concatenate([[0], np.cumsum(n_used)]).astype(np.int64)
    idx = np.concatenate([np.arange(p, p + u) for p, u in zip(ptr[:-1], n_used)]) \
        if new[-1] else np.empty(0, np.int64)
    return new, [a[idx] for a in arrays]


def _merge_parts(a, b, S, L):
    """Two merged payloads into one (tree node): cells added key by key, candidates kept to
    the L largest per group with the bound on the rest, byte counts summed."""
    from ._kernels import histogram_merge as hm
    ca, cb = a["cells"], b["cells"]
    nrow = ca["ptr"].shape[0] - 1
    cap = np.diff(ca["ptr"]) + np.diff(cb["ptr"])
    pout = np.concatenate([[0], np.cumsum(cap)]).astype(np.int64)
    tot = int(pout[-1])
    kout, cout = np.empty(tot, np.int32), np.empty(tot, np.int32)
    s1, s2 = np.empty(tot), np.empty(tot)
    nout = np.zeros(nrow, np.int64)
    with _threads():
        if nrow:
            hm.merge_cells(S, ca["ptr"], ca["key"], ca["cnt"], ca["s1"], ca["s2"], cb["ptr"],
                           cb["key"], cb["cnt"], cb["s1"], cb["s2"], pout, kout, cout, s1, s2,
                           nout)
    ptr, (kout, cout, s1, s2) = _compact(pout, nout, [kout, cout, s1, s2])
    cand = _merge_cand(a["cand"], b["cand"], L)
    nbytes = {k: a["nbytes"][k] + b["nbytes"][k] for k in a["nbytes"]}
    return dict(cells=dict(ptr=ptr, key=kout, cnt=cout, s1=s1, s2=s2), cand=cand,
                nbytes=nbytes, parts=a["parts"] + b["parts"])


def _merge_cand(xa, xb, L):
    """Two move payloads into one: per row the L largest moves, the bound on the rest."""
    from ._kernels import histogram_merge as hm
    nrow = xa["bound"].shape[0]
    cap = np.minimum(np.diff(xa["ptr"]) + np.diff(xb["ptr"]), L)
    pout = np.concatenate([[0], np.cumsum(cap)]).astype(np.int64)
    kout, gout = np.empty(int(pout[-1])), np.empty(int(pout[-1]), np.int32)
    bout = np.zeros(nrow)
    if nrow:
        with _threads():
            hm.merge_moves(L, xa["ptr"], xa["mkey"], xa["grp"], xa["bound"], xb["ptr"],
                           xb["mkey"], xb["grp"], xb["bound"], pout, kout, gout, bout)
    return dict(ptr=pout, mkey=kout, grp=gout, bound=bout, rows=xa["rows"])


def _exact_walk(sums, n, mc, S, pred, rows, q_lo, q_hi, cand, klo, khi, more):
    """The exact kernels of :mod:`..._kernels.histogram_merge` on ``rows``."""
    from ._kernels import histogram_merge as hm
    if rows.size == 0:
        return
    x = (cand["ptr"], cand["mkey"], cand["grp"], cand["bound"])
    if mc:
        hm.exact_mc(sums, n, S, pred, rows, *x, klo, khi, more)
    else:
        hm.exact_binary(sums, n, pred, rows, q_lo, q_hi, *x, klo, khi, more)


def _evaluate(merged, dec, n, mc, S, K, q, q_lo, q_hi, logw, maxiter, smoothing, exact):
    """The coordinator task of one test block: the histogram bounds of the settled rows and
    the exact walk; per row arrays, plus the merged payload's byte counts."""
    from ._kernels import histogram_merge as hm
    from ._kernels.histogram_merge import NOCROSS
    b = dec["pred"].shape[0]
    c, x = merged["cells"], merged["cand"]
    out = dict(logb=np.full(b, np.nan), err=np.zeros(b), low=np.full(b, -np.inf),
               nb=np.zeros(b, np.int64), klo=np.full(b, NOCROSS), khi=np.full(b, NOCROSS),
               more=np.zeros(b, np.bool_))
    rows = np.flatnonzero(dec["need"])
    with _threads():
        if mc:
            out["t"] = np.zeros((b, S))
            out["pair"] = np.full((b, S), np.nan)
            if rows.size:
                lw_lo = np.where(logw > 0, logw * (1.0 - 2.0 ** -46), 0.0)
                hm.eval_mc(c["ptr"], c["key"], c["cnt"], c["s1"], c["s2"], dec["top"],
                           dec["sums"], dec["sq"], dec["amax"], n, rows, dec["pred"], S, K, q,
                           logw, lw_lo, maxiter, 40.0, out["logb"], out["err"], out["t"],
                           out["pair"], out["low"], out["nb"])
        else:
            out["t"] = np.full(b, np.nan)
            if rows.size:
                hm.eval_binary(c["ptr"], c["key"], c["cnt"], c["s1"], c["s2"], dec["top"],
                               rows, dec["pred"], dec["guess"], q, maxiter, out["logb"],
                               out["err"], out["t"], out["low"], out["nb"])
        er = np.flatnonzero(dec["ok"]) if exact else np.empty(0, np.int64)
        _exact_walk(dec["sums"], n, mc, S, dec["pred"], er, q_lo, q_hi, x, out["klo"],
                    out["khi"], out["more"])
    out.update(pred=dec["pred"], ok=dec["ok"], sums=dec["sums"], nbytes=merged["nbytes"],
               parts=merged["parts"])
    return out


def _take_rows(A, rows):
    return np.ascontiguousarray(A[rows])


def _threads():
    """Numba threads of this worker (no oversubscription), under the module's task lock."""
    import contextlib

    import numba

    from .distributed import _TASK_LOCK, _worker_threads

    @contextlib.contextmanager
    def ctx():
        with _TASK_LOCK:
            old = numba.get_num_threads()
            numba.set_num_threads(max(1, min(_worker_threads(), numba.config.NUMBA_NUM_THREADS)))
            try:
                yield
            finally:
                numba.set_num_threads(old)
    return ctx()


# --------------------------------------------------------------------------------------------
# client: the run
# --------------------------------------------------------------------------------------------

def _tree(client, func, futs, *args, retries=0):
    """Pairwise tree reduction of futures with ``func(a, b, *args)`` (depth ⌈log₂ len⌉)."""
    futs = list(futs)
    while len(futs) > 1:
        nxt = [client.submit(func, futs[i], futs[i + 1], *args, pure=False, retries=retries)
               for i in range(0, len(futs) - 1, 2)]
        if len(futs) % 2:
            nxt.append(futs[-1])
        futs = nxt
    return futs[0]


def _factor(G, lam, kd):
    """Cholesky factor of G + λI with :class:`numbaflip.alpha.RidgeAlpha`'s checks."""
    import scipy.linalg

    from .alpha import _require_finite
    G = np.array(G, dtype=np.float64)
    G[np.diag_indices_from(G)] += lam
    _require_finite(G, "the Gram matrix XᵀX + λI")
    try:
        cho = scipy.linalg.cho_factor(G, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise NumbaflipInputError(
            f"XᵀX + λI is not positive definite (λ = {lam:g}, k = {kd} feature columns): the "
            "features are collinear. Use lam > 0 (for example lam='auto').") from None
    _require_finite(cho[0], "the Cholesky factor of XᵀX + λI")
    return cho


def _scatter_parts(client, X_train, ylab, rows, is_dask):
    """Futures of the parts' features (a dask X_train: its row chunks, computed where the
    scheduler puts them; numpy: one scattered range per part) and of their labels."""
    import dask
    offs = np.concatenate([[0], np.cumsum(rows)]).astype(int)
    ranges = list(zip(offs[:-1], offs[1:]))
    # computed (not scattered) futures: a part lost with its worker is recomputed from the
    # graph (its chunk task, or the slice held in the graph)
    if is_dask(X_train):
        Xd = X_train.rechunk({1: -1}) if len(X_train.chunks[1]) > 1 else X_train
        X_futs = client.compute(list(Xd.to_delayed().ravel()))
    else:
        X_np = np.asarray(X_train)
        X_futs = client.compute([dask.delayed(np.ascontiguousarray)(X_np[a:b])
                                 for a, b in ranges])
    y_futs = client.compute([dask.delayed(np.ascontiguousarray)(ylab[a:b]) for a, b in ranges])
    return X_futs, y_futs, offs


def _lambda(client, X_futs, offs, fi, lam, n, kd, q, retries):
    """(G = X̃ᵀX̃ by a tree of part Grams, λ: given, or "auto" from the TSQR R factor)."""
    from .alpha import lambda_from_singular_values
    auto = isinstance(lam, str)
    g = [client.submit(_part_gram, Xf, fi, auto, int(s), pure=False, retries=retries)
         for Xf, s in zip(X_futs, offs[:-1])]
    G, R = _tree(client, _add_gram, g, retries=retries).result()
    if auto:
        lam = lambda_from_singular_values(np.linalg.svd(R, compute_uv=False), n, kd, q)
        if not math.isfinite(lam):
            raise NumbaflipInputError(
                "lam='auto' gave a non-finite λ because the features overflow float64 in XᵀX; "
                "scale the features (e.g. divide by their largest absolute value).")
    return G, float(lam)


class _Run:
    """Client state of one training-partition call: submits the blocks, settles what the
    merged statistics settle, and runs the in-process engine on the fetched α rows of the
    rest."""

    def __init__(self, client, pb, y_np, X_futs, y_futs, offs, W, fi, L, retries):
        from ._problem import class_slots
        from .certify import _Engine
        self.client, self.pb, self.y_np = client, pb, y_np
        self.X_futs, self.y_futs, self.W, self.fi, self.L = X_futs, y_futs, W, fi, L
        self.offs = offs
        self.retries = retries
        self.m = W.shape[1]
        self.engine = e = _Engine(dataclasses.replace(pb, m=self.m))
        self.mc = pb.num_classes is not None
        self.slots = class_slots(pb.y, pb.K) if self.mc else None
        self.S = self.slots.S if self.mc else 1
        self.nlab = self.slots.S if self.mc else 2
        self.exact = "exact" in pb.bounds
        from .exact import _q_float_bounds
        self.q_lo, self.q_hi = _q_float_bounds(pb.q.exact) if not self.mc else (0.0, 0.0)
        self.logw = self.slots.log_weight if self.mc else None
        self.stats = {"settled": 0, "fallback": {"decision": 0, "sandwich": 0, "exact": 0,
                                                 "precision_mp": 0},
                      "bytes": {"cells": 0, "cand": 0, "stats": 0}, "buckets": 0,
                      "fetched_alpha_bytes": 0, "exact_rounds": 0, "exact_rows_more": 0}
        e.hist.update(closed=0, full_pass=0, buckets=0)

    def submit_block(self, start, b):
        """The futures of one test block: (α parts, evaluation)."""
        c, r, pb = self.client, self.retries, self.pb
        WB = np.ascontiguousarray(self.W[:, start:start + b])   # in the tasks: rerunnable
        a = [c.submit(_part_alpha, Xf, WB, self.fi, pure=False, retries=r)
             for Xf in self.X_futs]
        st = _tree(c, _merge_stats, [c.submit(_part_stats, ap, yp, self.nlab, pure=False,
                                              retries=r)
                                     for ap, yp in zip(a, self.y_futs)], retries=r)
        dec = c.submit(_decide, st, pb.n, self.mc, self.nlab, self.engine.q, pb.smoothing,
                       self.exact, pure=False, retries=r)
        parts = [c.submit(_part_cells, ap, yp, dec, self.mc, self.S, self.L, pure=False,
                          retries=r) for ap, yp in zip(a, self.y_futs)]
        merged = _tree(c, _merge_parts, parts, self.S, self.L, retries=r)
        from .config import config
        ev = c.submit(_evaluate, merged, dec, pb.n, self.mc, self.nlab, pb.K, self.engine.q,
                      self.q_lo, self.q_hi, self.logw, config.newton_maxiter, pb.smoothing,
                      self.exact, pure=False, retries=r)
        return a, ev

    def finish_block(self, start, a, res):
        """Settle the rows of one evaluated block; fetch and run the others in-process."""
        e, b = self.engine, res["pred"].shape[0]
        ok = res["ok"].copy()
        self.stats["fallback"]["decision"] += int((~ok).sum())
        for k in self.stats["bytes"]:
            self.stats["bytes"][k] += int(res["nbytes"][k])
        if self.pb.precision == "mp":   # every row is refined at 113 bits on its α row
            self.stats["fallback"]["precision_mp"] += int(ok.sum())
            ok[:] = False
        if self.pb.smoothing:
            ok &= self._settle_smoothing(start, res, ok)
        if self.exact:
            self._more_moves(a, res, ok)
            ok &= self._settle_exact(start, res, ok)
        rows = np.flatnonzero(ok)
        g = start + rows
        e.pred[g] = res["pred"][rows]
        e.status[g] = 0
        e.iters[g] = 0
        e.settled[g] = self.pb.smoothing
        self.stats["settled"] += int(rows.size)
        rest = np.flatnonzero(~ok)
        if rest.size:
            self._fallback(start, a, rest)

    def _settle_smoothing(self, start, res, ok):
        """Histogram rows whose sandwich closes (math.md §2b, as _Engine._close_sandwich):
        their U, t (and per-rival bounds) stored; returns which rows stay settled."""
        e = self.engine
        rows = np.flatnonzero(ok)
        keep = ok.copy()
        if rows.size == 0:
            return keep
        hi = e._radii(res["logb"][rows] + e.q_shift)
        lo = e._radii(res["low"][rows] - e.q_shift)
        open_ = np.zeros(rows.size, np.bool_)
        for k in hi:
            open_ |= hi[k] != lo[k]
        self.stats["fallback"]["sandwich"] += int(open_.sum())
        e.hist["full_pass"] += int(open_.sum())
        closed = rows[~open_]
        e.hist["closed"] += int(closed.size)
        e.hist["buckets"] += int(res["nb"][rows].sum())
        keep[rows[open_]] = False
        g = start + closed
        lb = res["logb"][closed]
        fin = np.isfinite(lb)
        e.logb[g] = np.where(fin, lb + e.q_shift, lb)
        e.err[g] = np.where(fin, res["err"][closed] + e.q_shift, res["err"][closed])
        e.t[g] = res["t"][closed]
        if self.mc:
            p = res["pair"][closed]
            e.pair[g] = np.where(np.isfinite(p), p + e.q_shift, p)
        return keep

    def _more_moves(self, a, res, ok):
        """Rows whose exact walk ran out of sent moves: rounds with 4× as many moves per part
        (the α rows are still on the parts) until every walk stops; a part whose group is
        shorter than the request sends it whole, so the rounds end."""
        c = self.client
        rows = np.flatnonzero(ok & res["more"])
        L = self.L
        cap = max(int(np.max(np.diff(self.offs))), 1)
        while rows.size and L < cap:
            L *= 4
            pr = np.ascontiguousarray(res["pred"][rows])
            parts = [c.submit(_part_more, ap, yp, rows, pr, self.mc, L, pure=False,
                              retries=self.retries) for ap, yp in zip(a, self.y_futs)]
            cand = _tree(c, _merge_cand, parts, L, retries=self.retries).result()
            self.stats["bytes"]["cand"] += sum(_cand_bytes(p) for p in c.gather(parts))
            r = rows.size
            klo, khi = np.empty(r, np.int64), np.empty(r, np.int64)
            more = np.zeros(r, np.bool_)
            _exact_walk(np.ascontiguousarray(res["sums"][rows]), self.pb.n, self.mc,
                        self.nlab, np.ascontiguousarray(res["pred"][rows]), np.arange(r),
                        self.q_lo, self.q_hi, cand, klo, khi, more)
            res["klo"][rows], res["khi"][rows] = klo, khi
            self.stats["exact_rounds"] += 1
            self.stats["exact_rows_more"] += int(r)
            rows = rows[more]

    def _settle_exact(self, start, res, ok):
        """Rows whose exact walk is decided (k_lo = k_hi): their exact radius."""
        from .exact import _radius_from_k
        rows = np.flatnonzero(ok)
        same = res["klo"][rows] == res["khi"][rows]
        self.stats["fallback"]["exact"] += int((~same).sum())
        keep = ok.copy()
        keep[rows[~same]] = False
        good = rows[same]
        self.engine.radius["exact"][start + good] = _radius_from_k(res["khi"][good],
                                                                   self.pb.n)
        return keep

    def _fallback(self, start, a, rows):
        """The α rows of ``rows`` from every part, through the in-process engine."""
        from ._problem import problem
        from .certify import _Engine
        c = self.client
        pieces = c.gather([c.submit(_take_rows, ap, rows, pure=False, retries=self.retries)
                           for ap in a])
        A = np.ascontiguousarray(np.hstack(pieces))
        self.stats["fetched_alpha_bytes"] += int(A.nbytes)
        pb = self.pb
        sub_pb = problem(self.y_np, q=pb.q.given, A=A, bounds=pb.bounds,
                         num_classes=pb.num_classes, precision=pb.precision)
        sub = _Engine(sub_pb)
        sub.run_block(0, A)
        e, g = self.engine, start + rows
        e.pred[g], e.logb[g], e.err[g], e.status[g] = sub.pred, sub.logb, sub.err, sub.status
        e.t[g], e.iters[g], e.settled[g] = sub.t, sub.iters, sub.settled
        if self.mc:
            e.pair[g] = sub.pair
        if self.exact:
            e.radius["exact"][g] = sub.radius["exact"]
        e.n_mp += sub.n_mp
        for k, v in getattr(sub, "seconds", {}).items():   # per-phase times, where kept
            if k in getattr(e, "seconds", {}):
                e.seconds[k] += v
        if "exact_rational" in sub.hist and "exact_rational" in e.hist:
            e.hist["exact_rational"] += sub.hist["exact_rational"]


def _block_size(m, np_max, total_threads, rows_per_task):
    from .config import block_rows
    if rows_per_task is not None:
        if isinstance(rows_per_task, bool) or not isinstance(rows_per_task, (int, np.integer)) \
                or rows_per_task < 1:
            raise NumbaflipInputError(
                f"rows_per_task must be a positive integer or None, got {rows_per_task!r}.")
        return int(rows_per_task)
    return max(1, min(block_rows(np_max), max(64, -(-m // max(1, 2 * total_threads)))))


def _check_candidates(L):
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 1:
        raise NumbaflipInputError(
            f"exact_candidates must be a positive integer (largest moves per label and sign "
            f"each training part sends for the exact bound), got {L!r}.")
    return int(L)


def certify_train(client, X_train, y_train, X_test, *, q, learner, lam, bounds, num_classes,
                  fit_intercept, precision, progress, rows_per_task, retries,
                  exact_candidates, is_dask, unknown):
    """:func:`numbaflip.distributed.certify` with ``partition="train"`` (module docstring)."""
    from tqdm.auto import tqdm

    from .certify import _result
    nthreads = client.nthreads()
    nworkers = max(1, len(nthreads))
    total_threads = int(sum(nthreads.values())) if nthreads else 1
    L = _check_candidates(exact_candidates)
    pb, y_np, lam_given, fi, H, rows, X_train = validate(
        X_train, y_train, X_test, q, lam, fit_intercept, learner, bounds, num_classes,
        precision, is_dask, unknown, nworkers)
    m = H.shape[0]
    bs = _block_size(m, max(rows), total_threads, rows_per_task)
    kd = int(X_train.shape[1]) + (1 if fi else 0)
    ylab = pb.y
    if pb.num_classes is not None:
        from ._problem import class_slots
        ylab = class_slots(pb.y, pb.K).y
    X_futs, y_futs, offs = _scatter_parts(client, X_train, ylab, rows, is_dask)
    G, lam_v = _lambda(client, X_futs, offs, fi, lam_given, pb.n, kd, pb.q.value, retries)
    import scipy.linalg
    W = scipy.linalg.cho_solve(_factor(G, lam_v, kd), _design(H, fi).T, check_finite=False)
    run = _Run(client, pb, y_np, X_futs, y_futs, offs, np.ascontiguousarray(W), fi, L,
               retries)
    starts = list(range(0, m, bs))
    window = max(2, 2 * nworkers)
    disable = (not progress) if progress is not None else None
    pending = {}
    with tqdm(total=m, unit="pt", desc="certify (dask, train parts)", disable=disable,
              leave=False) as bar:
        nxt = 0
        while nxt < len(starts) or pending:
            while nxt < len(starts) and len(pending) < window:
                s = starts[nxt]
                pending[s] = run.submit_block(s, min(bs, m - s))
                nxt += 1
            s = min(pending)            # blocks finish in order (the coordinator is serial)
            a, ev = pending.pop(s)
            run.finish_block(s, a, ev.result())
            del a, ev
            bar.update(min(bs, m - s))
    run.engine.finish()
    pb_full = dataclasses.replace(pb, m=m, lam=lam_v, fit_intercept=fi)
    out = _result(run.engine, pb_full, learner="ridge",
                  learner_params={"lam": lam_v, "lam_given": lam_given, "fit_intercept": fi})
    out.info["dask"] = _info(run, rows, starts, bs, m, nworkers)
    return out


def _info(run, rows, starts, bs, m, nworkers):
    """info["dask"] of a training-partition call: parts, blocks, settled and fetched rows,
    bytes the parts sent (per test point per part)."""
    P = len(rows)
    st = run.stats
    per = {k: v / max(1, m * P) for k, v in st["bytes"].items()}
    last = m - starts[-1] if starts else 0
    return {"partition": "train", "parts": P, "part_rows": (min(rows), max(rows)),
            "workers": nworkers, "blocks": len(starts), "rows_per_block": bs,
            # the keys of test-point partitions (bench.py, the CLI): tasks = test blocks
            "tasks": len(starts), "rows_per_task": (min(bs, last), bs), "blas_threads": None,
            "settled": st["settled"], "fallback": dict(st["fallback"]),
            "fetched_alpha_bytes": st["fetched_alpha_bytes"],
            "exact_rounds": st["exact_rounds"], "exact_rows_more": st["exact_rows_more"],
            "bytes_sent_by_parts": dict(st["bytes"]),
            "bytes_per_point_per_part": per, "exact_candidates": run.L}
