"""Threshold cache (numbaflip.tight.cache) and the tight radius (numbaflip.tight.radius)."""
import math
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

from numbaflip import config as _config
from numbaflip.tight import cache as TB
from numbaflip.tight import precompute as PC
from numbaflip.tight import thresholds as T
from numbaflip.errors import NumbaflipInputError, NumbaflipWarning
from numbaflip.tight import tight_radius

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh writable cache directory, no shipped tables, empty memory cache."""
    d = tmp_path / "cache"
    monkeypatch.setattr(_config.config, "table_dir", str(d))
    monkeypatch.setattr(_config.config, "key_file", str(tmp_path / "config" / "cache.key"))
    monkeypatch.setattr(TB, "search_dirs", lambda: [Path(_config.table_dir())])
    TB.clear_memory_cache()
    yield d
    TB.clear_memory_cache()


def _expected(q, K, r):
    return T.log_thresholds(q, K, r)


def _forbid_compute(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("table was recomputed")
    monkeypatch.setattr(T, "log_thresholds", boom)


def test_compute_write_reload(cache, monkeypatch):
    L = TB.get_log_thresholds("0.2", 2, 100, n=500)
    assert L.shape[0] >= 101 and not L.flags.writeable
    path = TB.table_path(cache, "0.2", 2, 500)
    assert path.exists()
    assert np.array_equal(L[:101], _expected("0.2", 2, 100))
    TB.clear_memory_cache()
    _forbid_compute(monkeypatch)
    again = TB.get_log_thresholds("2e-1", 2, 100)  # same q, other spelling: same file
    assert np.array_equal(again, L)


def test_file_contents(cache):
    TB.get_log_thresholds("1e-3", 3, 10, n=10)
    path = TB.table_path(cache, "0.001", 3, 10)
    assert path.name == "thresholds_K3_q0.001_n10.npz"
    with np.load(path, allow_pickle=False) as z:
        assert str(z["q"]) == "0.001" and int(z["K"]) == 3 and int(z["n"]) == 10
        assert int(z["r_max"]) == z["log_thresholds"].shape[0] - 1
        assert str(z["rounding"]) == "down" and str(z["method"]) == "auto"
        assert int(z["format_version"]) == TB.FORMAT_VERSION == 2
        assert len(str(z["hmac"])) == 64 and "sha256" not in z.files


def _good_table_then(cache, q, K, n, r, damage):
    TB.get_log_thresholds(q, K, r, n=n)
    TB.clear_memory_cache()
    path = TB.table_path(cache, q, K, n)
    damage(path)
    got = TB.get_log_thresholds(q, K, r, n=n)
    assert np.array_equal(got[: r + 1], _expected(q, K, r))
    TB.clear_memory_cache()
    # the file left behind is a valid (MAC-verified) table again
    assert TB._load_table(path, T.canonical_q_str(q, K), K, key=TB._cache_key(),
                          writable=True) is not None


def test_corrupted_file(cache):
    def damage(p):
        p.write_bytes(b"this is not a zip file" * 10)
    _good_table_then(cache, "0.15", 2, 300, 80, damage)


def test_truncated_file(cache):
    def damage(p):
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    _good_table_then(cache, "0.15", 2, 300, 80, damage)


def test_wrong_parameters_inside(cache):
    def damage(p):
        # a valid table for another q, stored under this file name
        other = T.log_thresholds("0.35", 2, 300)
        np.savez(p, log_thresholds=other, q=np.array("0.35"), K=np.int64(2), n=np.int64(300),
                 r_max=np.int64(300), format_version=np.int64(TB.FORMAT_VERSION),
                 rounding=np.array("down"), method=np.array("auto"),
                 hmac=np.array("0" * 64))
    _good_table_then(cache, "0.15", 2, 300, 80, damage)


@pytest.mark.parametrize("field,value", [("rounding", np.array("nearest")),
                                         ("format_version", np.int64(999)),
                                         ("K", np.int64(3)), ("r_max", np.int64(7))])
def test_wrong_metadata(cache, field, value):
    def damage(p):
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        d[field] = value
        np.savez(p, **d)
    _good_table_then(cache, "0.15", 2, 300, 80, damage)


def test_tampered_values(cache):
    def damage(p):
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        t = d["log_thresholds"].copy()
        t[5:] += 1.0  # would over-certify; the checksum no longer matches
        d["log_thresholds"] = t
        np.savez(p, **d)
    _good_table_then(cache, "0.15", 2, 300, 80, damage)


def test_pickled_object_file(cache):
    def damage(p):
        obj = np.empty(3, dtype=object)
        obj[:] = [1, "x", None]
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        d["log_thresholds"] = obj  # needs pickle to load
        with open(p, "wb") as fh:
            np.savez(fh, **d)
    _good_table_then(cache, "0.15", 2, 300, 80, damage)


def _worker(args):
    d, q, key_file = args
    _config.config.table_dir = d
    _config.config.key_file = key_file
    TB.search_dirs = lambda: [Path(d)]
    TB.clear_memory_cache()
    return TB.get_log_thresholds(q, 2, 2000, n=2000)[:2001].copy()


def test_two_processes_write_at_once(cache):
    ctx = mp.get_context("fork" if hasattr(os, "fork") else "spawn")
    with ctx.Pool(2) as pool:
        key_file = _config.config.key_file
        a, b = pool.map(_worker, [(str(cache), "0.27", key_file), (str(cache), "0.27", key_file)])
    ref = _expected("0.27", 2, 2000)
    assert np.array_equal(a, ref) and np.array_equal(b, ref)
    files = list(cache.glob("*.npz"))
    assert [f.name for f in files] == ["thresholds_K2_q0.27_n2000.npz"]  # no temp files left
    assert not list(cache.glob("*.tmp*"))
    TB.clear_memory_cache()
    assert np.array_equal(TB.get_log_thresholds("0.27", 2, 2000)[:2001], ref)


def test_larger_n_serves_smaller_n(cache, monkeypatch):
    PC.precompute(["0.22"], [2], [400], progress=False)
    TB.clear_memory_cache()
    _forbid_compute(monkeypatch)
    L = TB.get_log_thresholds("0.22", 2, 150, n=150)
    assert L.shape[0] >= 151


def test_extension_on_demand(cache):
    a = TB.get_log_thresholds("0.33", 2, 70, n=10000)
    assert a.shape[0] - 1 >= 70
    b = TB.get_log_thresholds("0.33", 2, 1000, n=10000)
    assert b.shape[0] - 1 >= 1000
    assert np.array_equal(b[: a.shape[0]], a)
    TB.clear_memory_cache()
    with np.load(TB.table_path(cache, "0.33", 2, 10000), allow_pickle=False) as z:
        assert int(z["r_max"]) >= 1000


def test_exact_request_not_served_by_float_table(cache):
    TB.get_log_thresholds("0.2", 3, 20, n=20)
    TB.clear_memory_cache()
    L = TB.get_log_thresholds("0.2", 3, 20, n=20, method="exact")
    assert np.array_equal(L[:21], np.minimum.accumulate(T.log_thresholds_exact("0.2", 3, 20)))


def test_unwritable_cache_warns(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setattr(_config.config, "table_dir", str(blocker / "sub"))
    monkeypatch.setattr(_config.config, "key_file", str(tmp_path / "config" / "cache.key"))
    monkeypatch.setattr(TB, "search_dirs", lambda: [Path(_config.table_dir())])
    TB.clear_memory_cache()
    with pytest.warns(NumbaflipWarning):
        L = TB.get_log_thresholds("0.2", 2, 10)
    assert np.array_equal(L[:11], _expected("0.2", 2, 10))
    TB.clear_memory_cache()


def test_shipped_tables_found(tmp_path, monkeypatch):
    shipped = REPO / "precomputed"
    assert (shipped / "thresholds_K2_q0.3_n13007.npz").is_file()
    monkeypatch.setattr(_config.config, "table_dir", str(tmp_path / "empty"))
    monkeypatch.setattr(_config.config, "key_file", str(tmp_path / "config" / "cache.key"))
    TB.clear_memory_cache()
    _forbid_compute(monkeypatch)
    L = TB.get_log_thresholds("0.3", 2, 5000)
    assert L.shape[0] > 5000
    TB.clear_memory_cache()


def test_search_dirs_order(monkeypatch, tmp_path):
    monkeypatch.setattr(_config.config, "table_dir", str(tmp_path))
    dirs = TB.search_dirs()
    assert dirs[0] == tmp_path and dirs[1] == REPO / "precomputed"


def test_precompute_default_cap(cache):
    paths = PC.precompute(["0.0125"], [10], [60000], progress=False)
    with np.load(paths[0], allow_pickle=False) as z:
        t = z["log_thresholds"]
        assert t[-1] < TB.R_MAX_LOG_CAP <= t[-2]
        assert int(z["n"]) == 60000
    # invalid combinations (q >= (K-1)/K) are skipped
    assert PC.precompute(["0.6"], [2], [10], progress=False) == []


def test_precompute_script_importable(cache):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "precompute_thresholds", REPO / "scripts" / "precompute_thresholds.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # must not run anything
    out = cache / "out"
    assert mod.main(["-q", "0.2", "1e-2", "-K", "2", "3", "-n", "50", "--out", str(out),
                     "--no-progress"]) == 0
    assert len(list(out.glob("*.npz"))) == 4
    assert mod.main([]) == 2


# ---------------------------------------------------------------------------------------------
# tight_radius
# ---------------------------------------------------------------------------------------------


def test_tight_radius_hand_made(cache):
    L = TB.get_log_thresholds("0.01", 2, 10)
    n = 50
    ell = np.array([0.0, math.log(0.5), L[0], np.nextafter(L[0], -np.inf), L[1],
                    np.nextafter(L[1], -np.inf), (L[3] + L[4]) / 2, -np.inf, -1e9])
    got = tight_radius(ell, "0.01", 2, n)
    assert got.dtype == np.int64
    assert got.tolist() == [-1, -1, -1, 0, 0, 1, 3, n, n]


def test_tight_radius_cap_and_shapes(cache):
    got = tight_radius(np.array([[-100.0, -5.0], [-np.inf, 1.0]]), "0.01", 2, 2)
    assert got.shape == (2, 2)
    assert got.tolist() == [[2, 0], [2, -1]]
    assert tight_radius(np.array([-5.0, -0.1]), "0.01", 2, 0).tolist() == [0, -1]
    assert tight_radius(np.array([]), "0.3", 2, 10).shape == (0,)


def test_tight_radius_matches_table_scan(cache):
    rng = np.random.default_rng(1)
    for q, K, n in [("0.3", 2, 3000), ("0.0125", 10, 800), ("0.2", 3, 400)]:
        L = T.log_thresholds(q, K, n)
        ell = np.concatenate([rng.uniform(L[-1] * 1.2, 0.5, 300), L[rng.integers(0, n, 20)]])
        got = tight_radius(ell, q, K, n)
        for e, g in zip(ell, got):
            ok = np.flatnonzero(~(e < L))
            expect = n if ok.size == 0 else int(ok[0]) - 1
            assert g == expect
        # soundness against the exact thresholds for small r
        ex = T.log_thresholds_exact(q, K, 30)
        for e, g in zip(ell, got):
            if 0 <= g <= 30:
                assert np.all(e < np.nextafter(ex[: g + 1], np.inf))


def test_tight_radius_fetches_only_what_is_needed(cache):
    tight_radius(np.array([-3.0, -0.9]), "0.4", 2, 100000)
    with np.load(TB.table_path(cache, "0.4", 2, 100000), allow_pickle=False) as z:
        assert int(z["r_max"]) <= 512


def test_tight_radius_rejects_nan(cache):
    with pytest.raises(NumbaflipInputError):
        tight_radius(np.array([np.nan]), "0.1", 2, 10)
    with pytest.raises(NumbaflipInputError):
        tight_radius(np.array([-1.0]), "0.1", 2, -3)
