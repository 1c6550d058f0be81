"""Report numbers on a hand-checked fixture; plot files are written."""
import numpy as np
import pytest

from numbaflip.errors import NumbaflipInputError
from numbaflip.report import (accuracy_curve, accuracy_table, certified_accuracy, clean_accuracy,
                              plot_certified_accuracy, read_results_csv, report_from_csv)

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


def test_plot_files(tmp_path):
    pytest.importorskip("matplotlib")
    curves = [{"label": "q=0.1 kl", "q": 0.1, "kind": "certified", "radius": RAD,
               "prediction": PRED, "y_true": TRUE},
              {"label": "q=0.1 exact", "q": 0.1, "kind": "exact", "radius": RAD + 2,
               "prediction": PRED, "y_true": TRUE},
              {"label": "q=0.1 attack", "q": 0.1, "kind": "attack", "r": [0, 5, 12],
               "accuracy": [0.8, 0.6, 0.2]}]
    paths = plot_certified_accuracy(curves, str(tmp_path / "fig"), clean={0.1: 0.8},
                                    title="toy", n_train=100)
    for path in paths:
        assert (tmp_path / path.split("/")[-1]).stat().st_size > 1000
