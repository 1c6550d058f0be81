"""Public certification API: :func:`certify` (from features) and :func:`certify_alpha`.

The public layer validates and coerces inputs once, computes alpha in bounded blocks, calls the
Numba kernels of :mod:`numbaflip._kernels` (through :mod:`numbaflip.exact` for the exact bound), turns status codes into
results and radii.  See :func:`certify` for the guarantee.
"""
from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from fractions import Fraction

import numpy as np

from ._kernels import binary as _kb
from ._kernels import common as _kc
from ._kernels import histogram as _kh
from ._kernels import pairwise as _kp
from . import rules as _rules
from .config import block_rows, config
from .alpha import RidgeAlpha
from .errors import NumbaflipWarning
from .radius import kl_radius
from .results import CertifyResult
from . import exact as _ex
from ._problem import class_slots, problem

_U = 2.0 ** -53
#: Phases timed by _Engine (res.info["seconds"]): decide (prediction and
#: degenerate-case kernels, K classes and the full-pass / exact-only binary path; the
#: histogram engine decides inside its kernel), histogram (bucket build, Newton on buckets and
#: the certified evaluation: one fused kernel per engine), passes (full-pass Newton engine and
#: the binary degenerate cases), sandwich (radii of U and of the lower bound, thresholds
#: included), full_pass (the full-pass Newton on points whose sandwich did not close), refine
#: (mpmath re-evaluation), radii (final kl/tight radii, thresholds included), exact (exact
#: certificate: kernels plus exact-rational rows).
PHASES = ("decide", "histogram", "passes", "sandwich", "full_pass", "refine", "radii",
          "exact")
#: Largest m × K for which per-rival outputs are stored for every class (else per slot).
_MAX_PAIR_ENTRIES = 1 << 24


# --------------------------------------------------------------------------------------------
# Block engine
# --------------------------------------------------------------------------------------------

class _Engine:
    """Accumulates per-block kernel results, then computes radii.

    K classes run on :class:`numbaflip._problem.ClassSlots` (the classes present plus at most
    two absent ones), so work and memory scale with the classes present, not with K.
    """

    def __init__(self, pb):
        self.y = pb.y
        self.n = n = pb.n
        self.m = m = pb.m
        self.qv = qv = pb.q
        self.q = qv.value
        self.num_classes = num_classes = pb.num_classes
        self.K = pb.K
        self.bounds = bounds = pb.bounds
        self.precision = pb.precision
        self.smoothing = pb.smoothing
        self.pred = np.empty(m, np.int64)
        self.logb = np.full(m, np.nan)
        self.err = np.zeros(m)
        self.status = np.zeros(m, np.int8)
        self.iters = np.zeros(m, np.int64)
        #: rows whose bound is already as good as a full pass could make it (histogram
        #: sandwich closed): the mp refinement skips them
        self.settled = np.zeros(m, np.bool_)
        #: counts of the histogram engine and of the exact certificate (rows settled in exact
        #: rationals), res.info["histogram"]; per-phase wall seconds of this call
        #: (perf_counter around kernel calls, never inside them), res.info["seconds"]
        self.hist = {"closed": 0, "full_pass": 0, "buckets": 0, "exact_rational": 0}
        self.seconds = dict.fromkeys(PHASES, 0.0)
        if config.chernoff_engine not in ("auto", "histogram", "passes"):
            from .errors import NumbaflipInputError
            raise NumbaflipInputError(
                f"numbaflip.config.config.chernoff_engine = {config.chernoff_engine!r}; use "
                "'auto', 'histogram' or 'passes'.")
        self.engine = config.chernoff_engine
        if self.engine == "auto":
            self.engine = "histogram" if n >= config.histogram_min_n else "passes"
        self.slots = None
        if num_classes is None:
            self.t = np.full(m, np.nan)
            self.pair = None
        else:
            self.slots = class_slots(self.y, self.K)
            self.t = np.zeros((m, self.slots.S))
            self.pair = np.full((m, self.slots.S), np.nan)
        self.radius = {b: np.empty(m, np.int64) for b in bounds}
        self.n_mp = 0
        # The kernels evaluate the objective at float(q); every term moves by at most
        # |Δq|/min(q, 1 − q) ≤ u per unit of relative rounding of q (and of p₋, p₀, 1 − q for
        # K classes), so n·4u (K classes) or n·u (binary, only if q is not a double) bounds the
        # difference to the objective at the exact q.  Added to every float64 bound.
        exact_double = Fraction(self.q) == qv.exact
        self.q_shift = 0.0 if (num_classes is None and exact_double) else \
            (1.0 if num_classes is None else 4.0) * n * _U * (1.0 + 1e-6)

    @contextmanager
    def _clock(self, phase):
        """Adds the wall time of the ``with`` body to ``self.seconds[phase]``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - t0

    def _exact(self, A, Y, sl, num_classes):
        """The exact certificate (math.md §5) of rows ``sl``: kernels, then exact rationals
        for the rows they cannot settle (counted in ``hist["exact_rational"]``)."""
        with self._clock("exact"):
            k, _, rational = _ex._exact_k(A, Y, self.pred[sl], self.qv.exact, num_classes)
            self.radius["exact"][sl] = _ex._radius_from_k(k, self.n)
        self.hist["exact_rational"] += int(rational.sum())

    # -- per block -----------------------------------------------------------------------
    def run_sparse_block(self, start, idx, w):
        """A block of sparse α rows: row j has the weights ``w[j]`` on the training points
        ``idx[j]`` (both b × k; indices strictly increasing within a row; every other α is 0).

        Each certificate of row j depends only on (w[j], y[idx[j]]): every Chernoff term
        vanishes at α_i = 0, the decision and degenerate-case sums only involve nonzeros, and
        a zero α is never a helpful move of the exact certificate (math.md §2, §3, §5).  So
        the kernels run on the compact rows, O(k) per test point instead of O(n), through the
        same drivers as the dense path (a label row per test row), with the
        full-pass Chernoff engine.  Radii are capped at the true n, and the q-rounding shift
        keeps the true n (conservative: k would do)."""
        W = np.ascontiguousarray(w, dtype=np.float64)
        idx = np.asarray(idx, dtype=np.int64)
        b = W.shape[0]
        sl = slice(start, start + b)
        lab = self.y if self.num_classes is None else self.slots.y
        Y = np.ascontiguousarray(lab[idx])
        if self.num_classes is None:
            self._sparse_binary(W, Y, sl)
        else:
            self._sparse_multiclass(W, Y, sl)
        if self.smoothing:
            self._refine_block(W, sl, Y)
        if "exact" in self.bounds:
            self._exact(self._sparse_exact_rows(W), Y, sl,
                        None if self.num_classes is None else self.slots.S)

    def _sparse_exact_rows(self, W):
        """K classes: rows whose weights are all equal and positive (the uniform kNN vote)
        scaled to 1.0 for the exact certificate.  The K-class rule and its exact radius only
        compare class sums, gaps and greedy reductions, all multiplied by the same w > 0, so
        the radius is unchanged (math.md §5); sums of ones are exact in float64, so the kernels
        decide every tie of two class counts themselves (with w = 1/k rounded they could not,
        and each such row went to exact rationals).  Binary rows are left as they are: the
        threshold 1/2 is not scale-free."""
        if self.num_classes is None or W.shape[1] == 0:
            return W
        eq = (W == W[:, :1]).all(axis=1) & (W[:, 0] > 0)
        if not eq.any():
            return W
        W = W.copy()
        W[eq] = 1.0
        return W

    def _sparse_binary(self, W, Y, sl):
        """:meth:`_binary_block` (full-pass engine) on compact rows W with labels Y."""
        b = W.shape[0]
        side = np.empty(b, np.int64)
        degen = np.empty(b, np.int64)
        amb = np.empty(b, np.bool_)
        guess = np.empty(b)
        _kb._binary_decide(W, Y, self.q, self.smoothing, side, degen, amb, guess)
        for j in np.flatnonzero(amb):
            side[j], degen[j] = _rules.binary_decision(W[j], Y[j], self.qv.exact)
        self.pred[sl] = (side >= 0).astype(np.int64)
        if not self.smoothing:
            self.status[sl] = _kc.STATUS_INTERIOR
            return
        o = [np.empty(b), np.empty(b), np.empty(b), np.empty(b, np.int8), np.empty(b, np.int64)]
        _kb._binary_driver(W, Y, self.q, side, degen, guess, config.newton_rtol,
                               config.newton_maxiter, *o)
        logb, err, t, st, it = o
        self._store_bound(sl, logb, err)
        self.t[sl], self.status[sl], self.iters[sl] = t, st, it

    def _sparse_multiclass(self, W, Y, sl):
        """:meth:`_multiclass_block` (full-pass engine) on compact rows W with slot labels Y."""
        b = W.shape[0]
        S = self.slots.S
        pred = np.empty(b, np.int64)
        tied = np.empty((b, S), np.bool_)
        amb = np.empty(b, np.bool_)
        _kp._mc_decide(W, Y, S, pred, tied, amb)
        for j in np.flatnonzero(amb):
            pred[j], tied[j] = _rules.multiclass_decision(W[j], Y[j], S)
        self.pred[sl] = pred
        if not self.smoothing:
            self.status[sl] = np.where(tied.any(axis=1), _kc.STATUS_ZERO, _kc.STATUS_INTERIOR)
            return
        logb, err, t, pair, st, it = out = (
            np.empty(b), np.empty(b), np.zeros((b, S)), np.empty((b, S)),
            np.empty(b, np.int8), np.empty(b, np.int64))
        _kp._mc_driver(W, Y, S, self.K, self.q, self.slots.log_weight, pred, tied,
                           config.newton_rtol, config.newton_maxiter, 40.0, *out)
        self._store_bound(sl, logb, err)
        fin = np.isfinite(pair)
        self.pair[sl] = np.where(fin, pair + self.q_shift, pair)
        self.t[sl], self.status[sl], self.iters[sl] = t, st, it

    def run_block(self, start, A):
        A = np.ascontiguousarray(A, dtype=np.float64)
        b = A.shape[0]
        sl = slice(start, start + b)
        if self.num_classes is None and not self.smoothing:
            self._binary_exact_only(A, sl)
            return
        if self.num_classes is None:
            self._binary_block(A, sl)
        else:
            self._multiclass_block(A, sl)
        if self.smoothing:
            self._refine_block(A, sl)
        if "exact" in self.bounds:
            if self.num_classes is None:
                self._exact(A, self.y, sl, None)
            else:
                self._exact(A, self.slots.y, sl, self.slots.S)

    def _binary_exact_only(self, A, sl):
        """Binary block with the exact bound only (math.md §5): the rule's prediction and its
        exact certificate from one kernel pass over α (:func:`exact._exact_predict_k`; the
        same rule as the decide kernel, 1{(1−2q) αᵀy + qΣα ≥ 1/2}, ties decided exactly)."""
        with self._clock("exact"):
            pred, k, rational = _ex._exact_predict_k(A, self.y, self.qv.exact)
            self.radius["exact"][sl] = _ex._radius_from_k(k, self.n)
        self.pred[sl] = pred
        self.status[sl] = _kc.STATUS_INTERIOR
        self.hist["exact_rational"] += int(rational.sum())

    def _binary_block(self, A, sl):
        b = A.shape[0]
        side = np.empty(b, np.int64)
        degen = np.empty(b, np.int64)
        amb = np.empty(b, np.bool_)
        guess = np.empty(b)
        logb = np.empty(b)
        err = np.empty(b)
        t = np.empty(b)
        st = np.empty(b, np.int8)
        it = np.empty(b, np.int64)
        hist = self.smoothing and self.engine == "histogram"
        if hist:    # decide and histogram bound in one read of α (math.md §2b)
            done = np.zeros(b, np.bool_)
            low = np.full(b, -np.inf)
            nb = np.zeros(b, np.int64)
            with self._clock("histogram"):
                _kh.hist_binary_driver(A, self.y, self.q, config.newton_maxiter, np.arange(b),
                                       True, side, degen, amb, guess, done, logb, err, t, low,
                                       nb)
        else:
            # For q = 0 (exact only) the smoothed rule is the plain rule 1{αᵀy ≥ 1/2}.
            with self._clock("decide"):
                _kb._binary_decide(A, self.y[None, :], self.q, self.smoothing, side, degen,
                                   amb, guess)
        with self._clock("decide"):
            for j in np.flatnonzero(amb):
                side[j], degen[j] = _rules.binary_decision(A[j], self.y, self.qv.exact)
        self.pred[sl] = (side >= 0).astype(np.int64)
        if not self.smoothing:
            self.status[sl] = _kc.STATUS_INTERIOR
            return
        if hist:
            interior = (degen == _kc.DEGEN_INTERIOR) & (side != 0)
            rest = np.flatnonzero(~interior)
            if rest.size:   # degenerate cases: analytic, no Newton (math.md §2)
                self._binary_passes(A[rest], side[rest], degen[rest], guess[rest], rest, logb,
                                    err, t, st, it)
            late = np.flatnonzero(interior & ~done)   # settled exactly after the kernel
            if late.size:
                with self._clock("histogram"):
                    _kh.hist_binary_driver(A, self.y, self.q, config.newton_maxiter, late,
                                           False, side, degen, amb, guess, done, logb, err, t,
                                           low, nb)
            self._binary_histogram(A, sl, np.flatnonzero(interior), side, logb, err, t, st,
                                   it, low, nb)
        else:
            self._binary_passes(A, side, degen, guess, slice(None), logb, err, t, st, it)
        self._store_bound(sl, logb, err)
        self.t[sl], self.status[sl], self.iters[sl] = t, st, it

    def _binary_passes(self, A, side, degen, guess, where, logb, err, t, st, it):
        """The full-pass engine on rows ``where`` of the block outputs."""
        b = A.shape[0]
        o = [np.empty(b), np.empty(b), np.empty(b), np.empty(b, np.int8), np.empty(b, np.int64)]
        with self._clock("passes"):
            _kb._binary_driver(np.ascontiguousarray(A), self.y[None, :], self.q, side, degen,
                               guess, config.newton_rtol, config.newton_maxiter, *o)
        for out, val in zip((logb, err, t, st, it), o):
            out[where] = val

    def _close_sandwich(self, sl, rows, logb, low, nb, st, it):
        """The histogram rows whose sandwich does not close (math.md §2b): radius(U) differs
        from the radius of the lower bound on min f for some bound.  The others are settled
        (the mp refinement skips them); counts go to ``self.hist``."""
        st[rows] = _kc.STATUS_INTERIOR
        it[rows] = 0
        with self._clock("sandwich"):
            hi = self._radii(logb[rows] + self.q_shift)
            lo = self._radii(low[rows] - self.q_shift)
        open_ = np.zeros(rows.size, np.bool_)
        for k in hi:
            open_ |= hi[k] != lo[k]
        self.settled[sl][rows[~open_]] = True
        self.hist["closed"] += int(rows.size - int(open_.sum()))
        self.hist["full_pass"] += int(open_.sum())
        self.hist["buckets"] += int(nb[rows].sum())
        return rows[open_]

    def _binary_histogram(self, A, sl, rows, side, logb, err, t, st, it, low, nb):
        """Histogram engine (math.md §2b) on the interior ``rows`` (their U(t̂), lower bound
        ``low`` and bucket counts ``nb`` already computed): U where the sandwich closes
        (radius(U) = radius(lower bound on min f) for every bound), else the full-pass Newton
        started at t̂, keeping the smaller of the two valid bounds."""
        if rows.size == 0:
            return
        redo = self._close_sandwich(sl, rows, logb, low, nb, st, it)
        if redo.size:
            lb, e2, t2, it2 = np.empty_like(logb), np.empty_like(err), np.empty_like(t), \
                np.zeros_like(it)
            conv = np.ones(A.shape[0], np.bool_)
            with self._clock("full_pass"):
                _kh.full_pass_rows(A, self.y, self.q, side, np.abs(t), redo, config.newton_rtol,
                                   config.newton_maxiter, lb, e2, t2, it2, conv)
            better = redo[lb[redo] < logb[redo]]
            logb[better], err[better], t[better] = lb[better], e2[better], t2[better]
            it[redo] = it2[redo]
            st[redo] = np.where(conv[redo], _kc.STATUS_INTERIOR, _kc.STATUS_MAXITER)

    def _store_bound(self, sl, logb, err):
        fin = np.isfinite(logb)
        self.logb[sl] = np.where(fin, logb + self.q_shift, logb)
        self.err[sl] = np.where(fin, err + self.q_shift, err)

    def _multiclass_block(self, A, sl):
        b = A.shape[0]
        S, ys = self.slots.S, self.slots.y
        pred = np.empty(b, np.int64)
        tied = np.empty((b, S), np.bool_)
        amb = np.empty(b, np.bool_)
        with self._clock("decide"):
            _kp._mc_decide(A, ys[None, :], S, pred, tied, amb)
            for j in np.flatnonzero(amb):
                pred[j], tied[j] = _rules.multiclass_decision(A[j], ys, S)
        self.pred[sl] = pred
        if not self.smoothing:
            self.status[sl] = np.where(tied.any(axis=1), _kc.STATUS_ZERO, _kc.STATUS_INTERIOR)
            return

        def passes(where, phase="passes"):
            """The full-pass K-class driver (math.md §3) on rows ``where``: its outputs."""
            Aw = np.ascontiguousarray(A[where])
            o = (np.empty(Aw.shape[0]), np.empty(Aw.shape[0]), np.zeros((Aw.shape[0], S)),
                 np.empty((Aw.shape[0], S)), np.empty(Aw.shape[0], np.int8),
                 np.empty(Aw.shape[0], np.int64))
            with self._clock(phase):
                _kp._mc_driver(Aw, ys[None, :], S, self.K, self.q, self.slots.log_weight,
                               np.ascontiguousarray(pred[where]),
                               np.ascontiguousarray(tied[where]), config.newton_rtol,
                               config.newton_maxiter, 40.0, *o)
            return o

        out = (np.empty(b), np.empty(b), np.zeros((b, S)), np.empty((b, S)),
               np.empty(b, np.int8), np.empty(b, np.int64))
        if self.engine == "histogram":
            interior = ~tied.any(axis=1)
            rest = np.flatnonzero(~interior)
            if rest.size:   # tied rivals (B = 1, status ZERO): the full-pass driver
                for dst, val in zip(out, passes(rest)):
                    dst[rest] = val
            self._mc_histogram(A, sl, pred, tied, np.flatnonzero(interior), out, passes)
        else:
            out = passes(slice(None))
        logb, err, t, pair, st, it = out
        self._store_bound(sl, logb, err)
        fin = np.isfinite(pair)
        self.pair[sl] = np.where(fin, pair + self.q_shift, pair)
        self.t[sl], self.status[sl], self.iters[sl] = t, st, it

    def _mc_histogram(self, A, sl, pred, tied, rows, out, passes):
        """Histogram engine (math.md §2b, §3) on the ``rows`` without tied rivals: the
        certified union bound from the bucket models where the sandwich closes (radius(U) =
        radius(lower bound on the best full-pass ℓ) for every bound), else ``passes`` (the
        full-pass driver) on those rows, keeping per row the smaller of the two valid bounds
        with its per-pair values and t."""
        from ._kernels import histogram_pairwise as _khp
        if rows.size == 0:
            return
        logb, err, t, pair, st, it = out
        low = np.full(A.shape[0], -np.inf)
        nb = np.zeros(A.shape[0], np.int64)
        lw = self.slots.log_weight
        lw_lo = np.where(lw > 0, lw * (1.0 - 2.0 ** -46), 0.0)   # ≤ log(weight)
        with self._clock("histogram"):
            _khp.hist_mc_driver(A, self.slots.y, self.slots.S, self.K, self.q, lw, lw_lo, pred,
                                tied, rows, config.newton_maxiter, 40.0, logb, err, t, pair,
                                low, nb)
        redo = self._close_sandwich(sl, rows, logb, low, nb, st, it)
        if redo.size:
            lb, e2, t2, p2, st2, it2 = passes(redo, "full_pass")
            better = lb < logb[redo]
            rb = redo[better]
            logb[rb], err[rb], t[rb], pair[rb] = lb[better], e2[better], t2[better], p2[better]
            st[redo], it[redo] = st2, it2

    def _radii(self, ell):
        """Radii of every smoothing bound from ℓ.  The tight radius is never below the KL one
        (both are valid, so their maximum is too; it only guards rounding at a boundary), and
        a point the KL bound already certifies at n needs no threshold table."""
        out = {}
        kl = kl_radius(ell, self.qv.exact, self.K, self.n)
        if "kl" in self.bounds:
            out["kl"] = kl
        if "tight" in self.bounds:
            from .tight import tight_radius
            tight = kl.copy()
            todo = kl < self.n
            if todo.any():
                tight[todo] = np.maximum(
                    tight_radius(ell[todo], self.qv.canonical, self.K, self.n), kl[todo])
            out["tight"] = tight
        return out

    def _refine_block(self, A, sl, Y=None):
        """High-precision path (mpmath, for the rows float64 cannot settle; math.md §2–§3).

        Where the float64 error interval of log_p_wrong straddles a radius boundary (the
        integer radius is uncertain), or always with precision='mp', re-evaluate the Chernoff
        objective at the t actually used in mpmath (with the exact q) and keep the smaller
        rigorous upper bound.  ``Y``: per-row labels of compact rows A (sparse path).
        """
        if self.precision == "float64":
            return
        logb = self.logb[sl]
        finite = np.isfinite(logb) & (self.status[sl] != _kc.STATUS_LIMIT)
        if self.precision == "mp":
            rows = np.flatnonzero(finite)
        elif self.settled[sl].all():
            return
        else:
            lower = logb - 2.0 * self.err[sl]
            hi = self._radii(logb)
            lo = self._radii(lower)
            diff = np.zeros(logb.shape, bool)
            for k in hi:
                diff |= hi[k] != lo[k]
            rows = np.flatnonzero(diff & finite & ~self.settled[sl])
        if rows.size == 0:
            return
        with self._clock("refine"):
            self._refine_rows(A, rows, sl, Y)

    def _refine_rows(self, A, rows, sl, Y):
        """The mpmath re-evaluation of :meth:`_refine_block` on ``rows``."""
        from . import precision as _mp
        base = sl.start
        lab = self.y if self.num_classes is None else self.slots.y
        for j in rows:
            g = base + j
            yj = lab if Y is None else Y[j]
            if self.num_classes is None:
                v = _mp.mp_binary_log_objective(A[j], yj, self.qv.canonical,
                                                float(self.t[g]))
            else:
                v = _mp.mp_multiclass_log_bound(
                    A[j], yj, int(self.pred[g]), self.slots.S, self.qv.canonical,
                    self.t[g], noise_K=self.K, weights=self.slots.weight)
            if v < self.logb[g]:
                self.logb[g] = v
                self.err[g] = 0.0
            self.n_mp += 1

    # -- final -----------------------------------------------------------------------------
    def finish(self):
        with self._clock("radii"):
            radii = self._radii(self.logb) if self.smoothing else {}
        for b in self.bounds:
            if b in radii:
                self.radius[b][:] = radii[b]
        if self.slots is not None:
            self._unslot()
        n_maxiter = int(np.sum(self.status == _kc.STATUS_MAXITER))
        if n_maxiter:
            warnings.warn(
                f"Newton reached the iteration cap on {n_maxiter} test point(s); their bounds "
                "are valid but may be loose (raise numbaflip.config.config.newton_maxiter).",
                NumbaflipWarning, stacklevel=3)

    def _unslot(self):
        """Class indices from slot indices; per-rival outputs for every class when they fit
        (an absent class other than the first has the bound of the second absent slot)."""
        sl = self.slots
        self.pred = sl.classes[self.pred]
        self.pair_classes = sl.classes
        if sl.S == self.K or self.m * self.K > _MAX_PAIR_ENTRIES:
            return
        col = np.searchsorted(sl.classes, np.arange(self.K))
        col = np.minimum(col, sl.S - 1)
        exact_hit = sl.classes[col] == np.arange(self.K)
        absent = np.flatnonzero(sl.weight > 1)
        if absent.size:
            col = np.where(exact_hit, col, absent[0])
        self.t = self.t[:, col]
        self.pair = self.pair[:, col]
        # the predicted class itself: −inf, as the kernel writes for its own slot
        rows = np.arange(self.m)
        self.pair[rows, self.pred] = -np.inf
        self.t[rows, self.pred] = 0.0
        self.pair_classes = np.arange(self.K, dtype=np.int64)


def _run_sparse(engine, blocks, m, progress):
    """:func:`_run` for sparse blocks (start, idx, w) (:meth:`_Engine.run_sparse_block`)."""
    from tqdm.auto import tqdm
    disable = (not progress) if progress is not None else None
    with tqdm(total=m, unit="pt", desc="certify", disable=disable, leave=False) as bar:
        for start, idx, w in blocks:
            engine.run_sparse_block(start, idx, w)
            bar.update(w.shape[0])
    engine.finish()


def _run(engine, blocks, m, progress):
    from tqdm.auto import tqdm
    disable = (not progress) if progress is not None else None
    with tqdm(total=m, unit="pt", desc="certify", disable=disable, leave=False) as bar:
        for start, A in blocks:
            engine.run_block(start, A)
            bar.update(A.shape[0])
    engine.finish()


_FROM_PROBLEM = object()


def _result(engine, pb, *, learner, learner_params=None, lam=_FROM_PROBLEM,
            fit_intercept=_FROM_PROBLEM):
    from ._version import __version__

    e = engine
    lam = pb.lam if lam is _FROM_PROBLEM else lam
    fit_intercept = pb.fit_intercept if fit_intercept is _FROM_PROBLEM else fit_intercept
    classes = pb.classes
    table = None
    if "tight" in e.bounds:
        table = {"q": e.qv.canonical, "K": e.K, "method": "auto"}
    metadata = {
        "numbaflip_version": __version__, "q": e.qv.given, "q_canonical": e.qv.canonical,
        "lam": lam, "learner": learner, "learner_params": learner_params,
        "fit_intercept": fit_intercept,
        "formulation": "binary" if e.num_classes is None else "multiclass", "K": e.K,
        "n_train": e.n, "n_test": e.m, "bounds": list(e.bounds), "precision": e.precision,
        "threshold_table": table, "classes": classes.tolist(),
    }
    return CertifyResult(
        prediction=classes[e.pred], radius=e.radius, log_p_wrong=e.logb, log_p_wrong_err=e.err,
        status=e.status, t_star=e.t, pair_log_b=e.pair, q=e.qv.given,
        num_classes=e.num_classes, n=e.n, bounds=e.bounds, lam=lam,
        info={"newton_iterations": e.iters, "mp_refined": e.n_mp, "precision": e.precision,
              "histogram": dict(e.hist, engine=e.engine), "seconds": dict(e.seconds),
              "pair_classes": getattr(e, "pair_classes", None)},
        prediction_index=e.pred, classes_=classes, metadata=metadata)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

def certify(X_train, y_train, X_test, *, q, learner=None, lam="auto", bounds=("kl",),
            num_classes=None, fit_intercept=None, precision="auto",
            progress=None) -> CertifyResult:
    """Certify each test prediction of a ridge (or other linear-in-labels) classifier against
    training-label flips.

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
    learner : None (ridge with ``lam`` and ``fit_intercept``) or a learner of
        :mod:`numbaflip.learners` (``Ridge(lam, fit_intercept)``, ``KNN(k, weights)``,
        ``RBFRidge(gamma, lam, n_components, seed)``) or any object following its protocol:
        α is computed from the features only (``learner.fit(X_train, q).blocks(X_test)``),
        never from the labels.  With a learner, ``lam`` and ``fit_intercept`` must be left
        out (they belong to the learner).  ``metadata["learner"]`` is its name,
        ``metadata["learner_params"]`` its resolved parameters.
    lam : float ≥ 0 or "auto".  Ridge parameter; "auto" is :func:`numbaflip.alpha.default_lambda`
        (label-free).  Shorthand for ``learner=Ridge(lam=lam)``.
    bounds : subset of ("kl", "tight", "exact").
    num_classes : None for the paper's binary formulation (labels {0,1}, base rule
        1{αᵀy ≥ 1/2}, one Chernoff bound); K ≥ 2 for the pairwise K-class formulation
        (argmax of class sums, K−1 pairwise bounds restricted to t > 0, union bound).  With
        K = 2 the two formulations differ: the K-class noise moves a label to the other class
        with probability q as well, but the pairwise bound is on s₀ − s₁, not on αᵀy − 1/2.
    fit_intercept : append a column of ones to the features (λ regularises it too); None
        means True (ridge without ``learner``).
    precision : "auto" (float64; where the error interval of ``log_p_wrong`` straddles a
        radius boundary, re-evaluate the objective at t* in mpmath), "float64", or "mp"
        (re-evaluate every point in mpmath).
    progress : show a tqdm bar on stderr (None: only on a terminal).

    Returns
    -------
    CertifyResult
    """
    if learner is None:
        fi = True if fit_intercept is None else fit_intercept
        pb = problem(y_train, q=q, X_train=X_train, X_test=X_test, lam=lam,
                     fit_intercept=fi, bounds=bounds, num_classes=num_classes,
                     precision=precision)
        solver = RidgeAlpha(pb.X_train, pb.lam, fit_intercept=pb.fit_intercept)
        engine = _Engine(pb)
        _run(engine, solver.blocks(pb.X_test, reuse=True), pb.m, progress)
        return _result(engine, pb, learner="ridge",
                       learner_params={"lam": pb.lam, "lam_given": lam,
                                       "fit_intercept": pb.fit_intercept})
    from . import learners as _ln
    from ._problem import check_learner
    check_learner(learner, lam=lam, fit_intercept=fit_intercept)
    # λ and the intercept belong to the learner: problem() validates the rest (lam=0.0 costs
    # nothing and is not used)
    pb = problem(y_train, q=q, X_train=X_train, X_test=X_test, lam=0.0, bounds=bounds,
                 num_classes=num_classes, precision=precision)
    fitted, params, lam_v, fi_v = _ln.fit_learner(learner, pb.X_train, pb.q.value)
    engine = _Engine(pb)
    if isinstance(fitted, _ln._FittedKNN):   # k nonzeros per row: O(k) per test point
        _run_sparse(engine, fitted.sparse_blocks(pb.X_test), pb.m, progress)
    else:
        _run(engine, _ln.fitted_blocks(learner, fitted, pb.X_test, pb.m, pb.n), pb.m,
             progress)
    return _result(engine, pb, learner=learner.name, learner_params=params, lam=lam_v,
                   fit_intercept=fi_v)


def certify_alpha(A, y_train, *, q, bounds=("kl",), num_classes=None, precision="auto",
                  progress=None) -> CertifyResult:
    """Certify predictions given alpha directly: ``A`` of shape (m, n), one row per test point.

    Any learner whose scores are linear in the one-hot training labels can be certified this
    way (kernel ridge, fixed-weight kNN, label propagation): binary score ``A[j] @ y``, K-class
    scores the class sums of ``A[j]``.  Same guarantee, parameters and result as
    :func:`certify`; A must not depend on the training labels.
    """
    pb = problem(y_train, q=q, A=A, bounds=bounds, num_classes=num_classes,
                 precision=precision)
    bs = block_rows(pb.n)
    engine = _Engine(pb)
    _run(engine, ((s, pb.A[s:s + bs]) for s in range(0, pb.m, bs)), pb.m, progress)
    return _result(engine, pb, learner="alpha")
