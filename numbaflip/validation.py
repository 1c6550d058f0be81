"""Input validation shared by the public functions (certify, attack, exact).

Each check coerces once at the boundary and raises :class:`NumbaflipInputError` with a message
that says what is wrong and how to fix it.
"""
from __future__ import annotations

import math

import numpy as np

from .alpha import default_lambda
from .errors import NumbaflipInputError


def check_matrix(X, name, *, cols=None) -> np.ndarray:
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise NumbaflipInputError(f"{name} must be a numeric 2-D array.")
    if X.ndim != 2:
        raise NumbaflipInputError(
            f"{name} must be 2-D (rows × features), got shape {X.shape}; reshape a single row "
            "with X.reshape(1, -1).")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise NumbaflipInputError(f"{name} is empty (shape {X.shape}); pass at least one row "
                                  "and one column.")
    if cols is not None and X.shape[1] != cols:
        raise NumbaflipInputError(
            f"{name} has {X.shape[1]} columns but X_train has {cols}; test features must come "
            "from the same feature map as the training features.")
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise NumbaflipInputError(
            f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf), first at row {i}, "
            f"column {j}; remove or impute them before certifying.")
    return np.ascontiguousarray(X)


def check_num_classes(num_classes):
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2:
        raise NumbaflipInputError(
            f"num_classes must be an integer ≥ 2 (or None for the binary formulation), got "
            f"{num_classes!r}.")
    return int(num_classes)


def resolve_lambda(lam, X_train, q: float, fit_intercept: bool) -> float:
    """The ridge parameter: a finite float ≥ 0, or "auto" for the label-free default."""
    if isinstance(lam, str):
        if lam != "auto":
            raise NumbaflipInputError(
                f"lam must be a non-negative float or 'auto', got {lam!r}.")
        return default_lambda(X_train, q, fit_intercept=fit_intercept)
    try:
        lam_v = float(lam)
    except (TypeError, ValueError):
        raise NumbaflipInputError(f"lam must be a non-negative float or 'auto', got {lam!r}.")
    if not math.isfinite(lam_v) or lam_v < 0:
        raise NumbaflipInputError(
            f"lam = {lam!r} is invalid; the ridge parameter must be a finite number ≥ 0 "
            "(try lam='auto').")
    return lam_v
