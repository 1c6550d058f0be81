"""Public certification API: :func:`certify` (from features) and :func:`certify_alpha`.

The public layer validates and coerces inputs once, computes alpha in bounded blocks, calls the
Numba kernels of :mod:`numbaflip.chernoff` (and :mod:`numbaflip.exact`), turns status codes into
results and radii.  See :func:`certify` for the guarantee.
"""
from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

from . import chernoff as _ch
from . import ties as _ties
from ._config import block_rows, config
from .alpha import RidgeAlpha
from .errors import NumbaflipInputError, NumbaflipWarning
from .radius import kl_radius
from .results import CertifyResult
from .validation import check_matrix, check_num_classes, resolve_lambda

#: Bound names accepted in ``bounds``.
KNOWN_BOUNDS = ("kl", "tight", "exact")
_SMOOTHING_BOUNDS = ("kl", "tight")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _q_string(q) -> str:
    if isinstance(q, str):
        s = q.strip()
    elif isinstance(q, (int, float, np.floating, np.integer)) and not isinstance(q, bool):
        s = repr(float(q))
    else:
        raise NumbaflipInputError(f"q must be a number or a decimal string, got {type(q).__name__}.")
    try:
        Fraction(s)
    except (ValueError, ZeroDivisionError):
        raise NumbaflipInputError(f"q = {q!r} is not a decimal number; pass e.g. q=0.1 or q='1e-4'.")
    if not math.isfinite(float(s)):
        raise NumbaflipInputError(f"q = {q!r} is not finite; pass a noise level such as q=0.1.")
    return s


def _check_bounds(bounds) -> tuple:
    if isinstance(bounds, str):
        bounds = (bounds,)
    bounds = tuple(bounds)
    if not bounds:
        raise NumbaflipInputError("bounds is empty; pass e.g. bounds=('kl',) or ('kl', 'tight').")
    for b in bounds:
        if b not in KNOWN_BOUNDS:
            raise NumbaflipInputError(
                f"unknown bound {b!r}; choose from {', '.join(KNOWN_BOUNDS)}.")
    return tuple(dict.fromkeys(bounds))


def _check_q(q_str: str, num_classes, bounds) -> Fraction:
    qf = Fraction(q_str)
    K = 2 if num_classes is None else num_classes
    upper = Fraction(1, 2) if num_classes is None else Fraction(K - 1, K)
    smoothing = any(b in _SMOOTHING_BOUNDS for b in bounds)
    if qf == 0 and smoothing:
        raise NumbaflipInputError(
            "q = 0 means no smoothing, so the 'kl' and 'tight' bounds do not exist; use "
            "bounds=('exact',) for q = 0, or choose q > 0.")
    if qf < 0 or qf >= upper:
        what = "(0, 1/2) for the binary formulation" if num_classes is None else \
            f"(0, {K - 1}/{K}) for K = {K} classes"
        raise NumbaflipInputError(
            f"q = {q_str} is outside {what}; choose a noise level inside that interval "
            "(q = 0 is allowed only with bounds=('exact',)).")
    return qf


def _check_labels(y, n_expected, num_classes) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise NumbaflipInputError(
            f"y_train must be one-dimensional (one label per training row), got shape {y.shape}.")
    if y.shape[0] != n_expected:
        raise NumbaflipInputError(
            f"y_train has {y.shape[0]} labels but there are {n_expected} training rows; pass one "
            "label per training row.")
    if y.shape[0] == 0:
        raise NumbaflipInputError("y_train is empty; pass at least two labelled training rows.")
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise NumbaflipInputError(
            f"y_train must hold integer class labels, got dtype {y.dtype}.")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            bad = int(np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))[0])
            raise NumbaflipInputError(
                f"y_train[{bad}] = {y[bad]!r} is not an integer class label; labels must be "
                "0/1 (binary) or 0..K−1 (num_classes=K).")
    yi = y.astype(np.int64)
    K = 2 if num_classes is None else num_classes
    if yi.min() < 0 or yi.max() > K - 1:
        bad = int(np.flatnonzero((yi < 0) | (yi > K - 1))[0])
        hint = ("labels must be 0 or 1 for the binary formulation; pass num_classes=K for K "
                "classes" if num_classes is None else f"labels must be in 0..{K - 1}")
        raise NumbaflipInputError(f"y_train[{bad}] = {yi[bad]} is out of range: {hint}.")
    if np.unique(yi).size < 2:
        raise NumbaflipInputError(
            f"y_train contains only class {int(yi[0])}; a classifier needs at least two classes "
            "among the training labels.")
    return np.ascontiguousarray(yi)


def _check_precision(precision):
    if precision not in ("auto", "float64", "mp"):
        raise NumbaflipInputError(
            f"precision must be 'auto', 'float64' or 'mp', got {precision!r}.")
    return precision



def _check_options(num_classes, bounds, q, precision):
    """The options certify and certify_alpha share: (num_classes, bounds, q_str, q, precision)."""
    num_classes = check_num_classes(num_classes)
    bounds = _check_bounds(bounds)
    q_str = _q_string(q)
    qf = _check_q(q_str, num_classes, bounds)
    return num_classes, bounds, q_str, qf, _check_precision(precision)

# --------------------------------------------------------------------------------------------
# Block engine
# --------------------------------------------------------------------------------------------

class _Engine:
    """Accumulates per-block kernel results, then computes radii."""

    def __init__(self, y, n, m, q_str, qf, num_classes, bounds, precision):
        self.y = y
        self.n = n
        self.m = m
        self.q_str = q_str
        self.qf = qf
        self.q = float(qf)
        self.num_classes = num_classes
        self.K = 2 if num_classes is None else num_classes
        self.bounds = bounds
        self.precision = precision
        self.smoothing = any(b in _SMOOTHING_BOUNDS for b in bounds)
        self.pred = np.empty(m, np.int64)
        self.logb = np.full(m, np.nan)
        self.err = np.zeros(m)
        self.status = np.zeros(m, np.int8)
        self.iters = np.zeros(m, np.int64)
        if num_classes is None:
            self.t = np.full(m, np.nan)
            self.pair = None
        else:
            self.t = np.zeros((m, self.K))
            self.pair = np.full((m, self.K), np.nan)
        self.radius = {b: np.empty(m, np.int64) for b in bounds}
        self.n_mp = 0

    # -- per block -----------------------------------------------------------------------
    def run_block(self, start, A):
        A = np.ascontiguousarray(A, dtype=np.float64)
        b = A.shape[0]
        sl = slice(start, start + b)
        if self.num_classes is None:
            self._binary_block(A, sl)
        else:
            self._multiclass_block(A, sl)
        if self.smoothing:
            self._refine_block(A, sl)
        if "exact" in self.bounds:
            from .exact import exact_radius
            self.radius["exact"][sl] = exact_radius(
                A, self.y, self.pred[sl], q=self.q_str, num_classes=self.num_classes)

    def _binary_block(self, A, sl):
        b = A.shape[0]
        side = np.empty(b, np.int64)
        degen = np.empty(b, np.int64)
        amb = np.empty(b, np.bool_)
        guess = np.empty(b)
        # For q = 0 (exact only) the smoothed rule is the plain rule 1{αᵀy ≥ 1/2}.
        _ch._binary_decide(A, self.y, self.q, self.smoothing, side, degen, amb, guess)
        for j in np.flatnonzero(amb):
            side[j], degen[j] = _ties.binary_decision(A[j], self.y, self.qf)
        self.pred[sl] = (side >= 0).astype(np.int64)
        if not self.smoothing:
            self.status[sl] = _ch.STATUS_INTERIOR
            return
        logb = np.empty(b)
        err = np.empty(b)
        t = np.empty(b)
        st = np.empty(b, np.int8)
        it = np.empty(b, np.int64)
        _ch._binary_driver(A, self.y, self.q, side, degen, guess, config.newton_rtol,
                           config.newton_maxiter, logb, err, t, st, it)
        self.logb[sl], self.err[sl], self.t[sl], self.status[sl], self.iters[sl] = \
            logb, err, t, st, it

    def _multiclass_block(self, A, sl):
        b = A.shape[0]
        K = self.K
        pred = np.empty(b, np.int64)
        tied = np.empty((b, K), np.bool_)
        amb = np.empty(b, np.bool_)
        _ch._mc_decide(A, self.y, K, pred, tied, amb)
        for j in np.flatnonzero(amb):
            pred[j], tied[j] = _ties.multiclass_decision(A[j], self.y, K)
        self.pred[sl] = pred
        if not self.smoothing:
            self.status[sl] = np.where(tied.any(axis=1), _ch.STATUS_ZERO, _ch.STATUS_INTERIOR)
            return
        logb = np.empty(b)
        err = np.empty(b)
        t = np.empty((b, K))
        pair = np.empty((b, K))
        st = np.empty(b, np.int8)
        it = np.empty(b, np.int64)
        _ch._mc_driver(A, self.y, K, self.q, pred, tied, config.newton_rtol,
                       config.newton_maxiter, 40.0, logb, err, t, pair, st, it)
        self.logb[sl], self.err[sl], self.t[sl], self.pair[sl], self.status[sl], \
            self.iters[sl] = logb, err, t, pair, st, it

    def _radii(self, ell):
        out = {}
        if "kl" in self.bounds:
            out["kl"] = kl_radius(ell, self.q, self.K, self.n)
        if "tight" in self.bounds:
            from .tight import tight_radius
            # Both radii are valid certificates, so their maximum is one too; the tight one is
            # never smaller in exact arithmetic, this only guards against rounding at a boundary.
            kl = out["kl"] if "kl" in out else kl_radius(ell, self.q, self.K, self.n)
            out["tight"] = np.maximum(tight_radius(ell, self.q_str, self.K, self.n), kl)
        return out

    def _refine_block(self, A, sl):
        """High-precision path (design card; issue 'tight', item 5).

        Where the float64 error interval of log_p_wrong straddles a radius boundary (the
        integer radius is uncertain), or always with precision='mp', re-evaluate the Chernoff
        objective at the t actually used in mpmath and keep the smaller rigorous upper bound.
        """
        if self.precision == "float64":
            return
        logb = self.logb[sl]
        finite = np.isfinite(logb) & (self.status[sl] != _ch.STATUS_LIMIT)
        if self.precision == "mp":
            rows = np.flatnonzero(finite)
        else:
            lower = logb - 2.0 * self.err[sl]
            hi = self._radii(logb)
            lo = self._radii(lower)
            diff = np.zeros(logb.shape, bool)
            for k in hi:
                diff |= hi[k] != lo[k]
            rows = np.flatnonzero(diff & finite)
        if rows.size == 0:
            return
        from . import precision as _mp
        base = sl.start
        for j in rows:
            g = base + j
            if self.num_classes is None:
                v = _mp.mp_binary_log_objective(A[j], self.y, self.q_str, float(self.t[g]))
            else:
                v = _mp.mp_multiclass_log_bound(A[j], self.y, int(self.pred[g]), self.K,
                                                self.q_str, self.t[g])
            if v < self.logb[g]:
                self.logb[g] = v
                self.err[g] = 0.0
            self.n_mp += 1

    # -- final -----------------------------------------------------------------------------
    def finish(self):
        radii = self._radii(self.logb) if self.smoothing else {}
        for b in self.bounds:
            if b in radii:
                self.radius[b][:] = radii[b]
        n_maxiter = int(np.sum(self.status == _ch.STATUS_MAXITER))
        if n_maxiter:
            warnings.warn(
                f"Newton reached the iteration cap on {n_maxiter} test point(s); their bounds "
                "are valid but may be loose (raise numbaflip._config.config.newton_maxiter).",
                NumbaflipWarning, stacklevel=3)


def _run(engine, blocks, m, progress):
    from tqdm.auto import tqdm
    disable = (not progress) if progress is not None else None
    with tqdm(total=m, unit="pt", desc="certify", disable=disable, leave=False) as bar:
        for start, A in blocks:
            engine.run_block(start, A)
            bar.update(A.shape[0])
    engine.finish()


def _result(engine, lam):
    e = engine
    return CertifyResult(
        prediction=e.pred, radius=e.radius, log_p_wrong=e.logb, log_p_wrong_err=e.err,
        status=e.status, t_star=e.t, pair_log_b=e.pair, q=e.q_str,
        num_classes=e.num_classes, n=e.n, bounds=e.bounds, lam=lam,
        info={"newton_iterations": e.iters, "mp_refined": e.n_mp, "precision": e.precision})


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

def certify(X_train, y_train, X_test, *, q, lam="auto", bounds=("kl",), num_classes=None,
            fit_intercept=True, precision="auto", progress=None) -> CertifyResult:
    """Certify each test prediction of a ridge classifier against training-label flips.

    Implements Rosenfeld et al., "Certified Robustness to Label-Flipping Attacks via Randomized
    Smoothing" (ICML 2020), Algorithm 1 and appendix B, with the corrections of numbaflip's
    ``math.md`` and two further certificates.

    **What is certified.**  For the smoothing bounds (``"kl"``, ``"tight"``) the certified
    classifier is the *smoothed* classifier g of the paper: the majority vote, over training
    labels each independently resampled with noise q (binary: flipped with probability q;
    K classes: kept with probability 1 − q, otherwise moved uniformly to one of the other K − 1
    classes), of the ridge classifier trained on those labels with fixed alpha.  A radius
    r ≥ 0 at a test point guarantees: for *every* training-label vector within r flips of
    ``y_train``, g returns ``prediction`` with probability strictly above 1/2.  A radius of
    −1 means not certified, not even at r = 0 (the bound on 1 − p is ≥ 1/2; ``prediction``
    may then differ from g's output).  Radii are capped at n; n means certified against every
    labelling.  ``"exact"`` certifies the deterministic linear rule that produced
    ``prediction`` (binary: 1{αᵀy ≥ τ_q} with τ_q = (1/2 − qΣα)/(1 − 2q), the rule the
    smoothed classifier deploys; K classes: argmax of class sums) and is exact, not a bound.

    Radii are *lower bounds* on the true robustness: every approximation (Newton stopping early,
    floating point, table rounding) can only make them smaller.

    **Assumptions.**  The certificate treats alpha as fixed while the labels move, so the
    feature map and λ must not depend on the training labels: use features fitted without
    them (pretrained on other data, or unsupervised) and a label-free λ (``lam="auto"`` or a
    float); :func:`numbaflip.alpha.paper_lambda` is the paper's label-dependent rule.

    Parameters
    ----------
    X_train : (n, k) array of training features (finite).
    y_train : (n,) integer labels: {0, 1} when ``num_classes`` is None, else 0..K−1.
    X_test : (m, k) array of test features.
    q : float or decimal string.  Noise level: binary 0 < q < 1/2; K classes 0 < q < (K−1)/K.
        q = 0 is allowed with ``bounds=("exact",)`` only.  q is taken as its exact decimal value.
    lam : float ≥ 0 or "auto".  Ridge parameter; "auto" is :func:`numbaflip.alpha.default_lambda`
        (label-free).
    bounds : subset of ("kl", "tight", "exact").
    num_classes : None for the paper's binary formulation (labels {0,1}, base rule
        1{αᵀy ≥ 1/2}, one Chernoff bound); K ≥ 2 for the pairwise K-class formulation
        (argmax of class sums, K−1 pairwise bounds restricted to t > 0, union bound).  With
        K = 2 the two formulations differ: the K-class noise moves a label to the other class
        with probability q as well, but the pairwise bound is on s₀ − s₁, not on αᵀy − 1/2.
    fit_intercept : append a column of ones to the features (λ regularises it too).
    precision : "auto" (float64; where the error interval of ``log_p_wrong`` straddles a
        radius boundary, re-evaluate the objective at t* in mpmath), "float64", or "mp"
        (re-evaluate every point in mpmath).
    progress : show a tqdm bar on stderr (None: only on a terminal).

    Returns
    -------
    CertifyResult
    """
    num_classes, bounds, q_str, qf, precision = _check_options(num_classes, bounds, q,
                                                               precision)
    X_train = check_matrix(X_train, "X_train")
    X_test = check_matrix(X_test, "X_test", cols=X_train.shape[1])
    y = _check_labels(y_train, X_train.shape[0], num_classes)
    lam_v = resolve_lambda(lam, X_train, float(qf), fit_intercept)
    solver = RidgeAlpha(X_train, lam_v, fit_intercept=fit_intercept)
    engine = _Engine(y, X_train.shape[0], X_test.shape[0], q_str, qf, num_classes, bounds,
                     precision)
    _run(engine, solver.blocks(X_test, reuse=True), X_test.shape[0], progress)
    return _result(engine, lam_v)


def certify_alpha(A, y_train, *, q, bounds=("kl",), num_classes=None, precision="auto",
                  progress=None) -> CertifyResult:
    """Certify predictions given alpha directly: ``A`` of shape (m, n), one row per test point.

    Any learner whose scores are linear in the one-hot training labels can be certified this
    way (kernel ridge, fixed-weight kNN, label propagation): binary score ``A[j] @ y``, K-class
    scores the class sums of ``A[j]``.  Same guarantee, parameters and result as
    :func:`certify`; A must not depend on the training labels.
    """
    num_classes, bounds, q_str, qf, precision = _check_options(num_classes, bounds, q,
                                                               precision)
    A = check_matrix(A, "A")
    y = _check_labels(y_train, A.shape[1], num_classes)
    m = A.shape[0]
    bs = block_rows(A.shape[1])
    engine = _Engine(y, A.shape[1], m, q_str, qf, num_classes, bounds, precision)
    _run(engine, ((s, A[s:s + bs]) for s in range(0, m, bs)), m, progress)
    return _result(engine, None)
