"""Result objects of :func:`numbaflip.certify` and :func:`numbaflip.certify_alpha`.

A :class:`CertifyResult` holds one certificate per test point plus the provenance needed to
trust it later (:attr:`CertifyResult.metadata`): the numbaflip version, q as given, λ or the
learner, the number of classes, the sizes, the bounds, the precision and the threshold-table
key.  :meth:`CertifyResult.to_dict` and :meth:`CertifyResult.to_frame` export both.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import NumbaflipInputError

__all__ = ["CertifyResult"]


def check_test_labels(y_true, m: int) -> np.ndarray:
    """``y_true`` as a 1-D array of m test labels; shape (m, 1) is accepted, as scikit-learn
    does.  Raises NumbaflipInputError naming the shapes otherwise."""
    yt = np.asarray(y_true)
    if yt.ndim == 2 and yt.shape[1] == 1:
        yt = yt[:, 0]
    if yt.shape != (m,):
        raise NumbaflipInputError(
            f"y_true has shape {yt.shape} but there are {m} test points; pass one test label "
            "per test point, in the same order.")
    return yt


@dataclass
class CertifyResult:
    """Per-test-point certificates.

    Attributes
    ----------
    prediction : (m,) array of the user's labels
        ``classes_[prediction_index]``.  Binary formulation: the smoothed classifier's deployed
        prediction 1{t* ≥ 0} = 1{E[αᵀY] ≥ 1/2}.  K classes: argmax of the clean class sums
        (lowest class index on ties).
    prediction_index : (m,) int64
        The predicted class as an index into ``classes_`` (0/1 in the binary formulation).
    classes_ : (K,) array
        The label of each class index, scikit-learn's convention: the sorted unique training
        labels, or ``arange(K)`` when the labels already are class indices 0..K−1.
    radius : dict[str, (m,) int64]
        One array per requested bound.  r ≥ 0: certified against every set of at most r label
        flips; −1: not certified (not even r = 0); capped at n.
    log_p_wrong : (m,) float64
        Certified upper bound on log(1 − p), p the smoothed probability of ``prediction``
        (binary: log B of eq. 6; K classes: log Σ_{c′} B_{c c′}).  −inf when B = 0; NaN when only
        the exact bound was requested.
    log_p_wrong_err : (m,) float64
        Width of the floating-point error interval below ``log_p_wrong`` (the true Chernoff value
        at the t used lies in [log_p_wrong − 2·err, log_p_wrong]).
    status : (m,) int8
        Codes of :mod:`numbaflip._kernels.common` (0 interior, 1 zero/tie, 2 unbounded, 3 limit,
        4 Newton iteration cap; the bound is valid in every case).
    t_star : (m,) float64 or (m, K) float64
        The t at which each Chernoff bound was evaluated (K classes: per rival, 0 where B = 1).
    pair_log_b : (m, K) float64 or None
        K classes: the upper bound on log B_{c c′} per rival c′ (−inf at c′ = c).  When
        m·K > 2^24 (very many classes, most absent from the training set) ``t_star`` and
        ``pair_log_b`` have one column per class slot instead (the classes present and the
        two lowest absent ones; every other absent class has the bound of the second absent
        slot); ``info["pair_classes"]`` names the class of each column in every case.
    metadata : dict
        Provenance: ``numbaflip_version``, ``q`` (as given), ``q_canonical``, ``lam``,
        ``learner``, ``fit_intercept``, ``formulation``, ``K``, ``n_train``, ``n_test``,
        ``bounds``, ``precision``, ``threshold_table`` (the cache key of the tight thresholds, or
        None) and ``classes`` (as a list).
    """

    prediction: np.ndarray
    radius: dict
    log_p_wrong: np.ndarray
    log_p_wrong_err: np.ndarray
    status: np.ndarray
    t_star: np.ndarray
    pair_log_b: np.ndarray | None
    q: str
    num_classes: int | None
    n: int
    bounds: tuple
    lam: float | None = None
    info: dict = field(default_factory=dict)
    prediction_index: np.ndarray | None = None
    classes_: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.prediction_index is None:
            self.prediction_index = np.asarray(self.prediction, dtype=np.int64)
        if self.classes_ is None:
            self.classes_ = np.arange(self.K, dtype=np.int64)

    @property
    def K(self) -> int:
        """Number of classes (2 for the binary formulation)."""
        return 2 if self.num_classes is None else int(self.num_classes)

    def __len__(self) -> int:
        return int(self.prediction_index.shape[0])

    def certified_accuracy(self, y_true, radii=(0, 1, 2, 5, 10, 20, 50, 100), bound=None):
        """Fraction of test points correctly predicted *and* certified at radius ≥ r, per r.

        ``y_true`` holds test labels in the user's labels (the values of ``classes_``); a
        label that is not a training class counts as a wrong prediction.
        """
        y_true = np.asarray(y_true)
        if y_true.ndim == 2 and y_true.shape[1] == 1:
            y_true = y_true[:, 0]
        if y_true.shape != (len(self),):
            raise NumbaflipInputError(
                f"y_true has shape {y_true.shape} but there are {len(self)} predictions; pass "
                "one test label per test point.")
        bound = bound or self.bounds[0]
        rad = self.radius[bound]
        correct = self.correct(y_true)
        return np.array([np.mean(correct & (rad >= r)) for r in radii])

    def correct(self, y_true) -> np.ndarray:
        """Boolean (m,): ``prediction == y_true`` in the user's labels (labels of another kind,
        e.g. strings against integers, are never equal)."""
        y_true = check_test_labels(y_true, len(self))
        try:
            return np.asarray(self.prediction == y_true, dtype=bool).reshape(len(self))
        except (TypeError, ValueError):
            return np.zeros(len(self), dtype=bool)

    def __repr__(self) -> str:
        m = len(self)
        parts = [f"CertifyResult(m={m}, n={self.n}, q={self.q}, "
                 f"{'binary' if self.num_classes is None else f'K={self.num_classes}'}"]
        for b, r in self.radius.items():
            parts.append(f", median radius_{b}={int(np.median(r)) if m else 0}")
        return "".join(parts) + ")"

    def to_dict(self, y_true=None) -> dict:
        """Provenance and one record per test point, JSON-safe: ``{"metadata", "points"}``.

        ``metadata`` is :attr:`metadata` (JSON-safe copy); keys it lacks are filled from the
        result's fields (``numbaflip_version``, ``q``, ``lam``, ``K``, ``formulation``,
        ``n_train``, ``n_test``, ``bounds``, ``precision``, ``classes``).  Each point is
        ``{"index", "prediction", ["label",] "radius_<bound>"…, "log_p_wrong"}`` with
        ``prediction`` (and ``label``, when ``y_true`` is given) in the user's labels and
        non-finite ``log_p_wrong`` as the string ``"-inf"``/``"nan"``.  This is the content of
        ``numbaflip certify --format json``; ``json.dumps(d, allow_nan=False)`` accepts it.
        """
        from ._version import __version__
        from .io import jsonable
        m = len(self)
        meta = {"numbaflip_version": __version__, "q": self.q, "lam": self.lam, "K": self.K,
                "formulation": "binary" if self.num_classes is None else "multiclass",
                "n_train": self.n, "n_test": m, "bounds": list(self.bounds),
                "precision": self.info.get("precision") if isinstance(self.info, dict)
                else None,
                "classes": np.asarray(self.classes_).tolist()}
        meta.update(self.metadata or {})
        labels = None if y_true is None else jsonable(check_test_labels(y_true, m))
        pred = jsonable(np.asarray(self.prediction))
        radii = {b: np.asarray(r, dtype=np.int64).tolist() for b, r in self.radius.items()}
        lpw = jsonable(np.asarray(self.log_p_wrong, dtype=np.float64))
        points = []
        for i in range(m):
            p = {"index": i, "prediction": pred[i]}
            if labels is not None:
                p["label"] = labels[i]
            for b, r in radii.items():
                p[f"radius_{b}"] = r[i]
            p["log_p_wrong"] = lpw[i]
            points.append(p)
        return {"metadata": jsonable(meta), "points": points}

    def to_frame(self, y_true=None):
        """A pandas DataFrame, one row per test point (index ``index``).

        Columns ``prediction`` (user's labels), ``label`` (when ``y_true`` is given),
        ``radius_<bound>`` (int64) and ``log_p_wrong`` (float64, with real −inf/NaN); the
        provenance of :meth:`to_dict` is in ``frame.attrs["metadata"]``.  Needs pandas.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "CertifyResult.to_frame needs pandas, which is not installed; install it with "
                "`pip install pandas` (or use CertifyResult.to_dict())") from None
        d = self.to_dict(y_true)
        cols = {"prediction": np.asarray(self.prediction)}
        if y_true is not None:
            cols["label"] = np.asarray(y_true).reshape(len(self))
        for b, r in self.radius.items():
            cols[f"radius_{b}"] = np.asarray(r, dtype=np.int64)
        cols["log_p_wrong"] = np.asarray(self.log_p_wrong, dtype=np.float64)
        frame = pd.DataFrame(cols, index=pd.RangeIndex(len(self), name="index"))
        frame.attrs["metadata"] = d["metadata"]
        return frame
