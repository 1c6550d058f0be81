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

import warnings
from dataclasses import dataclass, field

import numpy as np

from . import exact as _ex
from .alpha import RidgeAlpha
from .rules import greedy_moves
from ._problem import class_slots, problem
from .errors import NumbaflipInputError, NumbaflipWarning

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
    prediction_index: np.ndarray | None = None
    classes_: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.size.shape[0])

    def attacked_labels(self, y_train, i: int) -> np.ndarray:
        """The training labels after attacking test point ``i``."""
        y2 = np.array(y_train, copy=True).reshape(-1)
        if self.classes_ is not None and y2.dtype.kind in "US":
            y2 = y2.astype(self.classes_.dtype if self.classes_.dtype.itemsize >= y2.dtype.itemsize
                           else y2.dtype)
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


# --------------------------------------------------------------------------------------------
# smoothed attack (appendix C.2)
# --------------------------------------------------------------------------------------------

def _greedy_order(a, y, c, rival, qf, num_classes):
    """All helpful label changes for row a against rival, best first, with their new labels."""
    if num_classes is None:
        rival = 1 - c
    gain, new = greedy_moves(a, y, c, rival)
    cand = np.flatnonzero(gain > 0)
    idx = cand[np.argsort(-gain[cand], kind="stable")]
    return idx, new[idx]


def _certify_oracle(q, num_classes, back):
    """oracle(a_row, y2) -> (predicted class index, certified at r = 0) from
    numbaflip.certify_alpha; ``y2`` holds slot indices, ``back`` maps them to classes."""
    from .certify import certify_alpha

    def oracle(a, y2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaflipWarning)  # e.g. a single class left
            res = certify_alpha(a.reshape(1, -1), back[y2], q=q, bounds=("kl",),
                                num_classes=num_classes, progress=False)
        return int(res.prediction_index[0]), bool(res.radius["kl"][0] >= 0)
    return oracle


def _smoothed_search(A, y, c0, qf, num_classes, oracle, back):
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
            return p != back[c] and cert

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

def _slots(y, num_classes, K):
    """(labels for the kernels, slot → class map, classes for the kernels)."""
    if num_classes is None:
        return y, np.arange(2, dtype=np.int64), None
    sl = class_slots(y, K)
    return sl.y, sl.classes, sl.S


def attack_alpha(A, y_train, *, q=0.0, num_classes: int | None = None,
                 kind: str = "exact", _oracle=None) -> AttackResult:
    """Attack the predictions given alpha ``A`` (m, n) and training labels ``y_train`` (n,).

    See the module docstring for the two kinds and the exact meaning of the result.  ``q`` is
    read as an exact decimal (binary: 0 ≤ q < 1/2; K classes: 0 ≤ q < (K−1)/K); ``"smoothed"``
    needs q > 0.  Labels are taken as :func:`numbaflip.certify` takes them (``classes_``
    convention); ``prediction`` and ``new_labels`` are in the user's labels.
    """
    kind = _check_kind(kind)
    if np.ndim(A) == 1:
        A = np.reshape(A, (1, -1))
    pb = problem(y_train, q=q, A=A, bounds=("exact",), num_classes=num_classes)
    A, y, classes, qv, m, n = pb.A, pb.y, pb.classes, pb.q, pb.m, pb.n
    ys, back, Ks = _slots(y, num_classes, pb.K)
    # the K-class rule does not depend on q; the slot problem only needs a valid one
    q_rule = qv.exact if num_classes is None else 0
    if kind == "exact":
        pred = _ex.exact_predict(A, ys, q=q_rule, num_classes=Ks)
        k, indices, labels = _ex.exact_attack_plan(A, ys, pred, q=q_rule, num_classes=Ks)
        return _attack_result(pred, k, indices, labels, back, classes, kind=kind, q=qv.given,
                              num_classes=num_classes, n=n, info={})
    if qv.exact == 0:
        raise NumbaflipInputError(
            "kind='smoothed' attacks the randomized-smoothing classifier, which needs q > 0; "
            "use kind='exact' for q = 0.")
    if _oracle is None:
        from .certify import certify_alpha
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaflipWarning)  # problem() warned already
            base = certify_alpha(A, y, q=qv.canonical, bounds=("kl",),
                                 num_classes=num_classes, progress=False)
        pred_cls = np.asarray(base.prediction_index, dtype=np.int64)
        oracle = _certify_oracle(qv.canonical, num_classes, back)
    else:
        oracle = _oracle
        pred_cls = np.array([oracle(A[i], ys)[0] for i in range(m)], dtype=np.int64)
    pred = np.searchsorted(back, pred_cls)
    size, indices, labels, kdep = _smoothed_search(A, ys, pred, q_rule, Ks, oracle, back)
    return _attack_result(pred, size, indices, labels, back, classes, kind=kind, q=qv.given,
                          num_classes=num_classes, n=n, info={"deployed_size": kdep})


def _attack_result(pred, size, indices, labels, back, classes, **kw):
    """An AttackResult in the user's labels from slot indices."""
    return AttackResult(prediction=classes[back[pred]], size=size, indices=indices,
                        new_labels=[classes[back[lab]] for lab in labels],
                        prediction_index=back[pred], classes_=classes, **kw)


def attack(X_train, y_train, X_test, *, q=0.0, learner=None, lam="auto",
           num_classes: int | None = None, fit_intercept: bool | None = None,
           kind: str = "exact") -> AttackResult:
    """Attack the classifier trained on (X_train, y_train) at every row of X_test.

    Without ``learner`` it is ridge regression: alpha is computed in blocks with
    :class:`numbaflip.alpha.RidgeAlpha`; ``lam="auto"`` is the label-free
    :func:`numbaflip.alpha.default_lambda` (as in :func:`numbaflip.certify`) and
    ``fit_intercept`` None means True.  ``learner`` is a learner of :mod:`numbaflip.learners`
    (``Ridge``, ``KNN``, ``RBFRidge``, or an object following its protocol); ``lam`` and
    ``fit_intercept`` then belong to it and must be left out.  See :func:`attack_alpha` and
    the module docstring for the result; ``info`` records λ (None for kNN), the learner's name
    and its resolved parameters.
    """
    kind = _check_kind(kind)
    if learner is None:
        fi = True if fit_intercept is None else fit_intercept
        pb = problem(y_train, q=q, X_train=X_train, X_test=X_test, lam=lam,
                     fit_intercept=fi, bounds=("exact",), num_classes=num_classes)
        lam_v = pb.lam
        blocks = RidgeAlpha(pb.X_train, lam_v, fit_intercept=pb.fit_intercept).blocks(pb.X_test)
        name, params = "ridge", {"lam": lam_v, "lam_given": lam,
                                 "fit_intercept": pb.fit_intercept}
    else:
        from . import learners as _ln
        from ._problem import check_learner
        check_learner(learner, lam=lam, fit_intercept=fit_intercept)
        pb = problem(y_train, q=q, X_train=X_train, X_test=X_test, lam=0.0,
                     bounds=("exact",), num_classes=num_classes)
        fitted, params, lam_v, _ = _ln.fit_learner(learner, pb.X_train, pb.q.value)
        blocks = _ln.fitted_blocks(learner, fitted, pb.X_test, pb.m, pb.n)
        name = learner.name
    qv = pb.q
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaflipWarning)  # problem() warned once above
        for _, A in blocks:
            parts.append(attack_alpha(A, y_train, q=q, num_classes=num_classes, kind=kind))
    res = AttackResult(
        prediction=np.concatenate([p.prediction for p in parts]),
        size=np.concatenate([p.size for p in parts]),
        indices=[x for p in parts for x in p.indices],
        new_labels=[x for p in parts for x in p.new_labels],
        kind=kind, q=qv.given, num_classes=num_classes, n=pb.n,
        info={"lam": lam_v, "learner": name, "learner_params": params},
        prediction_index=np.concatenate([p.prediction_index for p in parts]),
        classes_=parts[0].classes_)
    if kind == "smoothed":
        res.info["deployed_size"] = np.concatenate([p.info["deployed_size"] for p in parts])
    return res
