"""The exact certificate of the deterministic linear rules (math.md §5; not in the paper):
the public functions, over the kernels of :mod:`numbaflip._kernels.exact` (rules,
algorithm and floating-point argument in that module's docstring), with the exact rational
fallback for the rare rows the kernels cannot decide."""
from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np

from ._kernels.exact import (NOCROSS, _STATUS_NONFINITE, _binary_decide_driver,
                             _binary_driver, _binary_predict_driver, _mc_driver,
                             _mc_predict_driver)
from ._problem import (check_alpha, check_class_indices, check_num_classes, check_predictions,
                       parse_q)
from .rules import binary_decision, binary_margin, greedy_moves, multiclass_decision, scaled_ints
from .errors import NumbaflipInputError

__all__ = ["exact_radius", "exact_predict", "exact_attack_plan"]


# ============================================================================================
# Exact rational fallback (Python; used only for the rare rows the kernels cannot decide)
# ============================================================================================

def _greedy_order(a, y, c, rival):
    """Indices of the helpful relabellings against ``rival``, largest gain first (stable)."""
    gain, _ = greedy_moves(a, y, c, rival)
    idx = np.flatnonzero(gain > 0)
    return idx[np.argsort(-gain[idx], kind="stable")]


def _exact_binary_row(a, y, pred, q: Fraction):
    """(k_true, order) in exact arithmetic: k = minimal number of flips changing `pred`
    (0 if `pred` is not the rule's prediction, NOCROSS if no flip set changes it)."""
    ai = scaled_ints(a.tolist())
    tot = sum(ai)
    s = sum(v for v, lab in zip(ai, y.tolist()) if lab == 1)
    Z = binary_margin(q)
    rule = 1 if Z(s, tot) >= 0 else 0
    if rule != pred:
        return 0, None
    order = _greedy_order(a, y, pred, 1 - pred)
    for k, i in enumerate(order.tolist(), start=1):
        s += ai[i] * (1 - 2 * int(y[i]))
        crossed = Z(s, tot) < 0 if pred == 1 else Z(s, tot) >= 0
        if crossed:
            return k, order[:k]
    return int(NOCROSS), None


def _exact_mc_row(a, y, pred, K):
    """(k_true, rival) in exact arithmetic for the K-class rule (lowest index wins ties)."""
    ai = scaled_ints(a.tolist())
    yl = y.tolist()
    sums = [0] * K
    for v, lab in zip(ai, yl):
        sums[lab] += v
    best = max(sums)
    if sums.index(best) != pred:
        return 0, -1
    c = pred
    kbest, rbest = int(NOCROSS), -1
    for cp in range(K):
        if cp == c:
            continue
        idx = _greedy_order(a, y, c, cp)
        gap = sums[c] - sums[cp]
        for k, j in enumerate(idx.tolist(), start=1):
            if k >= kbest:
                break
            lab = yl[j]
            gap -= 2 * abs(ai[j]) if lab == c or lab == cp else abs(ai[j])
            if (gap <= 0) if cp < c else (gap < 0):
                kbest, rbest = k, cp
                break
    return kbest, rbest


# ============================================================================================
# Python layer
# ============================================================================================

def _q_float_bounds(qf: Fraction) -> tuple[float, float]:
    """Doubles q_lo ≤ qf ≤ q_hi (equal when qf is a double)."""
    x = float(qf)
    fx = Fraction(x)
    if fx == qf:
        return x, x
    if fx < qf:
        return x, math.nextafter(x, math.inf)
    return math.nextafter(x, -math.inf), x


def _validated(A, y, pred, q, num_classes):
    """The checks of :mod:`numbaflip._problem` for (alpha, labels 0..K−1, predictions, q);
    q = 0 is allowed (the plain rule).  ``pred=None``: no predictions to check."""
    num_classes = check_num_classes(num_classes)
    qf = parse_q(q, num_classes, allow_zero=True).exact
    A = check_alpha(A)
    y = check_class_indices(y, A.shape[1], num_classes)
    if pred is not None:
        pred = check_predictions(pred, A.shape[0], num_classes)
    return A, y, pred, qf, num_classes


def _raise_nonfinite(status):
    bad = np.flatnonzero(status == _STATUS_NONFINITE)
    if bad.size:
        raise NumbaflipInputError(
            f"alpha has non-finite or huge (> 2^960) values in {bad.size} row(s), first row "
            f"{int(bad[0])}; check the features and λ.")


def _nchunks() -> int:
    """Contiguous chunks of test points per kernel call (a few per thread, for balance)."""
    return 4 * numba.get_num_threads()


def _kernel_k(A, y, pred, qf, num_classes):
    """(k_lo, k_hi, rival) from the kernels; exact where k_lo == k_hi."""
    b = A.shape[0]
    klo = np.empty(b, np.int64)
    khi = np.empty(b, np.int64)
    status = np.empty(b, np.int64)
    rival = np.full(b, -1, np.int64)
    # labels: one row for every row of A (dense), or one per row (sparse: A = the nonzeros)
    Y = y if y.ndim == 2 else y[None, :]
    if num_classes is None:
        q_lo, q_hi = _q_float_bounds(qf)
        _binary_driver(A, Y, pred, q_lo, q_hi, _nchunks(), klo, khi, status)
    else:
        _mc_driver(A, Y, pred, num_classes, _nchunks(), klo, khi, rival, status)
    _raise_nonfinite(status)
    return klo, khi, rival


def _exact_k(A, y, pred, qf, num_classes):
    """Exact (k, rival) per row: kernels, then exact arithmetic where they could not decide.
    k = 0: pred is not the rule's prediction; k = NOCROSS: no label changes alter it.

    ``y`` (n,) labels the columns of A; or ``y`` (b, k) labels row by row, A (b, k) then
    holding each row's nonzero α in training-index order (the sparse path of ``certify``: a
    zero α is never a helpful move, so the compact row has the same k)."""
    klo, khi, rival = _kernel_k(A, y, pred, qf, num_classes)
    return _settle(A, y, pred, qf, num_classes, klo, khi, rival)


def _settle(A, y, pred, qf, num_classes, klo, khi, rival):
    """(k, rival, rational): k = k_hi where the kernels' enclosure is a point, else the exact
    rational k of that row (``rational`` marks those rows)."""
    k = khi.copy()
    for r in np.flatnonzero(klo != khi):
        yr = y if y.ndim == 1 else y[r]
        if num_classes is None:
            k[r], _ = _exact_binary_row(A[r], yr, int(pred[r]), qf)
        else:
            k[r], rival[r] = _exact_mc_row(A[r], yr, int(pred[r]), num_classes)
    return k, rival, klo != khi


def _exact_predict_k(A, y, qf):
    """Binary rule: (prediction, exact k, rational rows) per row of A, the prediction decided
    in the same kernel pass as the certificate (the exact-only path of certify; one read of
    α instead of a decide pass plus the exact pass).  Rows whose prediction the float pass
    cannot decide get it from :func:`rules.binary_decision` (exact; a tie predicts 1) and then
    go through :func:`_exact_k`.  ``y`` as in :func:`_exact_k`."""
    b = A.shape[0]
    pred = np.empty(b, np.int64)
    klo = np.empty(b, np.int64)
    khi = np.empty(b, np.int64)
    status = np.empty(b, np.int64)
    Y = y if y.ndim == 2 else y[None, :]
    q_lo, q_hi = _q_float_bounds(qf)
    _binary_decide_driver(A, Y, q_lo, q_hi, _nchunks(), pred, klo, khi, status)
    _raise_nonfinite(status)
    unsure = np.flatnonzero(pred < 0)
    for r in unsure:
        pred[r] = 1 if binary_decision(A[r], y if y.ndim == 1 else y[r], qf)[0] >= 0 else 0
    if unsure.size:
        Yu = y if y.ndim == 1 else np.ascontiguousarray(y[unsure])
        klo[unsure], khi[unsure], _ = _kernel_k(np.ascontiguousarray(A[unsure]), Yu,
                                                pred[unsure], qf, None)
    k, _, rational = _settle(A, y, pred, qf, None, klo, khi, np.full(b, -1, np.int64))
    return pred, k, rational


def exact_radius(A, y, pred, *, q=0.0, num_classes: int | None = None) -> np.ndarray:
    """Exact robustness radius of the deterministic rule for each row of ``A``.

    Parameters
    ----------
    A : (m, n) float array
        alpha, one row per test point (must not depend on the training labels).
    y : (n,) int
        Training labels: 0/1 when ``num_classes`` is None, else 0..K−1.
    pred : (m,) int
        The prediction to certify (e.g. :attr:`CertifyResult.prediction`).
    q : float, str or Fraction
        Binary only: the rule is ``1{(1−2q) aᵀy + q Σa ≥ 1/2}`` (q = 0: plain ridge).  Read as an
        exact decimal (``0.1`` is 1/10).  For K classes the rule does not depend on q; it is only
        range-checked (0 ≤ q < (K−1)/K).
    num_classes : int or None
        None for binary labels; K for K classes.

    Returns
    -------
    (m,) int64
        ``r ≥ 0``: exactly r = (fewest label changes that alter the prediction) − 1, i.e. no set
        of ≤ r changes alters it and some set of r + 1 does; ``n``: no set of changes alters it;
        ``−1``: ``pred`` is not the rule's prediction.  See the module docstring for how
        floating point is kept from ever over-certifying.
    """
    A, y, pred, qf, num_classes = _validated(A, y, pred, q, num_classes)
    k, _, _ = _exact_k(A, y, pred, qf, num_classes)
    return _radius_from_k(k, A.shape[1])


def _radius_from_k(k, n):
    r = np.where(k >= NOCROSS, n, k - 1).astype(np.int64)
    return np.minimum(r, n)


def exact_predict(A, y, *, q=0.0, num_classes: int | None = None) -> np.ndarray:
    """The deterministic rule's prediction (binary: ``1{(1−2q) aᵀy + q Σa ≥ 1/2}``, ties to 1;
    K classes: argmax of class sums, lowest index on ties), decided exactly: a rigorous float
    test, and exact rational arithmetic for rows it cannot decide."""
    A, y, _, qf, num_classes = _validated(A, y, None, q, num_classes)
    m = A.shape[0]
    pred = np.empty(m, np.int64)
    sure = np.empty(m, np.bool_)
    status = np.empty(m, np.int64)
    if num_classes is None:
        q_lo, q_hi = _q_float_bounds(qf)
        _binary_predict_driver(A, y, q_lo, q_hi, pred, sure, status)
    else:
        _mc_predict_driver(A, y, num_classes, pred, sure, status)
    _raise_nonfinite(status)
    for r in np.flatnonzero(~sure):
        if num_classes is None:  # side 0 (E[aᵀY] = 1/2 exactly) predicts 1
            pred[r] = 1 if binary_decision(A[r], y, qf)[0] >= 0 else 0
        else:
            pred[r] = multiclass_decision(A[r], y, num_classes)[0]
    return pred


def exact_attack_plan(A, y, pred, *, q=0.0, num_classes: int | None = None):
    """Explicit minimal label changes for each row (used by :mod:`numbaflip.attack`).

    Returns ``(k, indices, new_labels)``: ``k`` (m,) int64 exact minimal number of changes
    (0 if ``pred`` is not the rule's prediction, −1 if no set of changes alters it), and per row
    the changed training indices and their new labels (empty arrays when k ≤ 0).  Inputs must
    already be validated (see :func:`numbaflip.attack.attack_alpha`).
    """
    A, y, pred, qf, num_classes = _validated(A, y, pred, q, num_classes)
    m = A.shape[0]
    k, rival, _ = _exact_k(A, y, pred, qf, num_classes)
    indices, labels = [], []
    empty = np.empty(0, np.int64)
    for r in range(m):
        kr = int(k[r])
        if kr <= 0 or kr >= NOCROSS:
            indices.append(empty)
            labels.append(empty)
            continue
        c = int(pred[r])
        cp = 1 - c if num_classes is None else int(rival[r])
        idx = _greedy_order(A[r], y, c, cp)[:kr]
        new = greedy_moves(A[r], y, c, cp)[1][idx]
        indices.append(np.ascontiguousarray(idx, dtype=np.int64))
        labels.append(np.ascontiguousarray(new, dtype=np.int64))
    kk = np.where(k >= NOCROSS, -1, k).astype(np.int64)
    return kk, indices, labels
