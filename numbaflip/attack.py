"""Label-flipping attacks: explicit sets of label changes that alter a prediction.

Two kinds (``kind=``):

``"exact"``
    Attacks the deterministic linear rule of :mod:`numbaflip.exact` (binary:
    ``1{(1−2q) αᵀy + q Σα ≥ 1/2}``, q = 0 the plain ridge classifier; K classes: argmax of the
    class sums, lowest index on ties).  The attack is the greedy of math.md §5 and is *minimal*:
    ``size = exact radius + 1``.  For 0 < q < 1/2 (binary) this rule is exactly the smoothed
    classifier's deployed prediction ``1{t* ≥ 0}`` of :func:`numbaflip.certify`, so the exact
    attack is also the optimal attack on that deployed prediction.

``"smoothed"``
    The attack of the paper's appendix C.2 on the randomized-smoothing classifier g (the
    majority vote over noisy labels, certified by the ``kl``/``tight`` bounds): flip labels in
    order of their contribution to the score (the greedy order of the exact attack, against the
    rival the exact attack picks), and report the smallest number k of flips, along that order,
    after which :func:`numbaflip.certify_alpha` on the attacked labels *certifies* (radius ≥ 0)
    a prediction different from the original one.  Radius ≥ 0 means the smoothed probability of
    that other class is > 1/2, so the majority vote g provably changed: ``size`` is a valid
    **upper bound** on g's robustness (g is not robust to ``size`` flips), sound whenever the
    certificate is.  It is not minimal: the order is a heuristic (optimal for moving
    P(αᵀY ≥ 1/2), as the paper argues, but the Chernoff bound only certifies g after some
    margin), and the search along it is a binary search that assumes monotonicity (the result
    is always verified).  ``info["deployed_size"]`` holds the (exact, minimal) number of flips
    that changes the deployed prediction ``1{t* ≥ 0}``; g itself changes somewhere between the
    two (its exact value P(αᵀY ≥ 1/2) is not computable for large n).

Conventions for :class:`AttackResult`: ``size[i] = k ≥ 1``: ``indices[i]`` (k training indices)
changed to ``new_labels[i]`` alter the prediction.  ``size[i] = −1``: no attack (``indices[i]``
and ``new_labels[i]`` empty) -- for ``"exact"`` this means *no* set of label changes alters the
prediction (exact radius n); for ``"smoothed"`` that the search found none.  ``size`` is never 0
for ``"exact"`` (the attacked prediction is the rule's own); for ``"smoothed"`` it is never 0
either (k = 0 would need the certificate to certify a different class on the clean labels).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import exact as _ex
from .alpha import RidgeAlpha
from .errors import NumbaflipInputError
from .validation import check_matrix, check_num_classes, resolve_lambda

__all__ = ["AttackResult", "attack", "attack_alpha"]

KINDS = ("exact", "smoothed")


@dataclass
class AttackResult:
    """Per test point, an explicit set of label changes that alters the prediction.

    Attributes
    ----------
    prediction : (m,) int64
        The prediction under attack (``"exact"``: the deterministic rule; ``"smoothed"``: the
        smoothed classifier's deployed prediction from :func:`numbaflip.certify_alpha`).
    size : (m,) int64
        Number of label changes of the attack, −1 when there is none (see module docstring).
    indices : list of (size,) int64 arrays
        The training indices whose labels are changed.
    new_labels : list of (size,) int64 arrays
        Their new labels.
    """

    prediction: np.ndarray
    size: np.ndarray
    indices: list
    new_labels: list
    kind: str = "exact"
    q: str = "0.0"
    num_classes: int | None = None
    n: int = 0
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.size.shape[0])

    def attacked_labels(self, y_train, i: int) -> np.ndarray:
        """The training labels after attacking test point ``i``."""
        y2 = np.array(y_train, dtype=np.int64, copy=True)
        y2[self.indices[i]] = self.new_labels[i]
        return y2

    def radius_upper_bound(self) -> np.ndarray:
        """size − 1 where an attack exists (the prediction is *not* robust to ``size`` changes),
        n where none was found.  For ``"exact"`` this is the exact radius."""
        return np.where(self.size >= 1, self.size - 1, self.n).astype(np.int64)

    def __repr__(self) -> str:
        found = int(np.sum(self.size >= 1))
        return (f"AttackResult(kind={self.kind!r}, m={len(self)}, q={self.q}, "
                f"num_classes={self.num_classes}, attacks found={found})")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------

def _check_kind(kind):
    if kind not in KINDS:
        raise NumbaflipInputError(f"kind must be one of {KINDS}, got {kind!r}.")
    return kind


def _check_alpha(A):
    A = _ex._check_A(A)
    if not np.all(np.isfinite(A)):
        raise NumbaflipInputError("alpha has NaN or inf values; check the features and λ.")
    return A


# --------------------------------------------------------------------------------------------
# smoothed attack (appendix C.2)
# --------------------------------------------------------------------------------------------

def _greedy_order(a, y, c, rival, qf, num_classes):
    """All helpful label changes for row a against rival, best first, with their new labels."""
    if num_classes is None:
        if c == 1:
            helpful = np.flatnonzero(((y == 1) & (a > 0)) | ((y == 0) & (a < 0)))
        else:
            helpful = np.flatnonzero(((y == 0) & (a > 0)) | ((y == 1) & (a < 0)))
        idx = helpful[np.argsort(-np.abs(a[helpful]), kind="stable")]
        return idx, 1 - y[idx]
    red, new = _ex._mc_moves(a, y, c, rival)
    cand = np.flatnonzero(red > 0)
    idx = cand[np.argsort(-red[cand], kind="stable")]
    return idx, new[idx]


def _q_show(q, qf) -> str:
    return q.strip() if isinstance(q, str) else repr(float(qf))


def _q_decimal(q, qf) -> str:
    """q as the decimal string :func:`numbaflip.certify_alpha` reads as the same rational."""
    if isinstance(q, str):
        return q.strip()
    s = repr(float(qf))
    if _ex.parse_q(s) != qf:
        raise NumbaflipInputError(
            f"q = {q!r} has no short decimal form; pass q as a decimal string such as '0.1'.")
    return s


def _certify_oracle(q, num_classes):
    """oracle(a_row, y2) -> (prediction, certified at r = 0) from numbaflip.certify_alpha."""
    from .certify import certify_alpha

    def oracle(a, y2):
        try:
            res = certify_alpha(a.reshape(1, -1), y2, q=q, bounds=("kl",),
                                num_classes=num_classes, progress=False)
        except NumbaflipInputError:
            return -1, False     # e.g. the attacked labels hold a single class
        return int(res.prediction[0]), bool(res.radius["kl"][0] >= 0)
    return oracle


def _smoothed_search(A, y, c0, qf, num_classes, oracle):
    """Appendix C.2 search for every row; returns (size, indices, labels, deployed_size)."""
    m = A.shape[0]
    kdep, rival, _ = _ex._exact_k(A, y, c0, qf, num_classes)
    size = np.full(m, -1, np.int64)
    indices, labels = [], []
    empty = np.empty(0, np.int64)
    for i in range(m):
        a = A[i]
        c = int(c0[i])
        if kdep[i] < 1 or kdep[i] >= _ex.NOCROSS:
            # the deployed prediction never changes (or is not the rule's): nothing to search
            indices.append(empty)
            labels.append(empty)
            continue
        idx, new = _greedy_order(a, y, c, int(rival[i]), qf, num_classes)
        M = idx.shape[0]

        def flipped(k):
            y2 = y.copy()
            y2[idx[:k]] = new[:k]
            p, cert = oracle(a, y2)
            return p != c and cert

        # exponential search from the deployed flip point, then bisection
        lo = int(kdep[i]) - 1        # predicate false at lo (g needs the deployed flip first)
        step = 1
        hi = None
        k = int(kdep[i])
        while True:
            k = min(k, M)
            if flipped(k):
                hi = k
                break
            lo = k
            if k == M:
                break
            k = lo + step
            step *= 2
        if hi is None:
            indices.append(empty)
            labels.append(empty)
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if flipped(mid):
                hi = mid
            else:
                lo = mid
        size[i] = hi
        indices.append(np.ascontiguousarray(idx[:hi], dtype=np.int64))
        labels.append(np.ascontiguousarray(new[:hi], dtype=np.int64))
    kd = np.where((kdep >= 1) & (kdep < _ex.NOCROSS), kdep, -1).astype(np.int64)
    return size, indices, labels, kd


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------

def attack_alpha(A, y_train, *, q=0.0, num_classes: int | None = None,
                 kind: str = "exact", _oracle=None) -> AttackResult:
    """Attack the predictions given alpha ``A`` (m, n) and training labels ``y_train`` (n,).

    See the module docstring for the two kinds and the exact meaning of the result.  ``q`` is
    read as an exact decimal (binary: 0 ≤ q < 1/2; K classes: 0 ≤ q < (K−1)/K); ``"smoothed"``
    needs q > 0.
    """
    kind = _check_kind(kind)
    num_classes = check_num_classes(num_classes)
    qf = _ex._check_q(q, num_classes)
    A = _check_alpha(A)
    m, n = A.shape
    y = _ex._check_y(y_train, n, num_classes)
    if kind == "exact":
        pred = _ex.exact_predict(A, y, q=qf, num_classes=num_classes)
        k, indices, labels = _ex.exact_attack_plan(A, y, pred, q=qf, num_classes=num_classes)
        return AttackResult(prediction=pred, size=k, indices=indices, new_labels=labels,
                            kind=kind, q=_q_show(q, qf), num_classes=num_classes, n=n, info={})
    if qf == 0:
        raise NumbaflipInputError(
            "kind='smoothed' attacks the randomized-smoothing classifier, which needs q > 0; "
            "use kind='exact' for q = 0.")
    q_str = _q_decimal(q, qf)
    if _oracle is None:
        from .certify import certify_alpha
        base = certify_alpha(A, y, q=q_str, bounds=("kl",), num_classes=num_classes,
                             progress=False)
        pred = np.asarray(base.prediction, dtype=np.int64)
        oracle = _certify_oracle(q_str, num_classes)
    else:
        oracle = _oracle
        pred = np.array([oracle(A[i], y)[0] for i in range(m)], dtype=np.int64)
    size, indices, labels, kdep = _smoothed_search(A, y, pred, qf, num_classes, oracle)
    return AttackResult(prediction=pred, size=size, indices=indices, new_labels=labels,
                        kind=kind, q=_q_show(q, qf), num_classes=num_classes, n=n,
                        info={"deployed_size": kdep})


def attack(X_train, y_train, X_test, *, q=0.0, lam="auto", num_classes: int | None = None,
           fit_intercept: bool = True, kind: str = "exact") -> AttackResult:
    """Attack the ridge classifier trained on (X_train, y_train) at every row of X_test.

    alpha is computed in blocks with :class:`numbaflip.alpha.RidgeAlpha`; ``lam="auto"`` is the
    label-free :func:`numbaflip.alpha.default_lambda` (as in :func:`numbaflip.certify`).  See
    :func:`attack_alpha` and the module docstring for the result.
    """
    kind = _check_kind(kind)
    num_classes = check_num_classes(num_classes)
    qf = _ex._check_q(q, num_classes)
    X_train = check_matrix(X_train, "X_train")
    X_test = check_matrix(X_test, "X_test", cols=X_train.shape[1])
    y = _ex._check_y(y_train, X_train.shape[0], num_classes)
    lam_v = resolve_lambda(lam, X_train, float(qf), fit_intercept)
    solver = RidgeAlpha(X_train, lam_v, fit_intercept=fit_intercept)
    parts = []
    for _, A in solver.blocks(X_test):
        parts.append(attack_alpha(A, y, q=q, num_classes=num_classes, kind=kind))
    res = AttackResult(
        prediction=np.concatenate([p.prediction for p in parts]),
        size=np.concatenate([p.size for p in parts]),
        indices=[x for p in parts for x in p.indices],
        new_labels=[x for p in parts for x in p.new_labels],
        kind=kind, q=_q_show(q, qf), num_classes=num_classes, n=X_train.shape[0],
        info={"lam": lam_v})
    if kind == "smoothed":
        res.info["deployed_size"] = np.concatenate([p.info["deployed_size"] for p in parts])
    return res
