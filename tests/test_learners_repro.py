"""scripts/_common.py's comparison per learner: every run is a real certify call, and the
best-of table takes the maximum per radius and names the setting that reached it."""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import _common  # noqa: E402

import numbaflip  # noqa: E402
from numbaflip.learners import KNN  # noqa: E402


def _problem(K, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(160, 3))
    H = rng.normal(size=(30, 3))
    w = rng.normal(size=3)
    if K is None:
        return X, (X @ w > 0).astype(np.int64), H, (H @ w > 0).astype(np.int64)
    W = rng.normal(size=(3, K))
    return X, np.argmax(X @ W, 1), H, np.argmax(H @ W, 1)


def test_learner_grid_runs_are_certify_calls_and_best_table_is_the_max(tmp_path):
    for K in (None, 3):
        X, y, H, yt = _problem(K)
        radii = (0, 1, 3, 10)
        grid = _common.learner_grid(X, y, H, yt, ks=(5, 21, 999), lam_factors=(1.0, 100.0),
                                    qs=(0.05,), radii=radii, num_classes=K, log=None)
        runs = grid["runs"]
        assert {r["family"] for r in runs} == {"ridge exact", "ridge tight", "kNN exact",
                                               "kNN tight"}
        assert not any(r["setting"] == "k = 999" for r in runs)   # k > n is skipped
        knn = next(r for r in runs if r["setting"] == "k = 21" and r["q"] == 0.05)
        ref = numbaflip.certify(X, y, H, q=0.05, learner=KNN(21), bounds=("tight",),
                                num_classes=K, progress=False)
        assert np.array_equal(knn["radius"], ref.radius["tight"])
        assert np.allclose(knn["acc"], ref.certified_accuracy(yt, radii, bound="tight"))
        table = _common.learner_best_table(grid, title="t")
        assert "Best-of summary, not a classifier" in table
        all_row = next(line for line in table.splitlines() if line.startswith("| **all**"))
        for i, cell in enumerate(all_row.strip("| ").split(" | ")[1:]):
            top = max(r["acc"][i] for r in runs)
            assert cell == "0" if top == 0 else cell.startswith(f"{top:.4f} (")
        text, paths = _common.learner_section(grid, title="tiny", r_max=12,
                                              path_stem=str(tmp_path / f"p{K}"), log=None)
        assert "every run" in text and "best per radius" in text
        assert all(os.path.getsize(p) > 1000 for p in paths)
