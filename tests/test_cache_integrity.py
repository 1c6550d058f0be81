"""Threshold cache as untrusted input (issue: over-certification from the cache).

A table read from disk may only make a radius smaller than the rigorous float64 path would,
unless its integrity rests on something a writer of the cache cannot forge: the HMAC under the
user's key (writable cache) or the manifest inside the package (shipped tables).  Each test is
named after what it broke; every forgery is first shown to raise a radius when trusted.
"""
import hashlib
import os
import shutil
import stat
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import numbaflip
from numbaflip import config as _config
from numbaflip.tight import cache as TB
from numbaflip.tight import precompute as PC
from numbaflip.tight import thresholds as T
from numbaflip.errors import NumbaflipInputError, NumbaflipWarning
from numbaflip.tight import tight_radius

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "precomputed"

# A small binary problem whose true tight radius at q = 0.15 is 5 (log_p_wrong ≈ −8.53 lies
# between L_6 ≈ −8.94 and L_5 ≈ −7.86); n = 60, so one table of r_max 60 serves it.
Q, K, N = "0.15", 2, 60
Y = np.r_[np.ones(50, dtype=np.int64), np.zeros(10, dtype=np.int64)]
A = np.zeros((1, N))
A[0, :50] = 0.82 / 50
TRUE_RADIUS = 5
FORGED_RADIUS = 10


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Writable cache and key file under tmp_path, no shipped tables, fresh memory cache."""
    cache = tmp_path / "cache"
    key = tmp_path / "config" / "numbaflip" / "cache.key"
    monkeypatch.setattr(_config.config, "table_dir", str(cache))
    monkeypatch.setattr(_config.config, "key_file", str(key))
    monkeypatch.setattr(TB, "search_dirs", lambda: [Path(_config.table_dir())])
    TB.clear_memory_cache()
    yield type("Env", (), {"cache": cache, "key": key, "tmp": tmp_path})
    TB.clear_memory_cache()
    _config.reset()


@pytest.fixture
def calls(monkeypatch):
    """Count the recomputations (numbaflip.tight.thresholds.log_thresholds)."""
    real = T.log_thresholds
    seen = []

    def counting(*a, **k):
        seen.append(a[:3])
        return real(*a, **k)
    monkeypatch.setattr(T, "log_thresholds", counting)
    return seen


def _members(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: np.array(z[k]) for k in z.files}


def _save(path, d):
    with open(path, "wb") as fh:
        np.savez(fh, **d)


def _ell():
    """log_p_wrong of the test problem (no table involved)."""
    res = numbaflip.certify_alpha(A, Y, q=Q, bounds=("kl",))
    return float(res.log_p_wrong[0])


def _forged_values():
    """The true table for (Q, K) up to N with L_6..L_10 raised just above ℓ: radius 10."""
    true = T.log_thresholds(Q, K, N)
    forged = true.copy()
    forged[: FORGED_RADIUS + 1] = np.maximum(forged[: FORGED_RADIUS + 1], _ell() + 1e-6)
    assert np.all(np.diff(forged) <= 0) and forged[0] == true[0]
    return forged


def _tight_with_table(monkeypatch, table):
    """The radius certify_alpha would give if ``table`` were trusted (the old behaviour)."""
    table = np.array(table, dtype=np.float64)
    table.flags.writeable = False
    with monkeypatch.context() as m:
        m.setattr(TB, "get_log_thresholds", lambda *a, **k: table)
        via_tight = int(tight_radius(np.array([_ell()]), Q, K, N)[0])
        via_certify = int(numbaflip.certify_alpha(A, Y, q=Q, bounds=("tight",)).radius["tight"][0])
    return via_tight, via_certify


def _v2_file(values, *, q=Q, k=K, n=N, method="auto", version=TB.FORMAT_VERSION,
             rounding="down", mac=""):
    return dict(log_thresholds=np.asarray(values, dtype=np.float64), q=np.array(q),
                K=np.int64(k), n=np.int64(n), r_max=np.int64(len(values) - 1),
                format_version=np.int64(version), rounding=np.array(rounding),
                method=np.array(method), hmac=np.array(mac))


def _encoding_of(d):
    return TB._encoding(int(d["format_version"]), str(d["q"]), int(d["K"]), int(d["n"]),
                        int(d["r_max"]), str(d["rounding"]), str(d["method"]),
                        d["log_thresholds"])


def _key_bytes(env):
    return env.key.read_bytes()


def _genuine(env, q=Q, k=K, n=N):
    """Have numbaflip compute and cache the table for (q, k, n); returns its path."""
    TB.get_log_thresholds(q, k, n, n=n)
    TB.clear_memory_cache()
    path = TB.table_path(env.cache, q, k, n)
    assert path.is_file()
    return path


# ---------------------------------------------------------------------------------------------
# positive control: the genuine cache is reused
# ---------------------------------------------------------------------------------------------


def test_genuine_mac_cache_is_reused_not_recomputed(env, calls):
    a = TB.get_log_thresholds(Q, K, N, n=N)
    assert len(calls) == 1
    TB.clear_memory_cache()
    b = TB.get_log_thresholds(Q, K, N, n=N)
    assert len(calls) == 1, "a genuine MAC'd table was recomputed instead of reused"
    assert np.array_equal(a, b)
    d = _members(TB.table_path(env.cache, Q, K, N))
    assert str(d["hmac"]) == TB._mac(_key_bytes(env), _encoding_of(d))


def test_key_created_private_on_first_use(env):
    assert not env.key.exists()
    TB.get_log_thresholds(Q, K, 5)
    st = os.lstat(env.key)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == TB.KEY_BYTES and st.st_uid == os.getuid()
    assert stat.S_IMODE(os.stat(env.key.parent).st_mode) == 0o700
    assert not [p for p in env.key.parent.iterdir() if p != env.key]  # no temp file left
    first = _key_bytes(env)
    TB.clear_memory_cache()
    TB.get_log_thresholds("0.2", K, 5)
    assert _key_bytes(env) == first  # reused, not replaced


# ---------------------------------------------------------------------------------------------
# (a) forged values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["v1_sha256_recomputed", "v2_sha256_in_hmac_field",
                                 "v2_hmac_under_attackers_key", "v2_empty_hmac",
                                 "v2_hmac_of_genuine_values"])
def test_forged_values_with_recomputed_digest_ignored(env, calls, monkeypatch, how):
    genuine = _genuine(env)
    forged = _forged_values()
    assert _tight_with_table(monkeypatch, forged) == (FORGED_RADIUS, FORGED_RADIUS)
    d = _v2_file(forged)
    if how == "v1_sha256_recomputed":  # the old format: the digest protected nothing
        d = {k: v for k, v in d.items() if k != "hmac"}
        d["format_version"] = np.int64(1)
        d["sha256"] = np.array(hashlib.sha256(forged.astype("<f8").tobytes()).hexdigest())
    elif how == "v2_sha256_in_hmac_field":
        d["hmac"] = np.array(hashlib.sha256(_encoding_of(d)).hexdigest())
    elif how == "v2_hmac_under_attackers_key":
        d["hmac"] = np.array(TB._mac(b"\x01" * 32, _encoding_of(d)))
    elif how == "v2_hmac_of_genuine_values":
        d["hmac"] = _members(genuine)["hmac"]
    _save(genuine, d)
    n_before = len(calls)
    got = TB.get_log_thresholds(Q, K, N, n=N)
    assert len(calls) == n_before + 1  # recomputed, not trusted
    assert np.array_equal(got[: N + 1], T.log_thresholds(Q, K, N))
    TB.clear_memory_cache()
    _save(genuine, d)  # forged again after the rewrite
    res = numbaflip.certify_alpha(A, Y, q=Q, bounds=("tight",))
    assert res.radius["tight"][0] == TRUE_RADIUS


# ---------------------------------------------------------------------------------------------
# (b) a genuine table re-keyed; metadata bound to the values
# ---------------------------------------------------------------------------------------------


def test_genuine_q04_table_renamed_and_rekeyed_as_q015_ignored(env, calls, monkeypatch):
    src = _genuine(env, q="0.4")
    d = _members(src)
    assert np.all(d["log_thresholds"][:N + 1] >= T.log_thresholds(Q, K, N))
    radius_if_trusted = _tight_with_table(monkeypatch, d["log_thresholds"])
    assert min(radius_if_trusted) > TRUE_RADIUS  # the re-keyed table would over-certify
    dst = TB.table_path(env.cache, Q, K, N)
    d["q"] = np.array(Q)  # MAC kept from the genuine 0.4 table
    _save(dst, d)
    src.unlink()
    n_before = len(calls)
    got = TB.get_log_thresholds(Q, K, N, n=N)
    assert len(calls) == n_before + 1
    assert np.array_equal(got[: N + 1], T.log_thresholds(Q, K, N))
    TB.clear_memory_cache()
    _save(dst, d)
    assert numbaflip.certify_alpha(A, Y, q=Q, bounds=("tight",)).radius["tight"][0] == TRUE_RADIUS


def test_genuine_table_renamed_without_rekeying_ignored(env, calls):
    src = _genuine(env, q="0.4")
    dst = TB.table_path(env.cache, Q, K, N)
    os.replace(src, dst)  # stored q stays 0.4
    n_before = len(calls)
    got = TB.get_log_thresholds(Q, K, N, n=N)
    assert len(calls) == n_before + 1
    assert np.array_equal(got[: N + 1], T.log_thresholds(Q, K, N))


@pytest.mark.parametrize("field,value", [("n", np.int64(70)), ("method", np.array("exact")),
                                         ("format_version", np.int64(3)),
                                         ("K", np.int64(3))])
def test_metadata_changed_under_genuine_mac_ignored(env, calls, field, value):
    path = _genuine(env)
    d = _members(path)
    d[field] = value
    # store it under the name its new metadata implies, so only the MAC can catch it
    q, k, n = str(d["q"]), int(d["K"]), int(d["n"])
    dst = TB.table_path(env.cache, q, k, n)
    _save(dst, d)
    if dst != path:
        path.unlink()
    n_before = len(calls)
    method = str(d["method"])
    TB.get_log_thresholds(q, k, N, n=n, method=method)
    assert len(calls) == n_before + 1


# ---------------------------------------------------------------------------------------------
# (c) swapped files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", [("0.4", 2), ("0.15", 3)])
def test_files_swapped_between_two_keys_ignored(env, calls, other):
    q2, k2 = other
    p1 = _genuine(env, q=Q, k=K)
    p2 = _genuine(env, q=q2, k=k2)
    b1, b2 = p1.read_bytes(), p2.read_bytes()
    p1.write_bytes(b2)
    p2.write_bytes(b1)
    n_before = len(calls)
    g1 = TB.get_log_thresholds(Q, K, N, n=N)
    g2 = TB.get_log_thresholds(q2, k2, N, n=N)
    assert len(calls) == n_before + 2
    assert np.array_equal(g1[: N + 1], T.log_thresholds(Q, K, N))
    assert np.array_equal(g2[: N + 1], T.log_thresholds(q2, k2, N))


# ---------------------------------------------------------------------------------------------
# (d) shipped tables: trusted only through the manifest
# ---------------------------------------------------------------------------------------------

SHIP_NAME = "thresholds_K2_q0.3_n13007.npz"


@pytest.fixture
def shipped_dir(env, monkeypatch):
    d = env.tmp / "shipped"
    d.mkdir()
    monkeypatch.setattr(TB, "search_dirs", lambda: [Path(_config.table_dir()), d])
    return d


def test_shipped_copy_trusted_through_manifest(shipped_dir, calls):
    shutil.copy(SHIPPED / SHIP_NAME, shipped_dir / SHIP_NAME)
    got = TB.get_log_thresholds("0.3", 2, 5000)
    assert calls == []  # served by the shipped copy
    assert np.array_equal(got, _members(SHIPPED / SHIP_NAME)["log_thresholds"])


@pytest.mark.parametrize("how", ["values_raised_sha256_recomputed", "values_raised_v2_format",
                                 "rekeyed_as_other_q"])
def test_tampered_shipped_table_ignored(shipped_dir, calls, how):
    d = _members(SHIPPED / SHIP_NAME)
    t = d["log_thresholds"].copy()
    if how == "values_raised_sha256_recomputed":
        t[5:] = np.maximum(t[5:] + 1.0, t[-1])
        t = np.minimum.accumulate(t)
        d["log_thresholds"] = t
        d["sha256"] = np.array(hashlib.sha256(t.astype("<f8").tobytes()).hexdigest())
        name = SHIP_NAME
        q, r = "0.3", 5000
    elif how == "values_raised_v2_format":
        t[5:] += 0.5
        d = _v2_file(np.minimum.accumulate(t), q="0.3", n=13007)
        d["hmac"] = np.array(hashlib.sha256(_encoding_of(d)).hexdigest())
        name = SHIP_NAME
        q, r = "0.3", 5000
    else:  # genuine q = 0.45 values presented as q = 0.3 (they are larger: over-certify)
        d = _members(SHIPPED / "thresholds_K2_q0.45_n13007.npz")
        assert np.all(d["log_thresholds"] >= T.log_thresholds("0.3", 2, 13007))
        d["q"] = np.array("0.3")
        name = SHIP_NAME
        q, r = "0.3", 300
    _save(shipped_dir / name, d)
    calls.clear()
    got = TB.get_log_thresholds(q, 2, r, n=13007)
    assert len(calls) == 1  # recomputed
    assert np.array_equal(got[: r + 1], T.log_thresholds(q, 2, r))


def test_every_shipped_file_listed_in_manifest_and_not_above_recomputation():
    files = sorted(SHIPPED.glob("thresholds_*.npz"))
    assert len(files) == 18
    manifest = TB._manifest()
    assert len(manifest) == 18
    for f in files:
        t = TB._read_table(f)
        assert t is not None and TB._in_manifest(t), f.name
        assert TB._well_formed(t, f.name, t.q, t.K)
        ref = T.log_thresholds(t.q, t.K, t.r_max, method=t.method)
        assert np.all(t.values <= ref), f.name


def test_manifest_regenerated_by_precompute_and_trusted(env, monkeypatch, calls):
    out = env.tmp / "ship"
    manifest = env.tmp / "manifest.json"
    assert PC.precompute_main(["-q", "0.2", "-K", "2", "-n", "50", "--out", str(out),
                               "--manifest", str(manifest), "--no-progress"]) == 0
    monkeypatch.setattr(TB, "search_dirs", lambda: [Path(_config.table_dir()), out])
    TB.clear_memory_cache()
    calls.clear()
    TB.get_log_thresholds("0.2", 2, 50, n=50)
    assert len(calls) == 1  # not in the package's manifest: a shipped dir needs a manifest
    monkeypatch.setattr(TB, "MANIFEST_FILE", manifest)
    TB.clear_memory_cache()
    shutil.rmtree(env.cache)
    calls.clear()
    TB.get_log_thresholds("0.2", 2, 50, n=50)
    assert calls == []  # listed in the regenerated manifest: trusted
    # --manifest-only lists what is there, and the help documents the option
    manifest2 = env.tmp / "manifest2.json"
    assert PC.precompute_main(["--manifest-only", "--out", str(out),
                               "--manifest", str(manifest2)]) == 0
    assert manifest2.read_text() == manifest.read_text()
    assert "--manifest" in PC.build_precompute_parser().format_help()
    assert PC.precompute_main(["--manifest-only", "--manifest", str(manifest2)]) == 2


def test_manifest_refuses_table_above_recomputation(env):
    out = env.tmp / "ship"
    out.mkdir()
    t = T.log_thresholds("0.2", 2, 40)
    t[3] = t[2]  # raised: would over-certify
    path = TB.table_path(out, "0.2", 2, 40)
    _save(path, _v2_file(t, q="0.2", n=40))
    manifest = env.tmp / "m.json"
    with pytest.raises(NumbaflipInputError, match="over-certify"):
        TB.write_manifest([path], manifest)
    assert not manifest.exists()


# ---------------------------------------------------------------------------------------------
# (e) unusable key: warning, cache untrusted, results still correct
# ---------------------------------------------------------------------------------------------


def _break_mode(env):
    os.chmod(env.key, 0o644)
    return "chmod 600"


def _break_symlink(env):
    real = env.key.with_name("real.key")
    os.replace(env.key, real)
    os.symlink(real, env.key)
    return "symbolic link"


def _break_short(env):
    env.key.write_bytes(_key_bytes(env)[:31])
    return "31 bytes"


def _break_long(env):
    env.key.write_bytes(_key_bytes(env) + b"x")
    return "33 bytes"


def _break_directory(env):
    env.key.unlink()
    env.key.mkdir()
    return "not a regular file"


@pytest.mark.parametrize("breaker", [_break_mode, _break_symlink, _break_short, _break_long,
                                     _break_directory])
def test_unusable_key_warns_and_cache_untrusted(env, calls, monkeypatch, breaker):
    path = _genuine(env)
    key = _key_bytes(env)
    # a forgery MAC'd under the (now exposed) key: trusted only if the key were accepted
    d = _v2_file(_forged_values())
    d["hmac"] = np.array(TB._mac(key, _encoding_of(d)))
    _save(path, d)
    before = path.read_bytes()
    match = breaker(env)
    n_before = len(calls)
    with pytest.warns(NumbaflipWarning, match=match) as rec:
        res = numbaflip.certify_alpha(A, Y, q=Q, bounds=("tight",))
    assert res.radius["tight"][0] == TRUE_RADIUS
    assert len(calls) > n_before  # computed, not taken from the cache
    assert path.read_bytes() == before  # nothing written without a usable key
    assert [p.name for p in env.cache.iterdir()] == [path.name]
    msgs = [str(w.message) for w in rec if "key file" in str(w.message)]
    assert len(msgs) == 1 and str(env.key) in msgs[0] and "Fix:" in msgs[0]


def test_unusable_key_warns_only_once(env):
    TB.get_log_thresholds(Q, K, 5)
    os.chmod(env.key, 0o640)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        TB.get_log_thresholds("0.2", K, 5)
        TB.get_log_thresholds("0.3", K, 5)
        TB.get_log_thresholds("0.35", 3, 5)
    assert len([w for w in rec if "key file" in str(w.message)]) == 1


def test_key_inside_table_dir_refused(env, calls):
    key = env.cache / "cache.key"
    _config.config.key_file = str(key)
    with pytest.warns(NumbaflipWarning, match="inside the threshold cache directory"):
        got = TB.get_log_thresholds(Q, K, 20, n=20)
    assert np.array_equal(got[:21], T.log_thresholds(Q, K, 20))
    assert not key.exists()
    assert not list(env.cache.glob("*.npz"))  # nothing cached without a usable key


def test_key_from_env_and_xdg(env, monkeypatch):
    _config.config.key_file = None
    monkeypatch.setenv("NUMBAFLIP_KEY_FILE", str(env.tmp / "k" / "env.key"))
    assert TB.key_path() == env.tmp / "k" / "env.key"
    monkeypatch.delenv("NUMBAFLIP_KEY_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(env.tmp / "xdg"))
    assert TB.key_path() == env.tmp / "xdg" / "numbaflip" / "cache.key"


def test_cache_from_another_key_recomputed_and_replaced(env, calls):
    path = _genuine(env)
    env.key.unlink()  # another machine / user: a different key
    n_before = len(calls)
    TB.get_log_thresholds(Q, K, N, n=N)
    assert len(calls) == n_before + 1
    d = _members(path)
    assert str(d["hmac"]) == TB._mac(_key_bytes(env), _encoding_of(d))


def test_precompute_without_usable_key_writes_unmacd_tables_not_trusted(env, calls):
    TB.get_log_thresholds(Q, K, 3)
    os.chmod(env.key, 0o604)
    with pytest.warns(NumbaflipWarning, match="chmod 600"):
        paths = PC.precompute(["0.2"], [2], [40], progress=False)
    assert str(_members(paths[0])["hmac"]) == ""
    TB.clear_memory_cache()
    os.chmod(env.key, 0o600)
    calls.clear()
    TB.get_log_thresholds("0.2", 2, 40, n=40)
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------------
# (f) file names
# ---------------------------------------------------------------------------------------------


def test_tiny_q_table_name_short_enough_to_write(env, calls):
    canon = T.canonical_q_str("1e-300", 2)
    assert len(canon) > 300
    a = TB.get_log_thresholds("1e-300", 2, 10, n=10)
    path = TB.table_path(env.cache, "1e-300", 2, 10)
    assert path.is_file() and len(path.name) < 80
    assert path.name == f"thresholds_K2_qh{hashlib.sha256(canon.encode()).hexdigest()[:32]}_n10.npz"
    assert str(_members(path)["q"]) == canon
    TB.clear_memory_cache()
    n_before = len(calls)
    b = TB.get_log_thresholds("1E-300", 2, 10, n=10)
    assert len(calls) == n_before and np.array_equal(a, b)


def test_hashed_name_collision_cannot_mislead(env, calls):
    # a genuine table for another tiny q stored under 1e-300's hashed name: q inside differs
    src = _genuine(env, q="2e-300", n=10)
    dst = TB.table_path(env.cache, "1e-300", 2, 10)
    assert src.name != dst.name
    os.replace(src, dst)
    n_before = len(calls)
    got = TB.get_log_thresholds("1e-300", 2, 10, n=10)
    assert len(calls) == n_before + 1
    assert np.array_equal(got[:11], T.log_thresholds("1e-300", 2, 10))


# ---------------------------------------------------------------------------------------------
# hostile files: never crash, never block, never follow links
# ---------------------------------------------------------------------------------------------


def _run_with_deadline(fn, seconds=60):
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised below
            box["error"] = exc
    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), "blocked on a hostile cache entry"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _spy_open(monkeypatch):
    opened = []
    real_open = os.open

    def spy(path, *a, **k):
        opened.append(os.fspath(path))
        return real_open(path, *a, **k)
    monkeypatch.setattr(os, "open", spy)
    return opened


def test_fifo_named_like_table_does_not_block(env, calls, monkeypatch):
    env.cache.mkdir(parents=True)
    fifo = TB.table_path(env.cache, Q, K, 99)
    os.mkfifo(fifo)
    opened = _spy_open(monkeypatch)
    got = _run_with_deadline(lambda: TB.get_log_thresholds(Q, K, 20, n=20))
    assert np.array_equal(got[:21], T.log_thresholds(Q, K, 20))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # left alone
    assert str(fifo) not in opened  # a non-regular file is never opened


def test_fifo_at_the_target_name_does_not_block(env, calls):
    env.cache.mkdir(parents=True)
    fifo = TB.table_path(env.cache, Q, K, 20)
    os.mkfifo(fifo)
    got = _run_with_deadline(lambda: TB.get_log_thresholds(Q, K, 20, n=20))
    assert np.array_equal(got[:21], T.log_thresholds(Q, K, 20))


def test_directory_named_like_table_ignored(env, calls):
    d = TB.table_path(env.cache, Q, K, 20)
    d.mkdir(parents=True)
    with pytest.warns(NumbaflipWarning, match="could not write"):
        got = TB.get_log_thresholds(Q, K, 20, n=20)
    assert np.array_equal(got[:21], T.log_thresholds(Q, K, 20))
    assert d.is_dir()


def test_symlink_in_cache_not_followed_for_reading_or_writing(env, calls):
    victim = env.tmp / "victim.txt"
    victim.write_text("precious")
    env.cache.mkdir(parents=True)
    link = TB.table_path(env.cache, Q, K, 20)
    os.symlink(victim, link)
    TB.get_log_thresholds(Q, K, 20, n=20)
    assert victim.read_text() == "precious"
    assert link.is_file() and not link.is_symlink()  # the link was replaced, not written through
    # a symlink to a genuine table elsewhere is not trusted either
    real = env.tmp / "elsewhere.npz"
    os.replace(link, real)
    os.symlink(real, link)
    TB.clear_memory_cache()
    n_before = len(calls)
    TB.get_log_thresholds(Q, K, 20, n=20)
    assert len(calls) == n_before + 1


def test_huge_file_not_read(env, calls, monkeypatch):
    env.cache.mkdir(parents=True)
    big = TB.table_path(env.cache, Q, K, 10 ** 9)
    with open(big, "wb") as fh:
        fh.truncate(TB.MAX_FILE_BYTES + 1)  # sparse
    opened = _spy_open(monkeypatch)
    got = TB.get_log_thresholds(Q, K, 20, n=20)
    assert np.array_equal(got[:21], T.log_thresholds(Q, K, 20))
    assert str(big) not in opened


def test_compressed_or_header_bomb_npz_ignored(env, calls):
    path = _genuine(env, n=20)
    d = _members(path)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **d)  # members must be stored, not deflated
    TB.clear_memory_cache()
    n_before = len(calls)
    TB.get_log_thresholds(Q, K, 20, n=20)
    assert len(calls) == n_before + 1
    # an .npy header claiming 10^12 float64 in a few bytes
    header = {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)}
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("log_thresholds.npy", buf.getvalue() + b"\0" * 64)
        for k, v in d.items():
            if k != "log_thresholds":
                b2 = __import__("io").BytesIO()
                np.save(b2, v)
                zf.writestr(k + ".npy", b2.getvalue())
    TB.clear_memory_cache()
    n_before = len(calls)
    TB.get_log_thresholds(Q, K, 20, n=20)
    assert len(calls) == n_before + 1


def test_garbage_names_and_members_ignored(env, calls):
    path = _genuine(env, n=20)
    d = _members(path)
    d["extra"] = np.arange(3)
    _save(path, d)
    TB.clear_memory_cache()
    n_before = len(calls)
    TB.get_log_thresholds(Q, K, 20, n=20)
    assert len(calls) == n_before + 1
    # a genuine table stored under another n's name is ignored too (name must match contents)
    other = TB.table_path(env.cache, Q, K, 21)
    os.replace(path, other)
    TB.clear_memory_cache()
    n_before = len(calls)
    TB.get_log_thresholds(Q, K, 20, n=20)
    assert len(calls) == n_before + 1


# ---------------------------------------------------------------------------------------------
# (g) end to end
# ---------------------------------------------------------------------------------------------


def test_forged_cache_does_not_raise_certify_alpha_radii(env, monkeypatch):
    clean = numbaflip.certify_alpha(A, Y, q=Q, bounds=("kl", "tight"))
    assert clean.radius["tight"][0] == TRUE_RADIUS
    forged = _forged_values()
    # the forgery WOULD raise the radius to 10 if its table were trusted
    assert _tight_with_table(monkeypatch, forged) == (FORGED_RADIUS, FORGED_RADIUS)
    kinds = []
    d = _v2_file(forged)
    d["hmac"] = np.array(hashlib.sha256(_encoding_of(d)).hexdigest())
    kinds.append(d)
    d1 = {k: v for k, v in _v2_file(forged).items() if k != "hmac"}
    d1["format_version"] = np.int64(1)
    d1["sha256"] = np.array(hashlib.sha256(forged.astype("<f8").tobytes()).hexdigest())
    kinds.append(d1)
    g = _members(TB.table_path(env.cache, Q, K, N))  # written by the clean run
    g04 = _v2_file(T.log_thresholds("0.4", 2, N), q="0.4")
    g04["hmac"] = np.array(TB._mac(_key_bytes(env), _encoding_of(g04)))
    g04["q"] = np.array(Q)  # genuine q = 0.4 table re-keyed as 0.15
    kinds.append(g04)
    for d in kinds:
        _save(TB.table_path(env.cache, Q, K, N), d)
        TB.clear_memory_cache()
        res = numbaflip.certify_alpha(A, Y, q=Q, bounds=("kl", "tight"))
        assert np.array_equal(res.radius["tight"], clean.radius["tight"])
        assert np.array_equal(res.radius["kl"], clean.radius["kl"])
        assert np.array_equal(res.prediction, clean.prediction)
    assert str(_members(TB.table_path(env.cache, Q, K, N))["hmac"]) == str(g["hmac"])
