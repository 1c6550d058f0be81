"""Plain NumPy/SciPy implementation of numbaflip's computation: the speed and correctness baseline.

This module is what a competent user would write from the paper and ``docs/math.md`` without
Numba: alpha from a Cholesky factorisation in blocks (scipy.linalg.cho_factor / cho_solve),
then, per test point in a Python loop, the Chernoff objective vectorised over the training
points with NumPy and minimised with :func:`scipy.optimize.minimize_scalar` (bounded Brent),
the radii vectorised over test points.  It is kept in the repository

* as the baseline of ``scripts/bench.py`` (the "×" column of the README's speed table), and
* as an independent cross-check in ``tests/test_reference.py``.

It is **not** a certificate: there is no rigorous floating-point error bound anywhere (the
Chernoff value is the float64 value at scipy's minimiser, the tight thresholds are plain float64
log-space sums, the exact radius compares float64 cumulative sums).  Results agree with
:func:`numbaflip.certify` up to those roundings; see :func:`compare` for the tolerance.

Every radius comes with a *real-valued radius* x (``ReferenceResult.radius_real``), continuous in
the inputs, with ``radius = ceil(x) − 1`` (−1 for x ≤ 0, n where x = +inf):

* ``"kl"``: x = −½ log(4p(1−p)) / κ (math.md §4), the real solution of r·κ = rhs;
* ``"tight"``: x = r + (L_r − ℓ) / (L_r − L_{r+1}) for L_{r+1} ≤ ℓ < L_r (piecewise-linear
  interpolation of the threshold table, L the running minimum), so x is an integer exactly when
  ℓ sits on a threshold;
* ``"exact"``: x = (k − 1) + (gap − C_{k−1}) / move_k, k the number of greedy moves that first
  crosses the decision boundary, C the cumulative moves (minimum over rivals for K classes).

A small change of ℓ (or of alpha's sums) moves x a little, and changes the integer radius only
where x is near an integer; that is how :func:`compare` tolerates rounding differences.

Layout: :func:`certify_reference` / :func:`certify_alpha_reference` (public, same conventions as
numbaflip's functions, including radius −1 = not certified and the cap at n); per-point workers
``binary_log_b`` / ``multiclass_log_b``; radius functions ``kl_radius`` / ``log_thresholds`` /
``tight_radius`` / ``exact_radius``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special

__all__ = [
    "ReferenceResult", "certify_reference", "certify_alpha_reference", "ridge_factor",
    "ridge_alpha_blocks",
    "binary_log_b", "multiclass_log_b", "kl_radius", "log_thresholds", "tight_radius",
    "exact_radius", "compare",
]

_LOG_HALF = math.log(0.5)


# --------------------------------------------------------------------------------------------
# alpha
# --------------------------------------------------------------------------------------------

def ridge_factor(X_train, lam, *, fit_intercept=True):
    """(design matrix X (n × k′), Cholesky factor of XᵀX + λI): the fixed, per-training-set cost."""
    X = np.asarray(X_train, dtype=np.float64)
    if fit_intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    G = X.T @ X
    G[np.diag_indices_from(G)] += lam
    return X, scipy.linalg.cho_factor(G, lower=True)


def ridge_alpha_blocks(X_train, X_test, lam, *, fit_intercept=True, block_size=256,
                       factor=None):
    """Yield ``(start, A)`` with ``A = H (XᵀX + λI)⁻¹ Xᵀ`` for blocks of test rows (math.md §1).

    ``factor``: the result of :func:`ridge_factor` (computed here if not given)."""
    X, cho = factor if factor is not None else ridge_factor(X_train, lam,
                                                             fit_intercept=fit_intercept)
    H = np.asarray(X_test, dtype=np.float64)
    if fit_intercept:
        H = np.hstack([H, np.ones((H.shape[0], 1))])
    for start in range(0, H.shape[0], block_size):
        W = scipy.linalg.cho_solve(cho, H[start:start + block_size].T)   # (k, b)
        yield start, (X @ W).T                                            # (b, n)


# --------------------------------------------------------------------------------------------
# Chernoff bounds, one test point at a time
# --------------------------------------------------------------------------------------------

def _bracket(dg, u0, max_doublings=2000):
    """Smallest u = u0·2^j with dg(u) ≥ 0 (g convex, dg(0) < 0): the minimiser lies in [0, u]."""
    u = u0 if u0 > 0 and np.isfinite(u0) else 1.0
    for _ in range(max_doublings):
        if dg(u) >= 0:
            return u
        u *= 2.0
    return u


def _minimize(g, dg, u0):
    """Bounded Brent on [0, u_hi]; the returned value is g at the point scipy reports."""
    hi = _bracket(dg, u0)
    res = scipy.optimize.minimize_scalar(g, bounds=(0.0, hi), method="bounded",
                                         options={"xatol": 1e-12 * hi, "maxiter": 500})
    return float(res.fun), float(res.x), int(res.nfev)


def binary_log_b(a, y, q):
    """(prediction, log B, t, evaluations) for one test point of the binary formulation (§2).

    ``f(t) = t/2 + Σ_{y=1} logaddexp(log q, log(1−q) − tα) + Σ_{y=0} logaddexp(log(1−q),
    log q − tα)`` minimised over the prediction's half-line; degenerate cases analytically.
    """
    a = np.asarray(a, dtype=np.float64)
    y1 = np.asarray(y) == 1
    lq, l1q = math.log(q), math.log1p(-q)
    s = a[y1].sum()
    mean = (1.0 - 2.0 * q) * s + q * a.sum()
    if mean == 0.5:
        return 1, 0.0, 0.0, 0
    if mean > 0.5:
        side = 1.0
    else:
        side = -1.0
        spos = a[a > 0].sum()
        if spos < 0.5:
            return 0, -np.inf, -np.inf, 0
        if spos == 0.5:
            # B = P(αᵀY = 1/2): every α > 0 label is 1 and every α < 0 label is 0.
            pos, neg = a > 0, a < 0
            v = (np.where(y1[pos], l1q, lq).sum() + np.where(y1[neg], lq, l1q).sum())
            return 0, float(v), -np.inf, 0
    pred = 1 if side > 0 else 0
    c0 = np.where(y1, lq, l1q)        # log-probability of the constant term
    c1 = np.where(y1, l1q, lq)        # log-probability of the term multiplied by e^{−tα}

    def g(u):
        t = side * u
        return 0.5 * t + np.logaddexp(c0, c1 - t * a).sum()

    def dg(u):
        t = side * u
        z = c1 - t * a
        w = np.exp(z - np.logaddexp(c0, z))
        return side * (0.5 - np.dot(a, w))

    var = q * (1.0 - q) * np.dot(a, a)
    u0 = abs(mean - 0.5) / var if var > 0 else 1.0
    val, u, nfev = _minimize(g, dg, u0)
    return pred, min(val, 0.0), side * u, nfev


def multiclass_log_b(a, y, q, K):
    """(prediction, log Σ_{c′} B_{cc′}, per-rival log B (K,), evaluations) for one test point
    of the K-class formulation (§3): pairwise objectives over t > 0 only, union bound."""
    a = np.asarray(a, dtype=np.float64)
    y = np.asarray(y)
    sums = np.bincount(y, weights=a, minlength=K)
    sq = np.bincount(y, weights=a * a, minlength=K)
    c = int(np.argmax(sums))                     # lowest index among ties
    pm = q / (K - 1)
    p0 = q * (K - 2) / (K - 1)
    lq1, lpm = math.log1p(-q), math.log(pm)
    lp0 = math.log(p0) if p0 > 0 else -np.inf
    l12 = math.log1p(-2.0 * pm)                  # "other" labels: P(neither c nor c′ drawn)
    k1 = 1.0 - q - pm                            # E[1{Y=c} − 1{Y=c′}] for a label of class c
    v1 = (1.0 - q + pm) - k1 * k1
    v0 = 2.0 * pm
    vals = np.full(K, -np.inf)
    nfev = 0
    yc = y == c
    ac = a[yc]
    for r in range(K):
        if r == c:
            continue
        if sums[r] >= sums[c]:                   # tie with the top class: B = 1
            vals[r] = 0.0
            continue
        yr = y == r
        ar = a[yr]
        ao = a[~(yc | yr)]

        def f(t, ac=ac, ar=ar, ao=ao):
            xc, xr, xo = t * ac, t * ar, t * ao
            tc = np.logaddexp(lq1 - xc, lpm + xc)
            tr = np.logaddexp(lpm - xr, lq1 + xr)
            if p0 > 0:
                tc = np.logaddexp(tc, lp0)
                tr = np.logaddexp(tr, lp0)
            to = np.logaddexp(np.logaddexp(lpm - xo, lpm + xo), l12)
            return tc.sum() + tr.sum() + to.sum()

        def df(t, ac=ac, ar=ar, ao=ao):
            # d/dt log(w₋e^{−x} + w₀ + w₊e^{x}) = α (w₊e^{x} − w₋e^{−x}) / (·)
            out = 0.0
            for aa, lneg, lpos, lmid in ((ac, lq1, lpm, lp0), (ar, lpm, lq1, lp0),
                                         (ao, lpm, lpm, l12)):
                x = t * aa
                z = np.logaddexp(np.logaddexp(lneg - x, lpos + x), lmid)
                out += np.dot(aa, np.exp(lpos + x - z) - np.exp(lneg - x - z))
            return out

        ed = k1 * (sums[c] - sums[r])
        vd = v1 * (sq[c] + sq[r]) + v0 * (sq.sum() - sq[c] - sq[r])
        val, _, nf = _minimize(f, df, ed / vd if vd > 0 else 1.0)
        vals[r] = min(val, 0.0)
        nfev += nf
    others = np.delete(vals, c)
    return c, float(scipy.special.logsumexp(others)), vals, nfev


# --------------------------------------------------------------------------------------------
# Radii
# --------------------------------------------------------------------------------------------

def _radius_from_real(x, n):
    """``ceil(x) − 1`` (largest integer r < x), −1 for x ≤ 0, capped at n."""
    x = np.asarray(x, dtype=np.float64)
    r = np.where(x > 0, np.ceil(np.minimum(x, n + 1.0)) - 1, -1)
    return np.minimum(r, n).astype(np.int64)


def kl_radius(ell, q, K, n, *, return_real=False):
    """KL radius (math.md §4, eq. 3–5 / B.3) from ℓ = log(1 − p), vectorised."""
    ell = np.asarray(ell, dtype=np.float64)
    kappa = (1.0 - K * q / (K - 1)) * math.log((1.0 - q) * (K - 1) / q)
    with np.errstate(divide="ignore", invalid="ignore"):
        rhs = -0.5 * (math.log(4.0) + ell + np.log1p(-np.exp(ell)))
    x = np.where(ell >= _LOG_HALF, -1.0, rhs / kappa)
    x = np.where(np.isneginf(ell), np.inf, x)
    r = _radius_from_real(x, n)
    return (r, x) if return_real else r


def log_thresholds(q, K, r_max):
    """L_r = log(1 − p_r) for r = 0..r_max (math.md §4), plain float64 log space, running minimum.

    m_s (s = −r..r) is the r-fold convolution of {+1: 1−q, 0: p₀, −1: p₋} computed as log-masses;
    ρ_s = m_{−s}.  k is the region where the ρ-mass accumulated from s = r downwards first
    reaches 1/2, and 1 − p_r = Σ_{s<k} m_s + R^k (1/2 − Σ_{s<k} ρ_s).  No rounding control.
    """
    q = float(q)
    pm = q / (K - 1)
    p0 = q * (K - 2) / (K - 1)
    lp, lm = math.log1p(-q), math.log(pm)
    l0 = math.log(p0) if p0 > 0 else -np.inf
    log_r = lp - lm
    L = np.empty(r_max + 1)
    L[0] = _LOG_HALF
    logm = np.zeros(1)                           # index i ↔ s = i − r
    with np.errstate(divide="ignore", invalid="ignore"):
        for r in range(1, r_max + 1):
            new = np.full(2 * r + 1, -np.inf)
            new[2:] = logm + lp
            new[1:-1] = np.logaddexp(new[1:-1], logm + l0)
            new[:-2] = np.logaddexp(new[:-2], logm + lm)
            logm = new
            logrho = logm[::-1]
            top = np.logaddexp.accumulate(logrho[::-1])[::-1]    # log Σ_{s' ≥ s} ρ
            i = int(np.flatnonzero(top >= _LOG_HALF)[-1])        # region k (index)
            below_m = np.logaddexp.reduce(logm[:i]) if i > 0 else -np.inf
            below_rho = np.logaddexp.reduce(logrho[:i]) if i > 0 else -np.inf
            # log(1/2 − Σ_{s<k} ρ_s), from whichever side cancels less
            if below_rho < math.log(0.25):
                rest = _LOG_HALF + math.log1p(-2.0 * math.exp(below_rho))
            else:
                rest = _LOG_HALF + math.log(math.expm1(top[i] - _LOG_HALF)) \
                    if top[i] > _LOG_HALF else -np.inf
            L[r] = np.logaddexp(below_m, (i - r) * log_r + rest)
    return np.minimum.accumulate(L)


def tight_radius(ell, q, K, n, *, return_real=False, table=None):
    """Tight (Neyman–Pearson) radius: largest r with ℓ < L_{r′} for all r′ ≤ r; −1 if
    ℓ ≥ log(1/2); n for ℓ = −inf.  The table is grown until it is below the smallest finite ℓ
    (or reaches r = n) unless ``table`` (from :func:`log_thresholds`) is given."""
    ell = np.asarray(ell, dtype=np.float64)
    fin = ell[np.isfinite(ell)]
    if table is None:
        r_max = 1
        L = log_thresholds(q, K, min(r_max, n))
        while fin.size and L[-1] > fin.min() and r_max < n:
            r_max = min(4 * r_max, n)
            L = log_thresholds(q, K, r_max)
    else:
        L = np.minimum.accumulate(np.asarray(table, dtype=np.float64))
    R = L.size - 1
    # number of r with ℓ < L_r (L non-increasing)  →  radius = that − 1
    cnt = L.size - np.searchsorted(L[::-1], ell, side="right")
    r = cnt - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = np.clip(r, 0, max(R - 1, 0))
        x = rr + (L[rr] - ell) / (L[rr] - L[np.minimum(rr + 1, R)])
    x = np.where(r >= R, np.inf if R >= n else R + 1.0, x)   # beyond the table
    x = np.where(np.isneginf(ell), np.inf, x)
    out = _radius_from_real(x, n)
    if R < n:
        # certified at every r in the table but the table stops early: report the table's end
        out = np.where((r >= R) & ~np.isneginf(ell), R, out)
    return (out, x) if return_real else out


def _greedy_k(moves, gap, strict):
    """(k, real x): fewest largest moves whose sum crosses ``gap`` (> gap if strict, else ≥)."""
    if (gap < 0) if strict else (gap <= 0):
        return 0, 0.0
    moves = np.sort(moves[moves > 0])[::-1]
    cum = np.cumsum(moves)
    idx = int(np.searchsorted(cum, gap, side="right" if strict else "left"))
    if idx >= cum.size:
        return None, np.inf
    prev = cum[idx - 1] if idx > 0 else 0.0
    return idx + 1, idx + (gap - prev) / moves[idx]


def exact_radius(A, y, pred, *, q=0.0, num_classes=None, return_real=False):
    """Exact radius of the deterministic rule (math.md §5), sort + cumsum per test point.

    Binary: rule 1{αᵀy ≥ τ}, τ = (1/2 − qΣα)/(1 − 2q) (ties are class 1).  K classes: argmax of
    class sums (lowest index wins ties).  −1 where ``pred`` is not the rule's prediction.
    """
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    y = np.asarray(y)
    m, n = A.shape
    out = np.empty(m, np.int64)
    xs = np.empty(m)
    q = float(Fraction(q)) if isinstance(q, str) else float(q)
    for j in range(m):
        a = A[j]
        if num_classes is None:
            s = a[y == 1].sum()
            tau = (0.5 - q * a.sum()) / (1.0 - 2.0 * q)
            if pred[j] == 1:
                moves = np.abs(a[((y == 1) & (a > 0)) | ((y == 0) & (a < 0))])
                k, x = _greedy_k(moves, s - tau, strict=True)
            else:
                moves = np.abs(a[((y == 0) & (a > 0)) | ((y == 1) & (a < 0))])
                k, x = _greedy_k(moves, tau - s, strict=False)
        else:
            c = int(pred[j])
            sums = np.bincount(y, weights=a, minlength=num_classes)
            k, x = None, np.inf
            for r in range(num_classes):
                if r == c:
                    continue
                red = np.where(y == c, np.where(a > 0, 2.0 * a, 0.0),
                               np.where(y == r, np.where(a < 0, -2.0 * a, 0.0), np.abs(a)))
                kr, xr = _greedy_k(red, sums[c] - sums[r], strict=r > c)
                if kr is not None and (k is None or kr < k):
                    k = kr
                x = min(x, xr)
        out[j] = n if k is None else min(k - 1, n)
        xs[j] = x
    return (out, xs) if return_real else out


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------

@dataclass
class ReferenceResult:
    """Same fields as :class:`numbaflip.CertifyResult` where they exist, plus diagnostics."""

    prediction: np.ndarray
    radius: dict
    radius_real: dict
    log_p_wrong: np.ndarray
    evaluations: np.ndarray            # objective evaluations per test point (all rivals)
    timings: dict = field(default_factory=dict)   # seconds per phase


def certify_alpha_reference(A, y_train, *, q, bounds=("kl",), num_classes=None,
                            timings=None, _alpha_blocks=None):
    """Reference for :func:`numbaflip.certify_alpha`: ``A`` (m, n) or an iterable of
    ``(start, block)`` (``_alpha_blocks``, used by :func:`certify_reference`)."""
    y = np.asarray(y_train).astype(np.int64)
    qv = float(Fraction(q)) if isinstance(q, str) else float(q)
    K = 2 if num_classes is None else int(num_classes)
    tm = {"alpha_setup": 0.0, "alpha": 0.0, "chernoff": 0.0, "thresholds": 0.0, "radii": 0.0,
          "exact": 0.0}
    if timings:
        tm.update(timings)
    blocks = _alpha_blocks if _alpha_blocks is not None else \
        ((s, A[s:s + 256]) for s in range(0, np.asarray(A).shape[0], 256))
    preds, ells, evs, ex, exr = [], [], [], [], []
    smoothing = any(b in ("kl", "tight") for b in bounds)
    it = iter(blocks)
    while True:
        t0 = time.perf_counter()
        try:
            _, Ab = next(it)
        except StopIteration:
            tm["alpha"] += time.perf_counter() - t0
            break
        tm["alpha"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for a in Ab:
            if num_classes is None:
                if smoothing:
                    p, ell, _, nf = binary_log_b(a, y, qv)
                else:
                    s = a[y == 1].sum()
                    p, ell, nf = int((1 - 2 * qv) * s + qv * a.sum() >= 0.5), np.nan, 0
            else:
                if smoothing:
                    p, ell, _, nf = multiclass_log_b(a, y, qv, K)
                else:
                    p = int(np.argmax(np.bincount(y, weights=a, minlength=K)))
                    ell, nf = np.nan, 0
            preds.append(p)
            ells.append(ell)
            evs.append(nf)
        tm["chernoff"] += time.perf_counter() - t0
        if "exact" in bounds:
            t0 = time.perf_counter()
            r, x = exact_radius(Ab, y, np.asarray(preds[-Ab.shape[0]:]), q=qv,
                                num_classes=num_classes, return_real=True)
            ex.append(r)
            exr.append(x)
            tm["exact"] += time.perf_counter() - t0
    n = y.shape[0]
    ell = np.asarray(ells, dtype=np.float64)
    radius, real = {}, {}
    if "kl" in bounds:
        t0 = time.perf_counter()
        radius["kl"], real["kl"] = kl_radius(ell, qv, K, n, return_real=True)
        tm["radii"] += time.perf_counter() - t0
    if "tight" in bounds:
        t0 = time.perf_counter()
        fin = ell[np.isfinite(ell)]
        r_max = 1
        table = log_thresholds(qv, K, r_max)
        while fin.size and table[-1] > fin.min() and r_max < n:
            r_max = min(4 * r_max, n)
            table = log_thresholds(qv, K, r_max)
        tm["thresholds"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        radius["tight"], real["tight"] = tight_radius(ell, qv, K, n, return_real=True,
                                                      table=table)
        tm["radii"] += time.perf_counter() - t0
    if "exact" in bounds:
        radius["exact"] = np.concatenate(ex) if ex else np.empty(0, np.int64)
        real["exact"] = np.concatenate(exr) if exr else np.empty(0)
    return ReferenceResult(prediction=np.asarray(preds, dtype=np.int64), radius=radius,
                           radius_real=real, log_p_wrong=ell,
                           evaluations=np.asarray(evs, dtype=np.int64), timings=tm)


def certify_reference(X_train, y_train, X_test, *, q, lam, bounds=("kl",), num_classes=None,
                      fit_intercept=True, block_size=256):
    """Reference for :func:`numbaflip.certify` with an explicit float ``lam``.

    ``timings["alpha_setup"]`` is the fixed cost (Gram matrix and Cholesky factorisation);
    ``timings["alpha"]`` the per-test-point cost (solve and product)."""
    t0 = time.perf_counter()
    factor = ridge_factor(X_train, float(lam), fit_intercept=fit_intercept)
    setup = time.perf_counter() - t0
    blocks = ridge_alpha_blocks(X_train, X_test, float(lam), fit_intercept=fit_intercept,
                                block_size=block_size, factor=factor)
    return certify_alpha_reference(None, y_train, q=q, bounds=bounds, num_classes=num_classes,
                                   timings={"alpha_setup": setup}, _alpha_blocks=blocks)


# --------------------------------------------------------------------------------------------
# Agreement with numbaflip
# --------------------------------------------------------------------------------------------

def compare(ref: ReferenceResult, res, rows=None, *, tol=1e-6):
    """Disagreements between a reference result and a numbaflip result.

    ``rows``: indices of ``res`` that ``ref`` was computed on (default: all).  Returns
    ``{"prediction": idx, bound: idx, ...}`` with the positions (into ``ref``) that disagree
    beyond tolerance: predictions must be equal; radii must be equal, except that they may
    differ by 1 where the reference's real-valued radius x is within ``tol`` of an integer
    (|x − round(x)| ≤ tol), i.e. where a perturbation of ℓ far below the two implementations'
    rounding and optimisation differences could move the integer radius.  The numbaflip
    log-bounds are rounded up and its thresholds down by ~1e-13 relative, the reference's
    minimiser stops at ~1e-8 relative in t (≈1e-16 relative in f); x moves by about
    Δℓ/(2κ) (KL) or Δℓ/(L_r − L_{r+1}) (tight), so 1e-6 is generous on the small problems
    of the tests; on the benchmark sizes (|ℓ| up to ~10⁴) it stays ≥ 100× the expected drift.
    """
    rows = np.arange(len(ref.prediction)) if rows is None else np.asarray(rows)
    out = {"prediction": np.flatnonzero(ref.prediction != res.prediction[rows])}
    for b, r in ref.radius.items():
        if b not in res.radius:
            continue
        other = res.radius[b][rows]
        x = ref.radius_real[b]
        near = np.isfinite(x) & (np.abs(x - np.round(x)) <= tol)
        ok = (r == other) | (near & (np.abs(r - other) <= 1))
        out[b] = np.flatnonzero(~ok)
    return out
