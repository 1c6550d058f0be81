"""Learners whose scores are linear in the one-hot training labels, with label-free weights α.

Every certificate of numbaflip is a function of α (one row per test point, one column per
training point) and the labels (docs/math.md §1).  A *learner* turns features into α **without
seeing the labels**; :func:`numbaflip.certify` and :func:`numbaflip.attack` take one through
``learner=``.

The protocol (duck-typed; the classes below follow it)::

    learner.name     # str, recorded as result.metadata["learner"]
    learner.params   # dict of the parameters as given, JSON-able
    fitted = learner.fit(X_train, q)          # X_train (n, d) finite float64, q a float
    fitted.params    # optional: the parameters as resolved (e.g. λ for lam="auto"),
                     # recorded as result.metadata["learner_params"]
    for start, A in fitted.blocks(X_test):    # A: (b, n) float64, finite, rows in order
        ...

``fit`` never receives the labels, so α cannot depend on them: that is what every certificate
assumes (the adversary moves the labels while α stays fixed).  Blocks have at most
:func:`numbaflip.config.block_rows` (n) rows, so memory stays bounded by a small multiple of
``config.block_bytes``.  Blocks from objects other than the classes below are checked
(shape, order, finiteness) by :mod:`numbaflip._problem`.

* :class:`Ridge` — ridge regression (the paper's learner; ``certify(lam=...)`` is shorthand).
* :class:`KNN` — k nearest neighbours, α_i = 1/k on the k nearest training points (or inverse
  distance weights): the binary rule αᵀy ≥ 1/2 is a majority vote, the K-class rule a plurality
  vote.  The exact bound (``bounds=("exact",)``) is its natural certificate.
* :class:`RBFRidge` — kernel ridge with the RBF kernel through random Fourier features.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .alpha import RidgeAlpha, _require_finite, default_lambda
from .config import block_rows
from . import _problem as _p
from ._kernels import neighbours as _kn

__all__ = ["Ridge", "KNN", "RBFRidge"]

_U = 2.0 ** -53


# --------------------------------------------------------------------------------------------
# Ridge
# --------------------------------------------------------------------------------------------

class Ridge:
    """Ridge regression, α_j = X (XᵀX + λI)⁻¹ h_j (math.md §1; :class:`alpha.RidgeAlpha`).

    ``lam="auto"`` is :func:`numbaflip.alpha.default_lambda` with the q of the call (label-free);
    a float ≥ 0 is used as given.  α depends on the features and λ only, never on the labels.
    ``certify(..., lam=λ)`` is the same as ``certify(..., learner=Ridge(lam=λ))``.
    """

    name = "ridge"

    def __init__(self, lam="auto", fit_intercept=True):
        self.lam = _p.check_learner_lam(lam, "Ridge")
        self.fit_intercept = bool(fit_intercept)

    @property
    def params(self) -> dict:
        return {"lam": self.lam, "fit_intercept": self.fit_intercept}

    def fit(self, X_train, q):
        X = np.ascontiguousarray(X_train, dtype=np.float64)
        lam = _p.resolve_lambda(self.lam, X, float(q), self.fit_intercept)
        return _FittedRidge(X, lam, self.fit_intercept, self.lam)

    def __repr__(self) -> str:
        return f"Ridge(lam={self.lam!r}, fit_intercept={self.fit_intercept})"


class _FittedRidge:
    def __init__(self, X, lam, fit_intercept, lam_given):
        self.solver = RidgeAlpha(X, lam, fit_intercept=fit_intercept)
        self.n = X.shape[0]
        self.lam = lam
        self.fit_intercept = fit_intercept
        self.params = {"lam": lam, "lam_given": lam_given, "fit_intercept": fit_intercept}

    def blocks(self, H, block_size=None, *, reuse=False):
        return self.solver.blocks(H, block_size, reuse=reuse)


# --------------------------------------------------------------------------------------------
# k nearest neighbours
# --------------------------------------------------------------------------------------------

def _uniform_weight(k: int) -> float:
    """The double nearest 1/k from above: k·w ≥ 1 exactly, so a vote of exactly half the
    neighbours reaches the binary threshold (a tie goes to class 1, as 1{s ≥ 1/2} does)."""
    w = 1.0 / k
    if Fraction(w) * k < 1:   # exact: 1/k rounded to nearest may lie below 1/k
        w = float(np.nextafter(w, np.inf))
    return w


class KNN:
    """k nearest neighbours (Euclidean) as a linear-in-labels learner.

    ``weights="uniform"``: α_ji = w on the k nearest training points of test point j and 0
    elsewhere, w = 1/k rounded up to a double (k·w ≥ 1 exactly; w = 1/k exactly when k is a
    power of two).  The binary rule αᵀy ≥ 1/2 is then the majority vote of the neighbours and
    an **even k is allowed: a tie (k/2 votes each) goes to class 1**, as the rule 1{s ≥ 1/2}
    does (with q > 0 the deployed rule 1{(1−2q)s + qΣα ≥ 1/2} is the same vote, since Σα ≥ 1).
    K classes: the plurality vote, ties to the lowest class index (the argmax rule of ridge).

    ``weights="distance"``: α_ji = (1/d_ji) / Σ_nearest 1/d, the inverse-distance vote; when
    some neighbours are at distance 0, those share the weight equally and the others get 0
    (scikit-learn's convention).  No exact tie guarantee (the weights are rounded).

    **Neighbours.**  The neighbours are the k smallest by (direct squared distance, training
    index): **ties in distance go to the lower training index.**  The direct squared distance
    is Σ_l (h_l − x_il)² summed in feature order l = 0, 1, …, d−1 in float64 (the value of
    the NumPy loop ``dd += (X[:, l] − h[l])**2``), so exactly tied distances (duplicated
    points, integer features) are detected exactly whenever the sums are exact.  It is
    computed only where it matters: a blocked product H Xᵀ (one BLAS call per block of
    ``config.block_rows(n)`` test rows: memory stays bounded) screens the expansion
    ‖h‖² − 2h·x + ‖x‖² with a rigorous float64 error allowance; the allowance decides every
    training point except a handful at the boundary of the k-th distance, which get the direct
    sum (:mod:`numbaflip._kernels.neighbours`).  The k-th values come from a selection without
    sort (sampled bracket, then quickselect).

    α depends on the features and k only — never on the labels — so every certificate applies.
    The exact bound (``bounds=("exact",)``) certifies the vote itself, exactly; ``kl`` and
    ``tight`` certify the randomized-smoothing vote of the paper over these α.  α has k
    nonzeros per row: ``certify`` takes it as (indices, weights) (``sparse_blocks``) and
    certifies each test point in O(k); ``blocks`` gives the same α dense (b × n).
    """

    name = "knn"

    def __init__(self, k, weights="uniform"):
        self.k = _p.check_knn_k(k)
        self.weights = _p.check_knn_weights(weights)

    @property
    def params(self) -> dict:
        return {"k": self.k, "weights": self.weights}

    def fit(self, X_train, q=None):
        X = np.ascontiguousarray(X_train, dtype=np.float64)
        _p.check_knn_k(self.k, X.shape[0])
        return _FittedKNN(X, self.k, self.weights)

    def __repr__(self) -> str:
        return f"KNN(k={self.k}, weights={self.weights!r})"


class _FittedKNN:
    def __init__(self, X, k, weights):
        self.X = X
        self.n, self.d = X.shape
        self.k = k
        self.weights = weights
        self.params = {"k": k, "weights": weights}
        with np.errstate(over="ignore", invalid="ignore"):
            self.sq = np.einsum("ij,ij->i", X, X)
            self.norm = np.sqrt(self.sq)
        _require_finite(self.sq, "the squared norms of X_train")
        self.w = _uniform_weight(k)
        #: error allowance factor of the screening (:mod:`numbaflip._kernels.neighbours`)
        self.c = 4.0 * (self.d + 4) * _U

    def neighbours(self, H, *, want_dist=True, _buf=None):
        """(b, k) int64: the k nearest training points of each row of H by (direct squared
        distance, index), each row in that order; and their (b, k) squared distances
        (``want_dist=False``: rows in increasing index instead, distances not returned)."""
        idx, dist = self._search(H, want_dist, _buf)
        if not want_dist:
            return idx
        order = np.lexsort((idx, dist), axis=-1)
        return (np.ascontiguousarray(np.take_along_axis(idx, order, axis=1)),
                np.ascontiguousarray(np.take_along_axis(dist, order, axis=1)))

    def _search(self, H, want_dist, buf=None):
        """:func:`numbaflip._kernels.neighbours._knn_driver` on one block of test rows: one
        BLAS product G = H Xᵀ (b × n, the block's memory; into ``buf`` when given, so that
        consecutive blocks reuse one allocation), then per row a selection without sort.
        Rows in increasing training index; distances only if ``want_dist``."""
        H = np.ascontiguousarray(H, dtype=np.float64)
        b = H.shape[0]
        G = np.empty((b, self.n)) if buf is None or buf.shape[0] < b else buf[:b]
        with np.errstate(over="ignore", invalid="ignore"):
            hsq = np.einsum("ij,ij->i", H, H)
            hn = np.sqrt(hsq)
            np.matmul(H, self.X.T, out=G)
        idx = np.empty((b, self.k), np.int64)
        dist = np.empty((b, self.k))
        status = np.empty(b, np.int8)
        _kn._knn_driver(G, H, self.X, hsq, hn, self.sq, self.norm, self.k, self.c,
                        bool(want_dist), idx, dist, status)
        if (status == _kn.KNN_NOT_FINITE).any():
            _require_finite(np.array([np.nan]),
                            "the squared distances between X_test and X_train")
        if (status != _kn.KNN_OK).any():    # the rigorous enclosure failed: never use it
            raise RuntimeError(
                "numbaflip internal error: the kNN distance enclosure failed; please report "
                "this with the data that triggers it.")
        return idx, dist

    def sparse_alpha(self, H, *, _buf=None):
        """(idx, w), both (b, k): row j of α has the weights w[j] on the training points
        idx[j] (strictly increasing) and 0 elsewhere.  The same α as :meth:`alpha`, bit for
        bit (distance weights are computed in neighbour order, then put in index order)."""
        if self.weights == "uniform":
            idx = self.neighbours(H, want_dist=False, _buf=_buf)
            return idx, np.full(idx.shape, self.w)
        idx, dist = self.neighbours(H, _buf=_buf)
        r = np.sqrt(dist)
        zero = r == 0.0
        with np.errstate(divide="ignore"):
            inv = np.where(zero, 0.0, 1.0 / np.where(zero, 1.0, r))
        inv = np.where(zero.any(axis=1)[:, None], zero.astype(np.float64), inv)
        w = inv / inv.sum(axis=1, keepdims=True)
        order = np.argsort(idx, axis=1, kind="stable")
        idx = np.ascontiguousarray(np.take_along_axis(idx, order, axis=1))
        w = np.ascontiguousarray(np.take_along_axis(w, order, axis=1))
        return idx, w

    def alpha(self, H):
        idx, w = self.sparse_alpha(H)
        A = np.zeros((idx.shape[0], self.n))
        np.put_along_axis(A, idx, w, axis=1)
        return A

    def blocks(self, H, block_size=None):
        bs = int(block_size or block_rows(self.n))
        for start in range(0, H.shape[0], bs):
            yield start, self.alpha(H[start:start + bs])

    def sparse_blocks(self, H, block_size=None):
        """(start, idx, w) per block of test rows (:meth:`sparse_alpha`): what ``certify``
        uses, O(k) per test point in the certificates (the neighbour search stays O(n·d))."""
        bs = int(block_size or block_rows(self.n))
        buf = np.empty((min(bs, H.shape[0]), self.n))     # one product buffer for all blocks
        for start in range(0, H.shape[0], bs):
            idx, w = self.sparse_alpha(H[start:start + bs], _buf=buf)
            yield start, idx, w


# --------------------------------------------------------------------------------------------
# RBF kernel ridge through random Fourier features
# --------------------------------------------------------------------------------------------

class RBFRidge:
    """Kernel ridge regression with the RBF kernel exp(−γ‖x − x′‖²), approximated by random
    Fourier features (Rahimi & Recht 2007), then ridge (:class:`Ridge`) on those features.

    z(x) = √(2/D) cos(Wᵀx + b) with W (d × D) ~ N(0, 2γ) and b ~ U[0, 2π), drawn from
    ``np.random.default_rng(seed)``: the features depend on X and the seed only, never on the
    labels, so α = Z (ZᵀZ + λI)⁻¹ z(h) is label-free.  **The certified learner is this
    random-feature ridge** (for the given seed and ``n_components`` = D), not exact kernel
    ridge: the certificates hold exactly for the classifier it defines.

    ``gamma``: a float > 0 or "scale" = 1 / (d · Var(X_train)) (label-free, as scikit-learn's
    "scale").  ``lam``: a float ≥ 0 or "auto" (:func:`numbaflip.alpha.default_lambda` on the
    random features, with the call's q).  ``fit_intercept`` appends a ones column to Z.
    """

    name = "rbf_ridge"

    def __init__(self, gamma="scale", lam="auto", n_components=1000, seed=0, *,
                 fit_intercept=True):
        self.gamma = _p.check_rbf_gamma(gamma)
        self.lam = _p.check_learner_lam(lam, "RBFRidge")
        self.n_components = _p.check_rbf_components(n_components)
        self.seed = _p.check_seed(seed, "RBFRidge")
        self.fit_intercept = bool(fit_intercept)

    @property
    def params(self) -> dict:
        return {"gamma": self.gamma, "lam": self.lam, "n_components": self.n_components,
                "seed": self.seed, "fit_intercept": self.fit_intercept}

    def feature_map(self, X_train):
        """(γ resolved, the feature map z) for X_train: depends on X_train only through its
        number of columns (and its variance for γ = "scale"), never on labels."""
        X = np.ascontiguousarray(X_train, dtype=np.float64)
        d = X.shape[1]
        if self.gamma == "scale":
            with np.errstate(over="ignore", invalid="ignore"):
                var = float(X.var()) if X.size else 0.0
            gamma = 1.0 / (d * var) if var > 0 and math.isfinite(var) else 1.0
        else:
            gamma = float(self.gamma)
        rng = np.random.default_rng(self.seed)
        W = rng.normal(0.0, math.sqrt(2.0 * gamma), size=(d, self.n_components))
        b = rng.uniform(0.0, 2.0 * math.pi, size=self.n_components)
        return gamma, _RFF(W, b)

    def fit(self, X_train, q):
        X = np.ascontiguousarray(X_train, dtype=np.float64)
        gamma, feat = self.feature_map(X)
        Z = feat(X)
        lam = _p.resolve_lambda(self.lam, Z, float(q), self.fit_intercept)
        params = dict(self.params, gamma=gamma, lam=lam, gamma_given=self.gamma,
                      lam_given=self.lam)
        return _FittedRBF(feat, Z, lam, self.fit_intercept, params)

    def __repr__(self) -> str:
        return (f"RBFRidge(gamma={self.gamma!r}, lam={self.lam!r}, "
                f"n_components={self.n_components}, seed={self.seed})")


class _RFF:
    """The random Fourier feature map x ↦ √(2/D) cos(Wᵀx + b)."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.scale = math.sqrt(2.0 / W.shape[1])

    def __call__(self, X):
        with np.errstate(over="ignore", invalid="ignore"):
            Z = X @ self.W
            Z += self.b
            np.cos(Z, out=Z)
            Z *= self.scale
        return _require_finite(Z, "the random Fourier features (X · W overflows)")


class _FittedRBF:
    def __init__(self, feat, Z, lam, fit_intercept, params):
        self.feat = feat
        self.solver = RidgeAlpha(Z, lam, fit_intercept=fit_intercept)
        self.n = Z.shape[0]
        self.lam = lam
        self.fit_intercept = fit_intercept
        self.params = params

    def alpha(self, H):
        return self.solver.alpha(self.feat(np.ascontiguousarray(H, dtype=np.float64)))

    def blocks(self, H, block_size=None):
        bs = int(block_size or block_rows(self.n))
        for start in range(0, H.shape[0], bs):
            yield start, self.alpha(H[start:start + bs])


#: The learners numbaflip ships: their blocks are already shaped and finite.
BUILTIN = (_FittedRidge, _FittedKNN, _FittedRBF)


def fitted_blocks(learner, fitted, X_test, m, n):
    """``fitted.blocks(X_test)``; blocks of learners other than the built-in ones are checked
    (order, shape, finiteness) by :func:`numbaflip._problem.check_learner_block`."""
    if isinstance(fitted, BUILTIN):
        kw = {"reuse": True} if isinstance(fitted, _FittedRidge) else {}
        yield from fitted.blocks(X_test, **kw)
        return
    name = learner.name
    blocks = getattr(fitted, "blocks", None)
    if not callable(blocks):
        raise _p.NumbaflipInputError(
            f"learner {name!r}: fit(X_train, q) returned {type(fitted).__name__}, which has no "
            "blocks(X_test) method.")
    pos = 0
    for item in blocks(X_test):
        A = _p.check_learner_block(name, item, pos, n, m)
        yield pos, A
        pos += A.shape[0]
    _p.check_learner_end(name, pos, m)


def fit_learner(learner, X_train, q):
    """(fitted, resolved params, λ or None, fit_intercept or None) for ``learner``."""
    fitted = learner.fit(X_train, q)
    params = getattr(fitted, "params", None)
    if not isinstance(params, dict):
        params = dict(learner.params)
    return fitted, params, getattr(fitted, "lam", None), getattr(fitted, "fit_intercept", None)
