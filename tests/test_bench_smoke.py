"""Smoke test of scripts/bench.py: `--quick` on tiny sizes writes the Markdown table.

Not a timing test (no speed is asserted).  Runs bench.main() in-process; the per-size workers
and the first-call measurement are subprocesses that load the kernels from the default Numba
cache (warm once any other test has certified something), so this takes ~5–10 s.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "scripts"))
import bench  # noqa: E402


def test_bench_quick_writes_table(tmp_path, capsys):
    out = tmp_path / "bench.md"
    rc = bench.main(["--quick", "--sizes", "a,b", "--qs", "0.01", "--ref-points", "10",
                     "--first-call", "warm", "--out", str(out)])
    assert rc == 0
    text = out.read_text()
    assert text.startswith("# numbaflip benchmark")
    # main table: header + one row per (size, q), with the ratio columns
    assert "| size | K | n | k | m | q | kl+tight | ref kl+tight | × |" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| a |") or ln.startswith("| b |")]
    assert len(rows) >= 2
    assert "## Peak memory" in text and "## Import and first call" in text
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [s["size"] for s in data["sizes"]] == ["a", "b"]
    for s in data["sizes"]:
        for run in s["runs"]:
            # reference and numbaflip agree on the checked subsample
            assert all(v == 0 for v in run["agree"].values()), run["agree"]
            assert run["kl_tight"] > 0 and run["ref"]["kl_tight"] > 0


def test_phase_timer_is_exclusive_and_restores():
    import numbaflip.chernoff as ch
    orig = ch._binary_driver
    timer = bench.PhaseTimer()
    with bench.instrumented(timer):
        assert ch._binary_driver is not orig
    assert ch._binary_driver is orig

    import time
    inner = timer.wrap("inner", lambda: time.sleep(0.02))
    outer = timer.wrap("outer", lambda: (time.sleep(0.02), inner()))
    t0 = time.perf_counter()
    outer()
    wall = time.perf_counter() - t0
    # each sleeps ≥ 20 ms itself; exclusive times add up to the wall time (no double count)
    assert timer.seconds["inner"] >= 0.02 and timer.seconds["outer"] >= 0.02
    assert abs(timer.seconds["outer"] + timer.seconds["inner"] - wall) < 0.005
