"""`numbaflip certify --out` never clobbers: symlinks, FIFOs, devices, stdout, inputs, bad dirs.

Every test runs with a guard that fails it if anything is renamed, unlinked or created by
``tempfile.mkstemp`` outside pytest's ``tmp_path``: a regression cannot replace /dev/null or
/dev/stdout on the machine running the suite (the suite may run as root).
"""
import csv
import importlib
import os
import stat
import tempfile
import time

import numpy as np
import pytest

import numbaflip.io as nio
from numbaflip.io._atomic import plan_output
from numbaflip.cli import main

certify_module = importlib.import_module("numbaflip.certify")  # the module, not the function


@pytest.fixture
def guard(tmp_path, monkeypatch):
    root = os.path.realpath(tmp_path)

    def inside(p):
        return os.path.realpath(os.path.dirname(os.path.abspath(os.fspath(p)))).startswith(root)

    def wrap(name, orig, *pos):
        def f(*args, **kw):
            for i in pos:
                if i < len(args) and not inside(args[i]):
                    raise AssertionError(f"os.{name}({args!r}) outside tmp_path")
            return orig(*args, **kw)
        return f

    monkeypatch.setattr(os, "replace", wrap("replace", os.replace, 0, 1))
    monkeypatch.setattr(os, "rename", wrap("rename", os.rename, 0, 1))
    monkeypatch.setattr(os, "unlink", wrap("unlink", os.unlink, 0))
    orig_mkstemp = tempfile.mkstemp

    def mkstemp(*args, **kw):
        d = kw.get("dir")
        if d is not None and not os.path.realpath(d).startswith(root):
            raise AssertionError(f"mkstemp in {d!r}, outside tmp_path")
        return orig_mkstemp(*args, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return tmp_path


@pytest.fixture
def files(guard):
    d = guard
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=40) > 0).astype(int)
    T = rng.normal(size=(6, 3))
    yt = (T[:, 0] > 0).astype(int)
    np.save(d / "train.npy", np.column_stack([X, y]))
    np.save(d / "test.npy", np.column_stack([T, yt]))
    return d, ["certify", "--train", str(d / "train.npy"), "--test", str(d / "test.npy"),
               "--q", "0.1", "--no-progress"]


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if the CLI gets as far as reading data or certifying."""
    def boom(*a, **k):
        raise AssertionError("computation started although the output is unusable")
    monkeypatch.setattr(certify_module, "certify", boom)
    monkeypatch.setattr(nio, "open_table", boom, raising=False)
    monkeypatch.setattr(nio, "load_table", boom)


def _csv_rows(text):
    return list(csv.reader(text.splitlines()))


def _one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("numbaflip: error:"), err
    assert "Traceback" not in err
    return lines[0]


def test_out_through_symlink_keeps_the_symlink(files):
    d, base = files
    real = d / "real.csv"
    real.write_text("old\n")
    link = d / "link.csv"
    link.symlink_to(real)
    assert main(base + ["--out", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    rows = _csv_rows(real.read_text())
    assert rows[0][:2] == ["index", "prediction"] and len(rows) == 7
    assert sorted(os.listdir(d)) == ["link.csv", "real.csv", "test.npy", "train.npy"]


def test_out_dangling_symlink_writes_its_target(files):
    d, base = files
    (d / "sub").mkdir()
    link = d / "link.csv"
    link.symlink_to(d / "sub" / "new.csv")
    assert main(base + ["--out", str(link)]) == 0
    assert link.is_symlink()
    assert _csv_rows((d / "sub" / "new.csv").read_text())[0][0] == "index"


def test_out_fifo_is_streamed_not_replaced(files):
    d, base = files
    fifo = d / "pipe.csv"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so opening to write won't block
    try:
        assert main(base + ["--out", str(fifo)]) == 0
        data = os.read(rfd, 1 << 20).decode()
    finally:
        os.close(rfd)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    rows = _csv_rows(data)
    assert rows[0][:3] == ["index", "prediction", "label"] and len(rows) == 7


def test_out_device_through_symlink_is_not_replaced(files):
    d, base = files
    link = d / "null.csv"
    link.symlink_to("/dev/null")
    before = os.stat("/dev/null")
    assert main(base + ["--out", str(link)]) == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert link.is_symlink()
    assert sorted(os.listdir(d)) == ["null.csv", "test.npy", "train.npy"]


def test_dev_stdout_is_planned_as_a_stream_never_a_rename():
    # Only the plan is checked (nothing is written): /dev/stdout must never be renamed over.
    assert plan_output("/dev/stdout").mode == "stream"
    assert plan_output("-").mode == "stdout"


def test_out_dash_writes_only_the_table_to_stdout(files, capsys):
    d, base = files
    assert main(base + ["--out", "-"]) == 0
    cap = capsys.readouterr()
    rows = _csv_rows(cap.out)
    assert rows[0][:3] == ["index", "prediction", "label"] and len(rows) == 7
    assert "certified accuracy" in cap.err  # the summary goes to stderr, not into the table
    assert sorted(os.listdir(d)) == ["test.npy", "train.npy"]


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link"])
def test_out_that_is_an_input_is_refused(files, capsys, monkeypatch, how):
    d, base = files
    monkeypatch.setattr(certify_module, "certify",
                        lambda *a, **k: pytest.fail("certify ran although --out is an input"))
    before = {p: (d / p).read_bytes() for p in ("train.npy", "test.npy")}
    if how == "same path":
        out = d / "train.npy"
    elif how == "symlink":
        out = d / "out.npy.csv"
        out.symlink_to(d / "test.npy")
    else:
        out = d / "out.csv"
        os.link(d / "train.npy", out)
    assert main(base + ["--out", str(out)]) == 2
    assert "same file as the input" in _one_error_line(capsys.readouterr().err)
    assert {p: (d / p).read_bytes() for p in before} == before


def test_missing_output_directory_fails_before_computing(files, capsys, no_compute):
    d, base = files
    t0 = time.perf_counter()
    assert main(base + ["--out", str(d / "nodir" / "out.csv")]) == 2
    assert time.perf_counter() - t0 < 0.5
    line = _one_error_line(capsys.readouterr().err)
    assert "does not exist" in line and "nodir" in line


def test_unwritable_output_directory_fails_before_computing(files, capsys, no_compute,
                                                            monkeypatch):
    d, base = files
    ro = d / "ro"
    ro.mkdir()
    real_access = os.access
    # root may write anywhere, so the permission answer is simulated for this directory
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if os.fspath(p) == str(ro)
                        else real_access(p, mode, **k))
    assert main(base + ["--out", str(ro / "out.csv")]) == 2
    assert "not writable" in _one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_unwritable_output_directory_real_permissions(files, capsys, no_compute):
    d, base = files
    ro = d / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(base + ["--out", str(ro / "out.csv")]) == 2
    finally:
        ro.chmod(0o700)
    assert "not writable" in _one_error_line(capsys.readouterr().err)


def test_out_directory_is_refused(files, capsys, no_compute):
    d, base = files
    assert main(base + ["--out", str(d)]) == 2
    assert "is a directory" in _one_error_line(capsys.readouterr().err)


def test_bad_input_leaves_existing_output_untouched(files, capsys):
    d, base = files
    out = d / "out.csv"
    out.write_text("keep me\n")
    assert main(base[:5] + ["--q", "0.9", "--no-progress", "--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err)
    assert out.read_text() == "keep me\n"
    assert sorted(os.listdir(d)) == ["out.csv", "test.npy", "train.npy"]
