"""The linear-in-labels weights alpha of ridge regression (math.md §1; paper §4, Algorithm 1).

For training features X (n × k, already mapped by a label-independent feature map) and a test
point h, ``alpha = X (XᵀX + λI)⁻¹ h``.  The binary score is ``alphaᵀ y`` and the K-class scores are
the class sums of alpha, so every certificate in numbaflip is a function of alpha and the labels.

alpha is produced in blocks of test points (never one n × m matrix for the whole test set), from a
Cholesky factorisation of the k × k Gram matrix (never an explicit inverse).

**λ must not depend on the training labels**: the certificates treat alpha as fixed while an
adversary moves the labels.  :func:`default_lambda` is label-free; :func:`paper_lambda` is the
paper's rule, which uses labels and is only valid when those labels are trusted.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from .config import block_rows
from .errors import NumbaflipInputError

#: Largest k × n for which (XᵀX + λI)⁻¹ Xᵀ is kept in memory (8 bytes each: 400 MB).
_MAX_PRECOMPUTED = 50_000_000


def _require_finite(arr: np.ndarray, what: str) -> np.ndarray:
    """``arr`` if every entry is finite, else a clear error: the features overflow float64."""
    if not np.isfinite(arr).all():
        raise NumbaflipInputError(
            f"{what} is not finite: the features are too large for float64 (XᵀX overflows "
            f"beyond ~1e308). Scale the features, e.g. divide X_train and X_test by the largest "
            f"absolute value of X_train, and certify again.")
    return arr


def design_matrix(X: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``X`` with a trailing column of ones when ``fit_intercept`` (λ regularises it too)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    if fit_intercept:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    return X


def default_lambda(X_train: np.ndarray, q: float, *, fit_intercept: bool = True) -> float:
    """Label-free ridge parameter: the paper's rule with σ̂² replaced by 1/4.

    The paper (§4, "ℓ2 regularization") sets λ = (1+q) σ̂² k / (2n) · κ(XᵀX) with σ̂² estimated
    from OLS residuals of the training labels.  Those labels may be poisoned, and a λ that moves
    with them voids the certificate.  Here σ̂² is replaced by 1/4, the largest variance of a
    {0, 1} label, so λ depends on the features and q only.  κ is the 2-norm condition number of
    XᵀX (with the intercept column when ``fit_intercept``); k counts that column too.
    """
    Xd = design_matrix(X_train, fit_intercept)
    n, k = Xd.shape
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.linalg.svd(Xd, compute_uv=False)
    return lambda_from_singular_values(s, n, k, q)


def lambda_from_singular_values(s: np.ndarray, n: int, k: int, q: float) -> float:
    """:func:`default_lambda` from the singular values ``s`` (descending) of the n × k design
    matrix; label-free.  Also used with the singular values of the R factor of a
    tall-skinny QR over training partitions (the same values: X = QR)."""
    with np.errstate(over="ignore", invalid="ignore"):
        _require_finite(s * s, "XᵀX (through its singular values)")
        smin = s[-1] if s.size else 0.0
        kappa = (s[0] / smin) ** 2 if smin > 0 else np.inf
    if not np.isfinite(kappa):
        # Rank-deficient design: fall back to a scale-aware small ridge.
        return float(1e-6 * (s[0] ** 2 if s.size else 1.0) + 1e-12)
    return float((1.0 + q) * 0.25 * k / (2.0 * n) * kappa)


def paper_lambda(X_train: np.ndarray, y_trusted: np.ndarray, q: float, *,
                 fit_intercept: bool = True) -> float:
    """The paper's λ = (1+q) σ̂² k / (2n) κ(XᵀX), σ̂² = ‖y − Xβ̂_OLS‖² / (n − k).

    **Caveat.** σ̂² is computed from labels.  If those are the (possibly poisoned) training labels,
    an adversary who flips labels also moves λ, and therefore alpha, and the certificate no longer
    covers the classifier that runs.  Use this only with labels you trust (for example a clean,
    held-out labelled set drawn from the same distribution), and pass the resulting float as
    ``lam``.  For K classes pass one-hot labels of shape (n, K); σ̂² is then averaged over classes.
    """
    Xd = design_matrix(X_train, fit_intercept)
    y = np.asarray(y_trusted, dtype=np.float64)
    if y.shape[0] != Xd.shape[0]:
        raise NumbaflipInputError(
            f"y_trusted has {y.shape[0]} rows but X_train has {Xd.shape[0]}; pass one label per "
            "training row.")
    n, k = Xd.shape
    if n <= k:
        raise NumbaflipInputError(
            f"paper_lambda needs more training rows than features (n = {n}, k = {k}); "
            "use lam='auto' or an explicit float instead.")
    beta, *_ = np.linalg.lstsq(Xd, y, rcond=None)
    resid = y - Xd @ beta
    sigma2 = float(np.sum(resid ** 2) / (n - k) / (y.shape[1] if y.ndim == 2 else 1))
    s = np.linalg.svd(Xd, compute_uv=False)
    kappa = (s[0] / s[-1]) ** 2
    return float((1.0 + q) * sigma2 * k / (2.0 * n) * kappa)


class RidgeAlpha:
    """Cholesky factorisation of XᵀX + λI, producing alpha for blocks of test points.

    >>> solver = RidgeAlpha(X_train, lam=1.0)
    >>> for start, A in solver.blocks(X_test):   # A has shape (block, n)
    ...     ...
    """

    def __init__(self, X_train: np.ndarray, lam: float, *, fit_intercept: bool = True):
        Xd = design_matrix(X_train, fit_intercept)
        self.fit_intercept = bool(fit_intercept)
        self.lam = float(lam)
        self.n, self.k = Xd.shape
        if not np.isfinite(self.lam) or self.lam < 0:
            raise NumbaflipInputError(
                f"λ = {self.lam!r} is invalid; the ridge parameter must be a finite number ≥ 0.")
        self.XT = np.ascontiguousarray(Xd.T)  # (k, n)
        with np.errstate(over="ignore", invalid="ignore"):
            G = self.XT @ Xd
            G[np.diag_indices_from(G)] += self.lam
        _require_finite(G, "the Gram matrix XᵀX + λI")
        try:
            self.cho = scipy.linalg.cho_factor(G, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            raise NumbaflipInputError(
                f"XᵀX + λI is not positive definite (λ = {self.lam:g}, k = {self.k} feature "
                "columns): the features are collinear. Use lam > 0 (for example lam='auto').")
        _require_finite(self.cho[0], "the Cholesky factor of XᵀX + λI")

        # M = (XᵀX + λI)⁻¹ Xᵀ (k × n) by Cholesky solves, so that each block of alpha is one
        # matrix product H M.  Skipped when k × n is large (then each block is solved).
        self.M = None
        if self.k * self.n <= _MAX_PRECOMPUTED:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self.M = np.ascontiguousarray(
                    scipy.linalg.cho_solve(self.cho, self.XT, check_finite=False))
            _require_finite(self.M, "(XᵀX + λI)⁻¹Xᵀ")

    def alpha(self, H: np.ndarray) -> np.ndarray:
        """alpha for the test rows ``H`` (b × k, without intercept column): shape (b, n)."""
        Hd = design_matrix(H, self.fit_intercept)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.M is not None:
                A = Hd @ self.M
            else:
                W = scipy.linalg.cho_solve(self.cho, Hd.T, check_finite=False)  # (k, b)
                A = np.ascontiguousarray(W.T @ self.XT)
        return _require_finite(A, "alpha")

    def blocks(self, H: np.ndarray, block_size: int | None = None, *, reuse: bool = False):
        """Yield ``(start, alpha_block)`` over the rows of ``H`` in bounded blocks.

        With ``reuse=True`` every block is written into the same buffer (no fresh pages per
        block, about 40 % faster for large n): consume each block before asking for the next.
        """
        bs = int(block_size or block_rows(self.n))
        m = H.shape[0]
        buf = None
        if reuse and self.M is not None:
            buf = np.empty((min(bs, m), self.n))
        for start in range(0, m, bs):
            if buf is None:
                yield start, self.alpha(H[start:start + bs])
            else:
                Hd = design_matrix(H[start:start + bs], self.fit_intercept)
                out = buf[:Hd.shape[0]]
                with np.errstate(over="ignore", invalid="ignore"):
                    np.matmul(Hd, self.M, out=out)
                yield start, _require_finite(out, "alpha")
