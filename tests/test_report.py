"""Report numbers on a hand-checked fixture; the plot's artists (lines, styles, labels, legend)."""
import numpy as np
import pytest

from numbaflip.errors import NumbaflipInputError
from numbaflip.report import (PLOT_STYLES, accuracy_curve, accuracy_table, certified_accuracy,
                              clean_accuracy, plot_certified_accuracy, read_results_csv,
                              report_from_csv)

# 5 test points: correct = [T, T, F, T, T]; radii = [-1, 0, 5, 3, 10]
PRED = np.array([1, 0, 1, 1, 0])
TRUE = np.array([1, 0, 0, 1, 0])
RAD = np.array([-1, 0, 5, 3, 10])


def test_certified_accuracy_by_hand():
    acc = certified_accuracy(RAD, PRED, TRUE, [0, 1, 3, 4, 10, 11])
    # r=0: points 1,3,4 (point 0 has radius -1, point 2 is wrong) -> 3/5
    assert np.allclose(acc, [0.6, 0.4, 0.4, 0.2, 0.2, 0.0])
    assert clean_accuracy(PRED, TRUE) == 0.8
    r, a = accuracy_curve(RAD, PRED, TRUE, r_max=11)
    assert np.allclose(a[[0, 1, 3, 4, 10, 11]], acc)


def test_table_layout_and_bold():
    rows = [{"q": "(undefended)", "accuracy": [0.99, 0.5], "upper": True},
            {"q": 0.1, "bound": "kl", "radius": RAD, "prediction": PRED, "y_true": TRUE},
            {"q": 0.2, "bound": "kl", "accuracy": [0.6, 0.45]}]
    t = accuracy_table(rows, [1, 4], title="Toy")
    lines = t.splitlines()
    assert lines[0] == "**Toy**"
    assert lines[2] == "| Noise q ↓ | Bound | 1 | 4 |"
    assert "| (undefended) |  | (.9900) | (.5000) |" in t
    assert "| 0.1 | kl | .4000 | .2000 |" in t
    assert "| 0.2 | kl | **.6000** | **.4500** |" in t


def test_csv_report(tmp_path):
    p = tmp_path / "res.csv"
    p.write_text("index,prediction,label,radius_kl,radius_exact,log_p_wrong\n"
                 + "".join(f"{i},{PRED[i]},{TRUE[i]},{RAD[i]},{RAD[i] + 2},-1.5\n"
                           for i in range(5)))
    d = read_results_csv(p)
    assert list(d["radius"]) == ["kl", "exact"]
    assert np.array_equal(d["radius"]["kl"], RAD)
    txt = report_from_csv(p, [0, 3], q="0.1")
    assert "clean accuracy .8000" in txt
    assert "| 0.1 | kl | .6000 | **.4000** |" in txt      # tie at r = 3: both bold
    assert "| 0.1 | exact | **.8000** | **.4000** |" in txt
    q = tmp_path / "nolabel.csv"
    q.write_text("index,prediction,radius_kl,log_p_wrong\n0,1,2,-3\n")
    with pytest.raises(NumbaflipInputError, match="label"):
        report_from_csv(q, [0])


def _plot_curves():
    return [{"q": 0.1, "kind": "exact", "radius": RAD + 2, "prediction": PRED, "y_true": TRUE},
            {"q": 0.1, "kind": "tight", "radius": RAD + 1, "prediction": PRED, "y_true": TRUE},
            {"q": 0.1, "kind": "kl", "radius": RAD, "prediction": PRED, "y_true": TRUE},
            {"q": 0.1, "kind": "attack", "label": "attack on ridge", "r": [0, 5, 12],
             "accuracy": [0.8, 0.6, 0.2]}]


@pytest.fixture
def plot(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    return plot_certified_accuracy(_plot_curves(), tmp_path / "fig", clean={0.1: 0.8},
                                   title="toy", n_train=100)


def _lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def test_plot_returns_figure_and_writes_files(plot, tmp_path):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    fig, ax, paths = plot
    assert isinstance(fig, Figure) and isinstance(ax, Axes) and ax.figure is fig
    assert paths == [str(tmp_path / "fig.png"), str(tmp_path / "fig.svg")]
    with open(paths[0], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in open(paths[1], encoding="utf-8").read()


def test_plot_no_files_without_stem(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    out = plot_certified_accuracy(_plot_curves()[:1])
    assert out.paths == [] and list(tmp_path.iterdir()) == []
    assert [ln.get_label() for ln in out.axes.get_lines()] == ["exact (deterministic rule), q = 0.1"]


def test_plot_lines_labels_and_styles(plot):
    _, ax, _ = plot
    lines = _lines(ax)
    want = {"exact": "exact (deterministic rule), q = 0.1", "tight": "tight bound, q = 0.1",
            "kl": "KL bound, q = 0.1", "attack": "attack on ridge"}
    assert set(lines) == set(want.values()) | {"clean accuracy, q = 0.1"}
    bound_lines = {k: lines[v] for k, v in want.items()}
    # each bound has its own line style and marker
    assert {k: ln.get_linestyle() for k, ln in bound_lines.items()} == {
        "exact": "-", "tight": "--", "kl": ":", "attack": "-."}
    markers = [ln.get_marker() for ln in bound_lines.values()]
    assert len(set(markers)) == 4 and "None" not in markers and None not in markers
    # one colour for q = 0.1; the attack is grey
    from matplotlib.colors import to_rgba
    c = {k: to_rgba(ln.get_color()) for k, ln in bound_lines.items()}
    assert c["exact"] == c["tight"] == c["kl"] != c["attack"]
    assert c["attack"] == to_rgba("0.45")
    # the curves are drawn as post steps of the certified-accuracy curve
    r, acc = accuracy_curve(RAD, PRED, TRUE)
    np.testing.assert_array_equal(bound_lines["kl"].get_xdata(), r)
    np.testing.assert_allclose(bound_lines["kl"].get_ydata(), acc)
    assert bound_lines["kl"].get_drawstyle() == "steps-post"
    np.testing.assert_allclose(bound_lines["attack"].get_ydata(), [0.8, 0.6, 0.2])
    # clean accuracy: a horizontal reference line at 0.8, without markers
    clean = lines["clean accuracy, q = 0.1"]
    assert np.all(np.asarray(clean.get_ydata()) == 0.8)
    assert clean.get_marker() in ("None", "", None)
    assert to_rgba(clean.get_color()) == c["kl"]


def test_plot_axes_and_legend(plot):
    _, ax, _ = plot
    assert ax.get_xlabel() == "Number of label flips r"
    assert ax.get_ylabel() == "Certified accuracy"
    assert ax.get_title() == "toy"
    assert ax.get_ylim() == (0.0, 1.02)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "exact (deterministic rule), q = 0.1", "tight bound, q = 0.1", "KL bound, q = 0.1",
        "attack on ridge", "clean accuracy, q = 0.1"]
    # legend handles carry the same styles as the curves, so the entries are distinguishable
    handles = legend.legend_handles if hasattr(legend, "legend_handles") else legend.legendHandles
    assert [h.get_linestyle() for h in handles[:4]] == ["-", "--", ":", "-."]
    # n_train: a top axis in percent of the training set
    tops = [a for a in ax.child_axes if a.get_xlabel() == "% of training set"]
    assert len(tops) == 1


def test_plot_styles_table_and_errors():
    pytest.importorskip("matplotlib")
    styles = [repr(s["linestyle"]) for s in PLOT_STYLES.values()]
    markers = [s["marker"] for s in PLOT_STYLES.values()]
    assert len(set(styles)) == len(styles) and len(set(markers)) == len(markers)
    with pytest.raises(NumbaflipInputError, match="kind"):
        plot_certified_accuracy([{"kind": "nope", "r": [0, 1], "accuracy": [1, 0]}])
    with pytest.raises(NumbaflipInputError, match="at least one"):
        plot_certified_accuracy([])
    # aliases of the attack kind draw like the attack
    out = plot_certified_accuracy([{"kind": "upper", "r": [0, 1], "accuracy": [1, 0]}])
    assert out.axes.get_lines()[0].get_linestyle() == "-."


def test_text_labels_are_compared_as_labels(tmp_path):
    names = np.array(["cat", "dog"])
    p, t = names[PRED], names[TRUE]
    assert clean_accuracy(p, t) == clean_accuracy(PRED, TRUE) == 0.8
    np.testing.assert_array_equal(certified_accuracy(RAD, p, t, [0, 3, 6]),
                                  certified_accuracy(RAD, PRED, TRUE, [0, 3, 6]))
    with pytest.raises(NumbaflipInputError, match="same labels"):
        clean_accuracy(p, TRUE)
    # a results CSV written with text labels reads back as text and reports the same numbers
    path = tmp_path / "r.csv"
    with open(path, "w") as fh:
        fh.write("index,prediction,label,radius_kl\n")
        for i in range(len(PRED)):
            fh.write(f"{i},{p[i]},{t[i]},{RAD[i]}\n")
    d = read_results_csv(path)
    assert d["prediction"].tolist() == p.tolist() and d["label"].tolist() == t.tolist()
    assert report_from_csv(path, [0, 3]).splitlines()[0] == "5 test points, clean accuracy .8000"
