"""Certified-accuracy plots in the style of the paper's Figure 1 (matplotlib, optional)."""
from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from ..errors import NumbaflipInputError
from .accuracy import accuracy_curve

__all__ = ["plot_certified_accuracy", "PlotResult", "PLOT_STYLES"]


#: How each kind of curve is drawn: line style, marker and the legend name used when a curve
#: has no ``"label"``.  Every bound has its own line style *and* marker, so the curves stay
#: apart in greyscale and where they overlap.
PLOT_STYLES = {
    "exact": dict(linestyle="-", marker="o", name="exact (deterministic rule)"),
    "tight": dict(linestyle="--", marker="s", name="tight bound"),
    "kl": dict(linestyle=":", marker="^", name="KL bound"),
    "certified": dict(linestyle=(0, (8, 2, 1, 2, 1, 2)), marker="D", name="certified"),
    "attack": dict(linestyle="-.", marker="x", name="attack (upper bound)", color="0.45"),
}
#: Other names accepted for ``"kind"``.
PLOT_KIND_ALIASES = {"upper": "attack", "smoothed": "attack"}
#: Clean accuracy: a thin horizontal reference line (dash-dot-dot), no marker.
CLEAN_STYLE = dict(linestyle=(0, (3, 1.5, 1, 1.5, 1, 1.5)), linewidth=1.0, alpha=0.8)
_MARKERS_PER_CURVE = 8


class PlotResult(NamedTuple):
    """What :func:`plot_certified_accuracy` returns."""
    figure: Any  #: the matplotlib Figure
    axes: Any    #: its (main) Axes
    paths: list  #: the files written (empty when ``path_stem`` is None)


def _plot_kind(c, i):
    kind = c.get("kind", "certified")
    kind = PLOT_KIND_ALIASES.get(kind, kind)
    if kind not in PLOT_STYLES:
        raise NumbaflipInputError(
            f"curve {i} has kind {c.get('kind')!r}; use one of "
            f"{', '.join(sorted(set(PLOT_STYLES) | set(PLOT_KIND_ALIASES)))}.")
    return kind


def plot_certified_accuracy(curves, path_stem=None, *, clean=None, title=None, r_max=None,
                            n_train=None) -> PlotResult:
    """Plot certified accuracy against the number of label flips, like the paper's Figure 1.

    ``curves``: list of dicts with ``"kind"``, ``"q"`` (one colour per q), optional ``"label"``
    (default: the kind's name and q), and either ``"r"`` and ``"accuracy"`` or ``"radius"``,
    ``"prediction"``, ``"y_true"``.  Each kind has its own line style and marker
    (:data:`PLOT_STYLES`): ``"exact"`` solid with circles, ``"tight"`` dashed with squares,
    ``"kl"`` dotted with triangles, ``"attack"`` (also ``"upper"``, ``"smoothed"``: empirical
    upper bounds) dash-dot grey with crosses, ``"certified"`` (a bound not named) long
    dash-dot-dot with diamonds.  ``clean``: dict q → clean accuracy, drawn as a thin
    horizontal reference line in the colour of that q and listed in the legend.  With
    ``n_train`` a top axis shows r as a percentage of the training set.

    Writes ``path_stem + ".png"`` and ``".svg"`` unless ``path_stem`` is None.  Returns a
    :class:`PlotResult` ``(figure, axes, paths)``; the figure is not attached to pyplot (no
    global state is touched), so it needs no closing.  Needs matplotlib
    (``pip install 'numbaflip[plot]'``).
    """
    try:
        # Figure directly (no pyplot): no global backend or figure state is touched.
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "plot_certified_accuracy needs matplotlib: pip install 'numbaflip[plot]'") from exc
    if not curves:
        raise NumbaflipInputError("plot_certified_accuracy needs at least one curve.")
    prepared = []
    for i, c in enumerate(curves):
        kind = _plot_kind(c, i)
        if "r" in c and "accuracy" in c:
            r, acc = np.asarray(c["r"]), np.asarray(c["accuracy"], dtype=float)
            if r.shape != acc.shape or r.ndim != 1:
                raise NumbaflipInputError(
                    f"curve {i}: 'r' and 'accuracy' must be 1-D of the same length.")
        elif all(k in c for k in ("radius", "prediction", "y_true")):
            r, acc = accuracy_curve(c["radius"], c["prediction"], c["y_true"], r_max)
        else:
            raise NumbaflipInputError(
                f"curve {i} needs 'r' and 'accuracy', or 'radius', 'prediction', 'y_true'.")
        prepared.append((c, kind, r, acc))
    qs = []
    for c, _, _, _ in prepared:
        if c.get("q") not in qs:
            qs.append(c.get("q"))
    for q in (clean or {}):
        if q not in qs:
            qs.append(q)
    cmap = matplotlib.colormaps["tab10"]
    palette = [cmap(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]   # no grey: that is the attack's
    colour = {q: palette[i % len(palette)] for i, q in enumerate(qs)}
    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xmax = 0
    kinds = list(PLOT_STYLES)
    for c, kind, r, acc in prepared:
        st = PLOT_STYLES[kind]
        q = c.get("q")
        name = st["name"] if q is None else f"{st['name']}, q = {q}"
        # a few markers per curve, staggered by kind so that coinciding curves stay visible
        every = max(1, len(r) // _MARKERS_PER_CURVE)
        ax.step(r, acc, where="post", linestyle=st["linestyle"], marker=st["marker"],
                markevery=(kinds.index(kind) * every // len(kinds), every), markersize=5,
                markerfacecolor="none" if st["marker"] != "x" else None,
                color=c.get("color", st.get("color", colour[q])),
                label=c.get("label", name), linewidth=1.6)
        xmax = max(xmax, int(r[-1]) if len(r) else 0)
    for q, v in (clean or {}).items():
        ax.axhline(v, color=colour[q], label="clean accuracy" if q is None
                   else f"clean accuracy, q = {q}", **CLEAN_STYLE)
    ax.set_xlim(0, max(1, xmax if r_max is None else r_max))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Number of label flips r")
    ax.set_ylabel("Certified accuracy")
    if n_train:
        sec = ax.secondary_xaxis("top", functions=(lambda x: 100.0 * x / n_train,
                                                   lambda p: p * n_train / 100.0))
        sec.set_xlabel("% of training set")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    paths = []
    if path_stem is not None:
        stem = os.fspath(path_stem)
        paths = [stem + ".png", stem + ".svg"]
        fig.savefig(paths[0], dpi=150)
        fig.savefig(paths[1])
    return PlotResult(fig, ax, paths)
