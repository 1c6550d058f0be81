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


def test_phase_timer_is_exclusive_and_restores(monkeypatch):
    import types

    import numbaflip._kernels.binary as ch
    orig = ch._binary_driver
    timer = bench.PhaseTimer()
    with bench.instrumented(timer):
        assert ch._binary_driver is not orig
    assert ch._binary_driver is orig

    # A fake clock instead of sleeping: the bookkeeping is checked exactly, no timing involved.
    clock = [0.0]

    def work(seconds):
        clock[0] += seconds

    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    inner = timer.wrap("inner", lambda: work(2.0))
    outer = timer.wrap("outer", lambda: (work(1.0), inner(), work(2.0)))
    outer()
    # outer's own time excludes the nested call; exclusive times add up to the total
    assert timer.seconds["inner"] == 2.0 and timer.seconds["outer"] == 3.0
    assert timer.calls["inner"] == 1 and timer.calls["outer"] == 1
    assert timer.seconds["inner"] + timer.seconds["outer"] == clock[0]
