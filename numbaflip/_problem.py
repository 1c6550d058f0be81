"""Validation of everything a user passes, in one place.

Every public function (:func:`numbaflip.certify`, :func:`numbaflip.certify_alpha`,
:func:`numbaflip.attack`, :func:`numbaflip.attack_alpha`, the exact certificate, the threshold
tables and the CLI through them) checks and coerces its inputs here, so they accept and refuse
exactly the same inputs with the same words.  Kernels receive only what this module returns:
C-contiguous float64 matrices and int64 class indices.

The q grammar
-------------
``q`` is the noise level of the smoothing (paper §3; ``docs/math.md`` §2–3) and is always used
as an **exact rational**:

* a decimal string: ``"0.1"``, ``"1e-4"``, ``".25"``, ``"2.5E-3"`` (optional ``+``; at most
  400 characters) — the value written, exactly;
* a fraction string ``"p/q"`` of two non-negative integers (``"1/3"``);
* a Python or NumPy float — read through its shortest ``repr`` (``0.1`` means 1/10), an int
  (``0``), or a :class:`fractions.Fraction`.

Range: binary 0 < q < 1/2, K classes 0 < q < (K−1)/K; q = 0 only where the caller allows it
(the exact certificate and attacks).  Two floors keep floating point honest:
q/(K−1) ≥ :data:`Q_MIN` = 1e−300 (so float64 holds q and the per-class flip probability
with full relative precision — subnormal q would make log q wrong by up to 100 %), and
(K−1)/K − q ≥ :data:`Q_GAP` = 1e−9 (so the cancellation in 1 − Kq/(K−1) stays harmless).

Labels
------
:func:`encode_labels` maps the labels users have — {0, 1}, {−1, +1}, {1, 2}, strings — to class
indices 0..K−1 with scikit-learn's ``classes_`` convention (sorted unique values); labels that
already are 0..K−1 (K = 2 without ``num_classes``) keep their values, so a class may be absent
from the training set.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .errors import NumbaflipInputError, NumbaflipWarning

__all__ = ["QValue", "parse_q", "canonical_q_str", "q_upper", "encode_labels",
           "check_matrix", "check_alpha", "check_class_indices", "check_predictions",
           "check_num_classes", "check_bounds", "check_precision", "resolve_lambda", "Q_MIN", "Q_GAP", "KNOWN_BOUNDS", "SMOOTHING_BOUNDS",
           "MAX_CLASSES"]

#: Smallest allowed q/(K−1) (the per-class flip probability): float64 keeps full precision.
Q_MIN = Fraction(1, 10 ** 300)
#: Smallest allowed distance of q below its upper end (K−1)/K.
Q_GAP = Fraction(1, 10 ** 9)
#: Largest number of classes (work scales with the classes present, not with K).
MAX_CLASSES = 2 ** 20
#: Bound names accepted in ``bounds``.
KNOWN_BOUNDS = ("kl", "tight", "exact")
SMOOTHING_BOUNDS = ("kl", "tight")

_DECIMAL = re.compile(r"^\+?(\d+\.?\d*|\.\d+)([eE]([+-]?\d+))?$")
_RATIO = re.compile(r"^(\d{1,400})/(\d{1,400})$")


@dataclass(frozen=True)
class QValue:
    """A validated noise level: ``given`` (as the user wrote it), ``exact`` (Fraction),
    ``canonical`` (one string per exact value, used in cache keys), ``value`` (nearest float)."""

    given: str
    exact: Fraction
    canonical: str

    @property
    def value(self) -> float:
        return float(self.exact)

    def __str__(self) -> str:
        return self.canonical


def q_upper(num_classes) -> Fraction:
    """The open upper end of q: 1/2 binary, (K−1)/K for K classes."""
    K = 2 if num_classes is None else int(num_classes)
    return Fraction(K - 1, K)


def _q_fraction(q) -> tuple[Fraction, str]:
    """(exact value, text as given) or NumbaflipInputError; the grammar of the module doc."""
    if isinstance(q, Fraction):
        return q, str(q)
    if isinstance(q, bool) or q is None:
        raise NumbaflipInputError(
            f"q must be a number or a decimal string such as '0.1', got {q!r}.")
    if isinstance(q, (float, np.floating)):
        if not math.isfinite(float(q)):
            raise NumbaflipInputError(f"q = {q!r} is not finite; pass a noise level such as q=0.1.")
        text = repr(float(q))
        return Fraction(text), text
    if isinstance(q, (int, np.integer)):
        return Fraction(int(q)), str(int(q))
    if not isinstance(q, str):
        try:
            import decimal
            if isinstance(q, decimal.Decimal):
                q = str(q)
        except ImportError:  # pragma: no cover
            pass
    if not isinstance(q, str):
        raise NumbaflipInputError(
            f"q must be a number or a decimal string such as '0.1', got {type(q).__name__}.")
    text = q.strip()
    if len(text) > 400:
        raise NumbaflipInputError(
            f"q is a {len(text)}-character string; write it with an exponent, e.g. '1e-4'.")
    m = _DECIMAL.match(text)
    if m:
        if m.group(3) is not None and abs(int(m.group(3))) > 1000:
            if int(m.group(3)) < 0 and float(m.group(1)) != 0:
                raise NumbaflipInputError(
                    f"q = {text} is below the supported floor: q/(K−1) must be at least 1e-300 "
                    "(see numbaflip._problem).")
            if int(m.group(3)) > 0 and float(m.group(1)) != 0:
                raise NumbaflipInputError(f"q = {text} is far outside (0, 1/2); pass e.g. q=0.1.")
            return Fraction(0), text
        return Fraction(text), text
    m = _RATIO.match(text)
    if m:
        if int(m.group(2)) == 0:
            raise NumbaflipInputError(f"q = {text!r} divides by zero; pass e.g. q='1/3'.")
        return Fraction(int(m.group(1)), int(m.group(2))), text
    raise NumbaflipInputError(
        f"q = {q!r} is not a decimal number; pass e.g. q=0.1, q='1e-4' or q='1/3'.")


def parse_q(q, num_classes=None, *, allow_zero: bool = False) -> QValue:
    """The one q parser (grammar and floors in the module docstring).

    ``num_classes`` None or 2 means the binary range (0, 1/2); K the range (0, (K−1)/K).
    ``allow_zero`` admits q = 0 (the exact certificate and the attacks).
    """
    qf, text = _q_fraction(q)
    K = 2 if num_classes is None else int(num_classes)
    upper = q_upper(num_classes)
    what = "(0, 1/2) for the binary formulation" if K == 2 else \
        f"(0, {K - 1}/{K}) for K = {K} classes"
    if qf == 0 and allow_zero:
        return QValue(text, qf, "0")
    if qf == 0:
        raise NumbaflipInputError(
            "q = 0 means no smoothing, so the 'kl' and 'tight' bounds do not exist; use "
            "bounds=('exact',) for q = 0, or choose q > 0.")
    if qf < 0 or qf >= upper:
        zero = " (q = 0 is allowed only with bounds=('exact',))" if not allow_zero else \
            " (or q = 0)"
        raise NumbaflipInputError(
            f"q = {text} is outside {what}; choose a noise level inside that interval{zero}.")
    if qf / (K - 1) < Q_MIN:
        raise NumbaflipInputError(
            f"q = {text} is below the supported floor: q/(K−1) must be at least 1e-300 so that "
            "float64 holds the flip probabilities exactly enough to certify soundly; use a "
            "larger q (the certificate at such a q equals that of q → 0: the exact bound).")
    if upper - qf < Q_GAP:
        raise NumbaflipInputError(
            f"q = {text} is closer than 1e-9 to {upper} (the upper end for K = {K}); such a "
            "q makes the smoothed classifier a coin flip and float64 cannot certify it "
            f"soundly; use q ≤ {upper} − 1e-9.")
    return QValue(text, qf, _canonical(qf))


def _canonical(q: Fraction) -> str:
    num, den = q.numerator, q.denominator
    d, a, b = den, 0, 0
    while d % 2 == 0:
        d //= 2
        a += 1
    while d % 5 == 0:
        d //= 5
        b += 1
    if d != 1:
        return f"{num}/{den}"
    e = max(a, b)
    scaled = num * 10 ** e // den
    s = str(scaled).rjust(e + 1, "0")
    if e == 0:
        return s
    return (s[:-e] + "." + s[-e:]).rstrip("0").rstrip(".")


def canonical_q_str(q, K: int = 2) -> str:
    """One canonical string per exact q: ``"1e-4"``, ``"0.0001"``, ``"1E-04"`` give
    ``"0.0001"``; non-terminating rationals are ``"p/q"`` in lowest terms (``"1/3"``)."""
    return parse_q(q, K).canonical


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------

def check_num_classes(num_classes):
    """None (binary formulation) or an int in 2..2^20."""
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2 or num_classes > MAX_CLASSES:
        raise NumbaflipInputError(
            f"num_classes must be an integer from 2 to 2^20 = {MAX_CLASSES} (or None for the binary "
            f"formulation), got {num_classes!r}.")
    return int(num_classes)


def check_bounds(bounds) -> tuple:
    """A non-empty tuple of distinct names from :data:`KNOWN_BOUNDS`, in the given order."""
    if isinstance(bounds, str):
        bounds = (bounds,)
    try:
        bounds = tuple(bounds)
    except TypeError:
        raise NumbaflipInputError(
            f"bounds must be a sequence of bound names such as ('kl', 'tight'), got "
            f"{bounds!r}.") from None
    if not bounds:
        raise NumbaflipInputError("bounds is empty; pass e.g. bounds=('kl',) or ('kl', 'tight').")
    for b in bounds:
        if b not in KNOWN_BOUNDS:
            raise NumbaflipInputError(
                f"unknown bound {b!r}; choose from {', '.join(KNOWN_BOUNDS)}.")
    return tuple(dict.fromkeys(bounds))


def check_precision(precision):
    if precision not in ("auto", "float64", "mp"):
        raise NumbaflipInputError(
            f"precision must be 'auto', 'float64' or 'mp', got {precision!r}.")
    return precision


# --------------------------------------------------------------------------------------------
# arrays
# --------------------------------------------------------------------------------------------

def check_shape_2d(shape, name) -> None:
    """A feature matrix's shape: 2-D, with at least one row and one column."""
    if len(shape) != 2:
        raise NumbaflipInputError(
            f"{name} must be 2-D (rows × features), got shape {tuple(shape)}; reshape a single "
            "row with X.reshape(1, -1).")
    if shape[0] == 0 or shape[1] == 0:
        raise NumbaflipInputError(f"{name} is empty (shape {tuple(shape)}); pass at least one "
                                  "row and one column.")


def check_matrix(X, name, *, cols=None) -> np.ndarray:
    """A finite, C-contiguous float64 2-D array; refuses sparse and complex input."""
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):
        raise NumbaflipInputError(
            f"{name} is a scipy.sparse matrix; numbaflip needs dense features: reduce them "
            "first (e.g. sklearn.decomposition.TruncatedSVD fitted without labels) or pass "
            f"{name}.toarray() if it fits in memory.")
    if np.iscomplexobj(X):
        raise NumbaflipInputError(
            f"{name} is complex; pass real-valued features (the certificate is for real "
            "weights).")
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise NumbaflipInputError(f"{name} must be a numeric 2-D array.") from None
    check_shape_2d(X.shape, name)
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


def encode_labels(y, n_expected, num_classes, *, name="y_train"):
    """Map user labels to class indices: ``(y_index int64 (n,), classes_ (K,), K)``.

    * ``num_classes=None`` (binary formulation): at most two distinct labels.  Labels within
      {0, 1} (ints, bools, integral floats) are the classes themselves (``classes_ = [0, 1]``);
      any other pair — {−1, +1}, {1, 2}, {"cat", "dog"} — maps its sorted values to 0 and 1.
    * ``num_classes=K``: integer labels within 0..K−1 are the class indices
      (``classes_ = arange(K)``; classes may be absent); otherwise exactly K distinct labels,
      sorted.
    * shape (n, 1) is accepted with a warning (as scikit-learn does); a single class in the
      training set is accepted with a warning (the certificates hold for it).
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(f"{name} has shape {y.shape}; a column vector was passed where a 1-D "
                      "array was expected, using y.ravel().", NumbaflipWarning, stacklevel=3)
        y = y[:, 0]
    if y.ndim != 1:
        raise NumbaflipInputError(
            f"{name} must be one-dimensional (one label per training row), got shape {y.shape}.")
    if y.shape[0] != n_expected:
        raise NumbaflipInputError(
            f"{name} has {y.shape[0]} labels but there are {n_expected} training rows; pass one "
            "label per training row.")
    if y.shape[0] == 0:
        raise NumbaflipInputError(f"{name} is empty; pass at least one labelled training row.")
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if np.iscomplexobj(y):
        raise NumbaflipInputError(f"{name} is complex; pass class labels.")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NumbaflipInputError(
                f"{name}[{i}] = {y[i]!r} is not a class label; labels must be integers or "
                "strings (not fractional or non-finite numbers).")
        y = y.astype(np.int64)
    elif y.dtype == object:
        kinds = {type(v) for v in y.tolist()}
        if kinds <= {int, bool}:
            y = y.astype(np.int64)
        elif all(issubclass(k, str) for k in kinds):
            y = y.astype(str)
        else:
            raise NumbaflipInputError(
                f"{name} mixes label types {sorted(k.__name__ for k in kinds)}; pass integer "
                "or string labels, one kind.")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype.kind in "US"):
        raise NumbaflipInputError(
            f"{name} must hold integer or string class labels, got dtype {y.dtype}.")
    K_req = 2 if num_classes is None else num_classes
    is_int = np.issubdtype(y.dtype, np.integer)
    if is_int and y.min() >= 0 and y.max() <= K_req - 1:
        yi = np.ascontiguousarray(y, dtype=np.int64)
        classes = np.arange(K_req, dtype=np.int64)
    else:
        classes, yi = np.unique(y, return_inverse=True)
        yi = np.ascontiguousarray(yi.reshape(-1), dtype=np.int64)
        if classes.size > K_req:
            hint = ("pass num_classes=K for K classes" if num_classes is None else
                    f"raise num_classes to at least {classes.size}")
            raise NumbaflipInputError(
                f"{name} has {classes.size} distinct labels but the "
                f"{'binary formulation' if num_classes is None else f'num_classes={K_req}'} "
                f"allows {K_req}; {hint}.")
        if classes.size < K_req:
            if num_classes is None and classes.size == 1:
                raise NumbaflipInputError(
                    f"{name} holds the single label {classes[0].item()!r}, so the name of the other "
                    "class is unknown; use labels 0/1 (or pass both classes' labels).")
            raise NumbaflipInputError(
                f"{name} has {classes.size} distinct labels ({_show(classes)}) but "
                f"num_classes={K_req}; with labels that are not 0..K−1 every class must "
                "occur, or use integer labels 0..K−1.")
    if np.unique(yi).size < 2:
        warnings.warn(
            f"{name} holds a single class; the classifier and the certificates are still "
            "defined (an adversary must flip labels to reach another class).",
            NumbaflipWarning, stacklevel=3)
    return yi, classes, K_req


def _show(values, k=5):
    vals = [repr(v.item() if hasattr(v, "item") else v) for v in values[:k]]
    return ", ".join(vals) + (", …" if len(values) > k else "")


def resolve_lambda(lam, X_train, q: float, fit_intercept: bool) -> float:
    """The ridge parameter: a finite float ≥ 0, or "auto" for the label-free default."""
    from .alpha import default_lambda

    if isinstance(lam, str):
        if lam != "auto":
            raise NumbaflipInputError(
                f"lam must be a non-negative float or 'auto', got {lam!r}.")
        lam_v = default_lambda(X_train, q, fit_intercept=fit_intercept)
        if not math.isfinite(lam_v):
            raise NumbaflipInputError(
                "lam='auto' gave a non-finite λ because the features overflow float64 in "
                "XᵀX; scale the features (e.g. divide by their largest absolute value).")
        return lam_v
    if isinstance(lam, bool):
        raise NumbaflipInputError(f"lam must be a non-negative float or 'auto', got {lam!r}.")
    try:
        lam_v = float(lam)
    except (TypeError, ValueError):
        raise NumbaflipInputError(
            f"lam must be a non-negative float or 'auto', got {lam!r}.") from None
    if not math.isfinite(lam_v) or lam_v < 0:
        raise NumbaflipInputError(
            f"lam = {lam!r} is invalid; the ridge parameter must be a finite number ≥ 0 "
            "(try lam='auto').")
    return lam_v


# --------------------------------------------------------------------------------------------
# class slots: work scales with the classes present, not with K
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassSlots:
    """The K-class problem restricted to the classes that can matter.

    A class absent from the training set has class sum 0 at every test point, so all absent
    classes are interchangeable except for their index (ties go to the lowest index).  The
    slots are the present classes plus the two lowest absent ones (the lowest can be the
    prediction; the next one is then its strongest absent rival), in increasing class order,
    so comparisons of slot indices are comparisons of class indices.  ``weight[s]`` is the
    number of rival classes slot s stands for in the union bound: 1, and K − |present| − 1 for
    the second absent slot (its bound equals that of every absent class other than the first).
    """

    classes: np.ndarray   # (S,) int64 class index of each slot, increasing
    y: np.ndarray         # (n,) int64 slot of each training label
    weight: np.ndarray    # (S,) int64
    K: int                # number of classes of the problem (of the noise)

    @property
    def S(self) -> int:
        return int(self.classes.shape[0])

    @property
    def log_weight(self) -> np.ndarray:
        """log(weight), rounded up (0 where weight = 1)."""
        w = self.weight.astype(np.float64)
        return np.where(self.weight > 1, np.log(w) * (1 + 2.0 ** -50) + 1e-300, 0.0)


def class_slots(y_index: np.ndarray, K: int) -> ClassSlots:
    present = np.unique(y_index)
    absent_needed = min(2, K - present.size)
    reps = []
    if absent_needed:
        pres = set(present.tolist())
        c = 0
        while len(reps) < absent_needed:
            if c not in pres:
                reps.append(c)
            c += 1
    classes = np.sort(np.concatenate([present, np.asarray(reps, dtype=np.int64)]))
    weight = np.ones(classes.size, dtype=np.int64)
    if len(reps) == 2:
        weight[np.searchsorted(classes, reps[1])] = K - present.size - 1
    y = np.ascontiguousarray(np.searchsorted(classes, y_index), dtype=np.int64)
    return ClassSlots(classes.astype(np.int64), y, weight, int(K))


# --------------------------------------------------------------------------------------------
# alpha and class indices (certify_alpha's and the exact certificate's inputs)
# --------------------------------------------------------------------------------------------

def check_alpha(A) -> np.ndarray:
    """alpha (m, n) (a single row (n,) is one test point) as C-contiguous float64; n < MAX_N.
    Non-finite entries are reported by the kernels (they scan alpha anyway)."""
    try:
        A = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError):
        raise NumbaflipInputError("alpha must be a numeric array of shape (m, n).")
    if A.ndim == 1:
        A = A.reshape(1, -1)
    if A.ndim != 2 or A.shape[1] == 0:
        raise NumbaflipInputError(
            f"alpha must have shape (m, n) (one row per test point), got {A.shape}.")
    if A.shape[1] >= MAX_N:
        raise NumbaflipInputError(
            f"n = {A.shape[1]} training points is above the supported {MAX_N}; the rigorous "
            "floating-point error bound assumes fewer.")
    return np.ascontiguousarray(A)


def check_class_indices(y, n, num_classes) -> np.ndarray:
    """Training labels already encoded as class indices 0..K−1 (0/1 binary), int64 (n,)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise NumbaflipInputError(
            f"y_train must have shape ({n},) (one label per column of alpha), got {y.shape}.")
    if y.dtype == np.bool_:
        y = y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise NumbaflipInputError("y_train must hold integer class labels (0/1 or 0..K−1).")
    elif not np.issubdtype(y.dtype, np.integer):
        raise NumbaflipInputError(f"y_train must hold integer class labels, got {y.dtype}.")
    yi = np.ascontiguousarray(y, dtype=np.int64)
    K = 2 if num_classes is None else num_classes
    if yi.size and (yi.min() < 0 or yi.max() > K - 1):
        bad = int(np.flatnonzero((yi < 0) | (yi > K - 1))[0])
        hint = ("labels must be 0 or 1; pass num_classes=K for K classes"
                if num_classes is None else f"labels must be in 0..{K - 1}")
        raise NumbaflipInputError(f"y_train[{bad}] = {yi[bad]} is out of range: {hint}.")
    return yi


def check_predictions(pred, m, num_classes) -> np.ndarray:
    """Predictions as class indices 0..K−1, int64 (m,)."""
    p = np.asarray(pred)
    if p.ndim == 0:
        p = p.reshape(1)
    if p.shape != (m,):
        raise NumbaflipInputError(
            f"pred must have shape ({m},) (one prediction per row of alpha), got {p.shape}.")
    if not (np.issubdtype(p.dtype, np.integer) or p.dtype == np.bool_):
        if not np.all(p == np.round(p)):
            raise NumbaflipInputError("pred must hold integer class labels.")
    p = np.ascontiguousarray(p, dtype=np.int64)
    K = 2 if num_classes is None else num_classes
    if p.size and (p.min() < 0 or p.max() > K - 1):
        raise NumbaflipInputError(
            f"pred must hold labels in 0..{K - 1}, got values in [{p.min()}, {p.max()}].")
    return p


# --------------------------------------------------------------------------------------------
# the validated problem
# --------------------------------------------------------------------------------------------

#: Largest number of training points: the rigorous float64 error bounds assume fewer.
MAX_N = 1 << 27


@dataclass(frozen=True)
class Problem:
    """Everything a certificate needs, validated once (see :func:`problem`).

    ``y`` are class indices (int64, C-contiguous) and ``classes`` their labels;
    ``X_train``/``X_test`` (ridge) or ``A`` (alpha given) are finite C-contiguous float64.
    """

    y: np.ndarray
    classes: np.ndarray
    num_classes: int | None
    q: QValue
    bounds: tuple
    precision: str
    n: int
    m: int
    X_train: np.ndarray | None = None
    X_test: np.ndarray | None = None
    A: np.ndarray | None = None
    lam: float | None = None
    fit_intercept: bool | None = None

    @property
    def K(self) -> int:
        return 2 if self.num_classes is None else int(self.num_classes)

    @property
    def smoothing(self) -> bool:
        return any(b in SMOOTHING_BOUNDS for b in self.bounds)


def problem(y_train, *, q, X_train=None, X_test=None, A=None, lam=None, fit_intercept=True,
            bounds=("kl",), num_classes=None, precision="auto") -> Problem:
    """Validate and coerce the inputs of a certificate or an attack into a :class:`Problem`.

    Give either ``X_train`` and ``X_test`` (ridge; ``lam`` a float ≥ 0 or "auto") or ``A``
    (alpha, one row per test point).  q = 0 is accepted only when no smoothing bound is asked
    for (attacks pass ``bounds=("exact",)``).  Every error is a :class:`NumbaflipInputError`
    that says what is wrong and how to fix it; nothing is computed before all checks pass.
    """
    num_classes = check_num_classes(num_classes)
    bounds = check_bounds(bounds)
    smoothing = any(b in SMOOTHING_BOUNDS for b in bounds)
    qv = parse_q(q, num_classes, allow_zero=not smoothing)
    precision = check_precision(precision)
    if A is not None:
        A = check_matrix(A, "A")
        n, m = A.shape[1], A.shape[0]
    else:
        X_train = check_matrix(X_train, "X_train")
        X_test = check_matrix(X_test, "X_test", cols=X_train.shape[1])
        n, m = X_train.shape[0], X_test.shape[0]
    if n >= MAX_N:
        raise NumbaflipInputError(
            f"n = {n} training points is above the supported {MAX_N}; the rigorous "
            "floating-point error bounds assume fewer.")
    y, classes, _ = encode_labels(y_train, n, num_classes)
    lam_v = None
    if A is None:
        lam_v = resolve_lambda(lam, X_train, qv.value, fit_intercept)
        fit_intercept = bool(fit_intercept)
    else:
        fit_intercept = None
    return Problem(y=y, classes=classes, num_classes=num_classes, q=qv, bounds=bounds,
                   precision=precision, n=n, m=m, X_train=X_train, X_test=X_test, A=A,
                   lam=lam_v, fit_intercept=fit_intercept)


# --------------------------------------------------------------------------------------------
# learners (numbaflip.learners): their parameters, the learner object, the blocks it yields
# --------------------------------------------------------------------------------------------

def check_learner_lam(lam, owner):
    """``lam`` of a learner: "auto" or a finite float ≥ 0 (as :func:`resolve_lambda`)."""
    if isinstance(lam, str) and lam == "auto":
        return "auto"
    try:
        return resolve_lambda(lam, None, 0.0, True)
    except NumbaflipInputError as e:
        raise NumbaflipInputError(f"{owner}: {e}") from None


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_knn_k(k, n=None) -> int:
    """The number of neighbours of :class:`numbaflip.learners.KNN`: an integer, 1 ≤ k ≤ n."""
    if not _is_int(k):
        if isinstance(k, (float, np.floating)) and math.isfinite(k) and k == round(k):
            k = int(k)
        else:
            raise NumbaflipInputError(
                f"KNN(k={k!r}) is invalid: the number of neighbours k must be an integer ≥ 1.")
    k = int(k)
    if k < 1:
        raise NumbaflipInputError(
            f"KNN(k={k}) is invalid: the number of neighbours k must be an integer ≥ 1.")
    if n is not None and k > n:
        raise NumbaflipInputError(
            f"KNN(k={k}) needs at least k training points, but there are n = {n}; use "
            f"k ≤ {n}.")
    return k


KNN_WEIGHTS = ("uniform", "distance")


def check_knn_weights(weights) -> str:
    if not isinstance(weights, str) or weights not in KNN_WEIGHTS:
        raise NumbaflipInputError(
            f"KNN(weights={weights!r}) is invalid: weights must be one of {KNN_WEIGHTS}.")
    return weights


def check_rbf_gamma(gamma):
    """The RBF kernel width: a finite float > 0 or "scale"."""
    if isinstance(gamma, str):
        if gamma == "scale":
            return gamma
        raise NumbaflipInputError(
            f"RBFRidge(gamma={gamma!r}) is invalid: gamma must be a finite number > 0 or "
            "'scale'.")
    if isinstance(gamma, (bool, np.bool_)):
        raise NumbaflipInputError(
            f"RBFRidge(gamma={gamma!r}) is invalid: gamma must be a finite number > 0 or "
            "'scale'.")
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise NumbaflipInputError(
            f"RBFRidge(gamma={gamma!r}) is invalid: gamma must be a finite number > 0 or "
            "'scale'.") from None
    if not math.isfinite(g) or g <= 0:
        raise NumbaflipInputError(
            f"RBFRidge(gamma={gamma!r}) is invalid: gamma must be a finite number > 0 or "
            "'scale'.")
    return g


def check_rbf_components(n_components) -> int:
    """The number of random Fourier features: an integer ≥ 1."""
    if not _is_int(n_components) or int(n_components) < 1:
        raise NumbaflipInputError(
            f"RBFRidge(n_components={n_components!r}) is invalid: the number of random "
            "features must be an integer ≥ 1.")
    return int(n_components)


def check_seed(seed, owner) -> int:
    if not _is_int(seed) or int(seed) < 0:
        raise NumbaflipInputError(
            f"{owner}(seed={seed!r}) is invalid: the seed must be an integer ≥ 0.")
    return int(seed)


def check_learner(learner, *, lam="auto", fit_intercept=None):
    """``learner`` if it follows the protocol of :mod:`numbaflip.learners` (a string ``name``,
    a dict ``params``, ``fit(X_train, q)``); ``lam`` and ``fit_intercept`` of ``certify`` /
    ``attack`` must then be left at their defaults (they belong to the learner)."""
    name = getattr(learner, "name", None)
    fit = getattr(learner, "fit", None)
    params = getattr(learner, "params", None)
    if not (isinstance(name, str) and name and callable(fit) and isinstance(params, dict)):
        raise NumbaflipInputError(
            f"learner={type(learner).__name__} object is not a learner: pass "
            "numbaflip.learners.Ridge(...), KNN(...) or RBFRidge(...), or an object with a "
            "string name, a dict params and fit(X_train, q) returning an object whose "
            "blocks(X_test) yields (start, alpha block).")
    if not (isinstance(lam, str) and lam == "auto"):
        raise NumbaflipInputError(
            f"lam={lam!r} and learner={name!r} were both given; λ belongs to the learner: "
            "pass learner=numbaflip.learners.Ridge(lam=...) (or RBFRidge(..., lam=...)), or "
            "lam alone for ridge.")
    if fit_intercept is not None:
        raise NumbaflipInputError(
            f"fit_intercept={fit_intercept!r} and learner={name!r} were both given; the "
            "intercept belongs to the learner: pass it to Ridge(...) or RBFRidge(...).")
    return learner


def check_learner_block(name, block, start_expected, n, m):
    """One ``(start, A)`` item yielded by a learner's ``blocks(X_test)``: the next rows of the
    test set in order, shape (b, n) with b ≥ 1, every entry finite; returns A as C-contiguous
    float64."""
    try:
        start, A = block
    except (TypeError, ValueError):
        raise NumbaflipInputError(
            f"learner {name!r}: blocks(X_test) must yield (start, alpha block) pairs, got "
            f"{type(block).__name__}.") from None
    if not _is_int(start) or int(start) != start_expected:
        raise NumbaflipInputError(
            f"learner {name!r}: a block starts at test row {start!r} but the next row is "
            f"{start_expected}; blocks must cover the test rows in order.")
    try:
        A = np.asarray(A)
    except (TypeError, ValueError):
        A = np.asarray(A, dtype=object)
    if A.dtype.kind not in "fiub" or A.ndim != 2 or A.shape[0] < 1 or A.shape[1] != n \
            or start_expected + A.shape[0] > m:
        raise NumbaflipInputError(
            f"learner {name!r}: the block at test row {start_expected} has shape "
            f"{A.shape} and dtype {A.dtype}; it must be a real array of shape (b, {n}) "
            f"(one row of alpha per test point, one column per training point) with "
            f"1 ≤ b ≤ {m - start_expected}.")
    A = np.ascontiguousarray(A, dtype=np.float64)
    if not np.isfinite(A).all():
        i, j = np.argwhere(~np.isfinite(A))[0]
        raise NumbaflipInputError(
            f"learner {name!r}: alpha has a non-finite value (NaN or inf) at test row "
            f"{start_expected + int(i)}, training point {int(j)}.")
    return A


def check_learner_end(name, rows, m):
    if rows != m:
        raise NumbaflipInputError(
            f"learner {name!r}: blocks(X_test) covered {rows} of the {m} test rows; it must "
            "yield alpha for every test row.")
