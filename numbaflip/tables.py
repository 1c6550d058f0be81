"""Cache of tight-threshold tables (``.npz``), keyed by (q, K, n), extended on demand.

The tables hold L_r = log(1 − p_r), r = 0..r_max, from :func:`numbaflip.thresholds.log_thresholds`
(Lee et al. 2019; Rosenfeld et al. 2020 eq. 2; ``design/math.md`` §4): float64, rounded DOWN,
running minimum applied (non-increasing).  The thresholds do not depend on n; n is recorded
because a table is made for a training-set size (r never needs to exceed n), and any table whose
r_max covers the r a caller needs serves it, whatever its n.

File names
----------
``thresholds_K{K}_q{Q}_n{n}.npz`` where ``Q`` is the canonical decimal string of q
(:func:`numbaflip.thresholds.canonical_q_str`: ``"1e-4"`` and ``"0.0001"`` both give
``0.0001``; a non-decimal rational ``p/q`` is written ``p_over_q``), e.g.
``thresholds_K2_q0.3_n13007.npz``.  When no n is given the table's own r_max is used as n.

Contents (all checked on load; any mismatch, corruption, truncation or pickled-object file
means the file is ignored and the table recomputed — never a crash): ``log_thresholds``
(float64, length r_max + 1), ``q`` (canonical string), ``K``, ``n``, ``r_max``,
``format_version`` (:data:`FORMAT_VERSION`), ``rounding`` (``"down"``), ``method``
(``"float64"``, ``"auto"`` or ``"exact"``) and ``sha256`` (of the little-endian table bytes).
Loading uses ``np.load(..., allow_pickle=False)``.  Writes go to a temporary file in the target
directory followed by ``os.replace``, so readers and concurrent writers never see half a file.

Search order: the writable cache directory (:func:`numbaflip._config.table_dir`), then the
shipped tables: ``<repo>/precomputed`` (source checkout / editable install) and
``<sys.prefix>/share/numbaflip/precomputed`` (regular install).  New or extended tables are
written to the writable cache directory only.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import _config
from ._atomic import atomic_write
from . import thresholds as _thr
from .errors import NumbaflipInputError, NumbaflipWarning

__all__ = ["get_log_thresholds", "precompute", "precompute_main", "PAPER_SETTINGS", "default_r_max", "table_path", "search_dirs",
           "clear_memory_cache", "FORMAT_VERSION", "R_MAX_LOG_CAP"]

FORMAT_VERSION = 1
#: default precompute cap: tables stop at the first r with L_r below this (or at n).
R_MAX_LOG_CAP = -1.0e4
_METHOD_RANK = {"float64": 0, "auto": 1, "exact": 2}
_MIN_CHUNK = 64

# (canonical q, K, method) -> read-only array; only ever grows
_MEMORY: dict = {}


def clear_memory_cache() -> None:
    """Forget the tables held in memory (tests use this to force reading files)."""
    _MEMORY.clear()


def _q_file_token(canon: str) -> str:
    return canon.replace("/", "_over_")


def table_path(directory, q_str, K: int, n: int) -> Path:
    """Path of the table file for (q, K, n) in ``directory`` (see the module docstring)."""
    canon = _thr.canonical_q_str(q_str, K)
    return Path(directory) / f"thresholds_K{int(K)}_q{_q_file_token(canon)}_n{int(n)}.npz"


def search_dirs() -> list[Path]:
    """Directories searched for tables, in order: writable cache, repo ``precomputed/``,
    ``sys.prefix/share/numbaflip/precomputed``."""
    import numbaflip

    dirs = [Path(_config.table_dir())]
    dirs.append(Path(numbaflip.__file__).resolve().parent.parent / "precomputed")
    dirs.append(Path(sys.prefix) / "share" / "numbaflip" / "precomputed")
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr, dtype="<f8").tobytes()).hexdigest()


def _load_table(path: Path, canon: str, K: int):
    """(table, method, n) if ``path`` holds a valid table for (canon, K), else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            need = ("log_thresholds", "q", "K", "n", "r_max", "format_version", "rounding",
                    "method", "sha256")
            if any(key not in z.files for key in need):
                return None
            table = np.array(z["log_thresholds"])
            q = str(z["q"][()])
            k_file = int(z["K"][()])
            n = int(z["n"][()])
            r_max = int(z["r_max"][()])
            version = int(z["format_version"][()])
            rounding = str(z["rounding"][()])
            method = str(z["method"][()])
            digest = str(z["sha256"][()])
    except Exception:  # corrupted, truncated, pickled objects, wrong types: ignore the file
        return None
    if (version != FORMAT_VERSION or q != canon or k_file != K or rounding != "down"
            or method not in _METHOD_RANK or table.dtype != np.float64 or table.ndim != 1
            or r_max < 0 or table.shape[0] != r_max + 1 or n < 0):
        return None
    if digest != _digest(table):
        return None
    if not np.all(np.isfinite(table)) or np.any(np.diff(table) > 0):
        return None
    if not (math.log(0.5) - 1e-9 <= table[0] <= math.log(0.5)):
        return None
    # sanity: never below the trivial lower bound by much, never above log(1/2) (cheap check)
    return table, method, n


def _candidate_files(directory: Path, canon: str, K: int):
    pattern = f"thresholds_K{K}_q{_q_file_token(canon)}_n"
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    rx = re.compile(re.escape(pattern) + r"(\d+)\.npz$")
    return [directory / name for name in names if rx.match(name)]


def _find_on_disk(canon: str, K: int, r_needed: int, method: str):
    """Best valid table on disk for (canon, K) acceptable for ``method``: the first one
    (in search order) covering r_needed, else the longest one found."""
    best = None
    writable = Path(_config.table_dir())
    for directory in search_dirs():
        for path in _candidate_files(directory, canon, K):
            got = _load_table(path, canon, K)
            if got is None:
                if directory == writable:  # a broken cache file: remove it (best effort)
                    try:
                        path.unlink()
                    except OSError:
                        pass
                continue
            table, file_method, _ = got
            if _METHOD_RANK[file_method] < _METHOD_RANK[method]:
                continue
            if table.shape[0] - 1 >= r_needed:
                return table
            if best is None or table.shape[0] > best.shape[0]:
                best = table
    return best


def _write_table(directory, canon: str, K: int, n: int, table: np.ndarray, method: str):
    """Atomically write a table; returns the path, or None (with a warning) if not writable."""
    directory = Path(directory)
    path = table_path(directory, canon, K, n)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb", suffix=".tmp.npz") as fh:
            np.savez(fh, log_thresholds=np.ascontiguousarray(table, dtype=np.float64),
                     q=np.array(canon), K=np.int64(K), n=np.int64(n),
                     r_max=np.int64(table.shape[0] - 1),
                     format_version=np.int64(FORMAT_VERSION), rounding=np.array("down"),
                     method=np.array(method), sha256=np.array(_digest(table)))
    except OSError as exc:
        warnings.warn(f"could not write threshold table {path} ({exc}); it will be recomputed "
                      f"next time. Set numbaflip.config.table_dir or $NUMBAFLIP_TABLE_DIR to a "
                      f"writable directory to keep it.", NumbaflipWarning, stacklevel=3)
        return None
    return path


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise NumbaflipInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def get_log_thresholds(q_str, K: int, r_needed: int, *, n: int | None = None,
                       method: str = "auto") -> np.ndarray:
    """Thresholds L_r = log(1 − p_r) for r = 0..(at least) r_needed, rounded DOWN,
    non-increasing (Lee et al. 2019; math.md §4).

    Looks in memory, then on disk (see the module docstring), and otherwise computes with
    :func:`numbaflip.thresholds.log_thresholds` and caches the result.  A table shorter than
    ``r_needed`` is extended (recomputed to max(r_needed, 1.5 × its length), capped at ``n``
    when ``n >= r_needed``).  The returned array is read-only and may be longer than needed.
    """
    canon = _thr.canonical_q_str(q_str, K)
    K = int(K)
    r_needed = _check_int("r_needed", r_needed, 0)
    if n is not None:
        n = _check_int("n", n, 0)
    if method not in _METHOD_RANK:
        raise NumbaflipInputError(
            f"method={method!r} is not known; use 'auto', 'float64' or 'exact'")
    key = (canon, K, method)
    have = _MEMORY.get(key)
    if have is not None and have.shape[0] - 1 >= r_needed:
        return have
    table = _find_on_disk(canon, K, r_needed, method)
    if table is None or table.shape[0] - 1 < r_needed:
        old = 0 if table is None else table.shape[0] - 1
        if have is not None:
            old = max(old, have.shape[0] - 1)
        target = max(r_needed, int(1.5 * old), _MIN_CHUNK)
        if n is not None and n >= r_needed:
            target = min(target, n)
        table = _thr.log_thresholds(canon, K, target, method=method)
        _write_table(_config.table_dir(), canon, K, n if n is not None else target, table,
                     method)
    table = np.array(table, dtype=np.float64)
    table.flags.writeable = False
    if have is None or table.shape[0] > have.shape[0]:
        _MEMORY[key] = table
    return _MEMORY[key]


def default_r_max(q_str, K: int, n: int, method: str = "auto", log_cap: float = R_MAX_LOG_CAP):
    """The precompute cap: min(n, the first r with L_r < ``log_cap``) (default −10⁴).

    Rationale: a point is certified at radius r iff log(1 − p) < L_r.  Points whose bound is
    below −10⁴ are essentially never produced by the Chernoff bounds on the paper's data, and
    the table is extended on demand if one is.  Returns (r_max, table).
    """
    canon = _thr.canonical_q_str(q_str, K)
    n = _check_int("n", n, 0)
    r = min(n, 256)
    while True:
        table = _thr.log_thresholds(canon, K, r, method=method)
        hit = np.flatnonzero(table < log_cap)
        if hit.size:
            return int(hit[0]), table[: int(hit[0]) + 1]
        if r >= n:
            return n, table
        r = min(n, 2 * r)


def precompute(q_strs, Ks, ns, r_max: int | None = None, exact: bool = False,
               progress: bool = True, out_dir=None) -> list[Path]:
    """Compute and write threshold tables for every valid combination of ``q_strs`` × ``Ks`` ×
    ``ns`` (combinations with q >= (K−1)/K are skipped).

    ``r_max``: table length; None means :func:`default_r_max` (min(n, first r with
    L_r < −10⁴)); always capped at n.  ``exact``: use the exact-arithmetic path (slow:
    O(r_max²) big-integer work; sensible for r_max up to a few hundred) instead of "auto".
    ``out_dir``: where to write (default: the writable cache directory); use the repository's
    ``precomputed/`` to regenerate shipped tables.  ``progress``: tqdm bar on stderr.
    Returns the paths written.
    """
    method = "exact" if exact else "auto"
    out_dir = Path(out_dir) if out_dir is not None else Path(_config.table_dir())
    jobs = []
    for q in q_strs:
        for K in Ks:
            try:
                canon = _thr.canonical_q_str(q, K)
            except NumbaflipInputError:
                continue
            for n in ns:
                jobs.append((canon, int(K), _check_int("n", n, 1)))
    paths = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="threshold tables", unit="table", file=sys.stderr)
    try:
        for canon, K, n in jobs:
            if bar is not None:
                bar.set_postfix_str(f"K={K} q={canon} n={n}")
            if r_max is None and not exact:
                _, table = default_r_max(canon, K, n, method=method)
            else:
                rm = min(n, r_max) if r_max is not None else default_r_max(canon, K, n)[0]
                table = _thr.log_thresholds(canon, K, rm, method=method)
            path = _write_table(out_dir, canon, K, n, table, method)
            if path is not None:
                paths.append(path)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return paths


# ---------------------------------------------------------------------------------------------
# command line (scripts/precompute_thresholds.py and `numbaflip precompute`)
# ---------------------------------------------------------------------------------------------

#: The paper's settings (Rosenfeld et al. 2020, section 5): (K, n, q values).
PAPER_SETTINGS = [
    (2, 13007, ["0.3", "0.4", "0.45", "0.475"]),      # binary MNIST 1/7
    (2, 1800, ["1e-4", "1e-3", "0.01", "0.05"]),      # Dogfish
    (2, 25000, ["0.01", "0.025", "0.05", "0.1"]),     # IMDB
    (10, 60000, ["0.0125", "0.025", "0.05"]),         # full MNIST
    (10, 50000, ["0.012", "0.025", "0.1"]),           # CIFAR-10
]


def build_precompute_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="precompute_thresholds",
        description="Precompute tight label-flip threshold tables (.npz).")
    p.add_argument("-q", "--q", nargs="+", default=[], metavar="Q",
                   help="noise levels as decimal strings, e.g. 0.1 1e-4")
    p.add_argument("-K", "--K", nargs="+", type=int, default=[2], metavar="K",
                   help="numbers of classes (default 2)")
    p.add_argument("-n", "--n", nargs="+", type=int, default=[], metavar="N",
                   help="training-set sizes (tables stop at r_max <= n)")
    p.add_argument("--r-max", type=int, default=None,
                   help="table length (default: min(n, first r with L_r < -1e4))")
    p.add_argument("--exact", action="store_true",
                   help="exact rational arithmetic instead of the float64 kernel (slow)")
    p.add_argument("--paper", action="store_true",
                   help="the paper's settings (MNIST 1/7, Dogfish, IMDB, MNIST, CIFAR-10)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: the writable cache directory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def precompute_main(argv=None) -> int:
    """Command line of ``scripts/precompute_thresholds.py`` and ``numbaflip precompute``:
    ``-q Q.. -K K.. -n N..`` (all combinations), ``--paper``, ``--r-max``, ``--exact``,
    ``--out DIR``, ``--no-progress``.  Prints the files written; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `numbaflip precompute -- ...`
        argv = argv[1:]
    args = build_precompute_parser().parse_args(argv)
    jobs = []
    if args.paper:
        jobs += [(qs, [K], [n]) for K, n, qs in PAPER_SETTINGS]
    if args.q or args.n:
        if not (args.q and args.n):
            print("error: give both -q and -n (or --paper)", file=sys.stderr)
            return 2
        jobs.append((args.q, args.K, args.n))
    if not jobs:
        print("error: nothing to do; give -q ... -n ... or --paper", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    paths = []
    try:
        for qs, Ks, ns in jobs:
            paths += precompute(qs, Ks, ns, r_max=args.r_max, exact=args.exact,
                                progress=not args.no_progress, out_dir=args.out)
    except NumbaflipInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} tables ({total / 1e6:.2f} MB) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    for p in paths:
        print(p)
    return 0
