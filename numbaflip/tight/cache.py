"""Cache of tight-threshold tables (``.npz``), keyed by (q, K, n), extended on demand.

The tables hold L_r = log(1 − p_r), r = 0..r_max, from :func:`numbaflip.tight.thresholds.log_thresholds`
(Lee et al. 2019; Rosenfeld et al. 2020 eq. 2; ``docs/math.md`` §4): float64, rounded DOWN,
running minimum applied (non-increasing).  The thresholds do not depend on n; n is recorded
because a table is made for a training-set size (r never needs to exceed n), and any table whose
r_max covers the r a caller needs serves it, whatever its n.

Trust model
-----------
A cache directory is untrusted input: shared between users, copied between machines, possibly
edited by someone who has read this code.  A table with raised values would over-certify, so a
table read from disk is used only if its integrity rests on something a writer of the cache
cannot forge; everything else is ignored and recomputed (float64 kernel / exact path), never
trusted, never a crash.

* **Writable cache** (:func:`numbaflip.config.table_dir`): every table carries ``hmac``, an
  HMAC-SHA256 of its *canonical encoding* (below) under a 32-byte random key kept **outside**
  the cache, in the key file :func:`key_path` (``numbaflip.config.config.key_file``, else
  ``$NUMBAFLIP_KEY_FILE``, else ``$XDG_CONFIG_HOME/numbaflip/cache.key``, default
  ``~/.config/numbaflip/cache.key``).  The key is created on first use (``O_CREAT|O_EXCL``,
  mode 0600, its directory 0700, published with an atomic hard link so no process ever reads
  half a key) and used only if it is a regular file (symlinks are not followed), owned by the
  current user, with no group/other permission bits, exactly 32 bytes long, and not inside the
  table directory.  Otherwise one :class:`~numbaflip.errors.NumbaflipWarning` says what is wrong
  and how to fix it, no cache file is trusted by MAC and nothing is written to the cache: results
  are unchanged, only recomputed.
* **Shipped tables** (``<repo>/precomputed`` and ``<sys.prefix>/share/numbaflip/precomputed``)
  carry no MAC; the package ships ``numbaflip/precomputed_manifest.json`` with the metadata and
  the sha256 of the canonical encoding of every shipped file, and a table is trusted only if its
  encoding's digest is listed there (a digest in the manifest vouches for the exact values and
  metadata, so such a table is also accepted from the writable cache).  Before a table enters
  the manifest (:func:`write_manifest`) it is checked against a fresh recomputation: stored
  values must be ≤ the recomputed ones elementwise.

Canonical encoding (what the HMAC and the manifest digest cover): the ASCII magic
``numbaflip-threshold-table\\0``, then for each field in the order ``format_version``, ``q``
(canonical string), ``K``, ``n``, ``r_max``, ``rounding``, ``method``, ``log_thresholds``: the
field name in ASCII, its length as 8-byte little-endian unsigned, and its bytes (integers as
decimal ASCII, strings as UTF-8, the table as little-endian float64).  Every field is
length-prefixed, so no two different tables share an encoding; the metadata is bound to the
values, so a genuine table re-keyed under another q, K or n does not verify.

File names
----------
``thresholds_K{K}_q{Q}_n{n}.npz`` where ``Q`` is the canonical decimal string of q
(:func:`numbaflip.tight.thresholds.canonical_q_str`: ``"1e-4"`` and ``"0.0001"`` both give
``0.0001``; a non-decimal rational ``p/q`` is written ``p_over_q``), e.g.
``thresholds_K2_q0.3_n13007.npz``.  A token longer than 40 characters (q = 1e-300 has 302) is
replaced by ``h`` + the first 32 hex digits of the sha256 of the canonical string
(``thresholds_K2_qh<32 hex>_n10.npz``); the full canonical q is inside the file and in the
encoding, so a collision cannot mislead.  When no n is given the table's own r_max is used as
n.  A file whose name is not the one its contents imply is ignored.

Contents (format version :data:`FORMAT_VERSION` = 2): ``log_thresholds`` (float64, length
r_max + 1), ``q`` (canonical string), ``K``, ``n``, ``r_max``, ``format_version``, ``rounding``
(``"down"``), ``method`` (``"float64"``, ``"auto"`` or ``"exact"``) and ``hmac`` (hex; empty when
it was written without a usable key).  Version-1 files (a plain sha256 of the values, which
protected nothing) fail verification and are recomputed, unless the manifest lists them (the
shipped tables are version-1 files vouched for by the manifest).

Reading never blocks and never trusts the file system: only regular files are opened (no
symlinks: ``O_NOFOLLOW``; FIFOs and devices are skipped; ``O_NONBLOCK`` against a swap after the
check), files above :data:`MAX_FILE_BYTES` are not read, the zip members must be stored
(uncompressed) ``.npy`` arrays of the expected names whose headers fit the member sizes, and
``np.load(..., allow_pickle=False)`` parses the bytes already read, so what is verified is what
is used.  Writes go to a temporary file in the target directory followed by ``os.replace``
(:func:`numbaflip.io._atomic.atomic_write`), so readers and concurrent writers never see half a
file and a symlink at the target is replaced, not followed.  Untrusted files are left alone (a
shared cache may hold other users' tables); a recomputed table replaces the file of its name.

Search order: the writable cache directory, then the shipped tables: ``<repo>/precomputed``
(source checkout / editable install) and ``<sys.prefix>/share/numbaflip/precomputed`` (regular
install).  New or extended tables are written to the writable cache directory only.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
import os
import re
import stat
import struct
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import NumbaflipInputError, NumbaflipWarning
from ..io._atomic import atomic_write
from . import thresholds as _thr

__all__ = ["get_log_thresholds", "default_r_max", "table_path", "search_dirs",
           "clear_memory_cache", "key_path", "write_manifest", "FORMAT_VERSION", "R_MAX_LOG_CAP",
           "KEY_BYTES", "MAX_FILE_BYTES", "MANIFEST_FILE"]

FORMAT_VERSION = 2
#: default precompute cap: tables stop at the first r with L_r below this (or at n).
R_MAX_LOG_CAP = -1.0e4
#: length of the cache key in bytes (HMAC-SHA256 key).
KEY_BYTES = 32
#: table files larger than this are not read (the paper's largest table is about 110 kB).
MAX_FILE_BYTES = 64 * 2 ** 20
#: the manifest of the shipped tables (inside the package).
MANIFEST_FILE = Path(__file__).resolve().parent.parent / "precomputed_manifest.json"
_METHOD_RANK = {"float64": 0, "auto": 1, "exact": 2}
_MIN_CHUNK = 64
_Q_TOKEN_MAX = 40
_MAGIC = b"numbaflip-threshold-table\0"
_FIELDS = ("log_thresholds", "q", "K", "n", "r_max", "format_version", "rounding", "method")
_MEMBERS = frozenset(_FIELDS) | {"hmac", "sha256"}  # sha256: version-1 files
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# (canonical q, K, method) -> read-only array; only ever grows
_MEMORY: dict = {}
# warnings already given (each problem is reported once per process)
_WARNED: set = set()
# parsed manifest: {sha256 of the canonical encoding: entry}; None = not read yet
_MANIFEST: dict | None = None


def clear_memory_cache() -> None:
    """Forget the tables held in memory, the parsed manifest and which warnings were given
    (tests use this to force reading files)."""
    global _MANIFEST
    _MEMORY.clear()
    _WARNED.clear()
    _MANIFEST = None


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, NumbaflipWarning, stacklevel=4)


def _q_file_token(canon: str) -> str:
    token = canon.replace("/", "_over_")
    if len(token) > _Q_TOKEN_MAX:
        token = "h" + hashlib.sha256(canon.encode("utf-8")).hexdigest()[:32]
    return token


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


# ---------------------------------------------------------------------------------------------
# the cache key
# ---------------------------------------------------------------------------------------------


def key_path() -> Path:
    """The cache key file: ``config.key_file``, else ``$NUMBAFLIP_KEY_FILE``, else
    ``$XDG_CONFIG_HOME/numbaflip/cache.key`` (default ``~/.config/numbaflip/cache.key``)."""
    path = _config.config.key_file or os.environ.get("NUMBAFLIP_KEY_FILE")
    if not path:
        base = (os.environ.get("XDG_CONFIG_HOME")
                or os.path.join(os.path.expanduser("~"), ".config"))
        path = os.path.join(base, "numbaflip", "cache.key")
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _inside(path: Path, directory: Path) -> bool:
    real_path = os.path.join(os.path.realpath(path.parent), path.name)
    real_dir = os.path.realpath(directory)
    try:
        return os.path.commonpath([real_path, real_dir]) == real_dir
    except ValueError:  # different drives
        return False


def _create_key(path: Path) -> None:
    """Create a new random key at ``path`` unless one exists (atomic: the key appears complete
    or not at all; a concurrent creator wins and its key is used)."""
    parent = path.parent
    os.makedirs(parent, mode=0o700, exist_ok=True)
    tmp = parent / f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
    try:
        try:
            data = os.urandom(KEY_BYTES)
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic; fails if the key exists
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: create in place
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
                         0o600)
            try:
                with open(tmp, "rb") as fh:
                    os.write(fd, fh.read())
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _untrusted(path: Path, what: str, fix: str) -> None:
    _warn_once(f"numbaflip: the threshold-cache key file {path} {what}; the cache is not "
               f"trusted: cached tables are ignored and new ones are not cached (results are "
               f"unchanged, only recomputed). Fix: {fix}")


def _cache_key() -> bytes | None:
    """The key for the writable cache's MACs, or None (after a warning) if it is unusable."""
    path = key_path()
    table_dir = Path(_config.table_dir())
    if _inside(path, table_dir):
        _untrusted(path, f"lies inside the threshold cache directory {table_dir}, where anyone "
                         f"who can write the cache can read or replace it",
                   "set numbaflip.config.config.key_file or $NUMBAFLIP_KEY_FILE to a path "
                   "outside the cache directory (default ~/.config/numbaflip/cache.key)")
        return None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            _create_key(path)
            st = os.lstat(path)
        except OSError as exc:
            _untrusted(path, f"could not be created ({exc.strerror or exc})",
                       f"make {path.parent} writable, or set $NUMBAFLIP_KEY_FILE to a "
                       f"writable location outside the cache")
            return None
    except OSError as exc:
        _untrusted(path, f"cannot be examined ({exc.strerror or exc})",
                   "check the path and its permissions, or set $NUMBAFLIP_KEY_FILE")
        return None
    if stat.S_ISLNK(st.st_mode):
        _untrusted(path, "is a symbolic link (numbaflip does not follow links for its key)",
                   f"remove the link (rm {path}); a new key is created on next use")
        return None
    if not stat.S_ISREG(st.st_mode):
        _untrusted(path, "is not a regular file",
                   f"remove it (it must be a 32-byte file numbaflip creates), or set "
                   f"$NUMBAFLIP_KEY_FILE to another path")
        return None
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        _untrusted(path, f"cannot be opened ({exc.strerror or exc})",
                   f"chmod 600 {path}, or remove it to have a new key created")
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            _untrusted(path, "is not a regular file",
                       f"remove it, or set $NUMBAFLIP_KEY_FILE to another path")
            return None
        if hasattr(os, "getuid"):
            if st.st_uid != os.getuid():
                _untrusted(path, f"is owned by uid {st.st_uid}, not by you (uid {os.getuid()})",
                           f"remove it (rm {path}) so that a key of your own is created, or "
                           f"set $NUMBAFLIP_KEY_FILE to a file you own")
                return None
            if st.st_mode & 0o077:
                _untrusted(path, f"has permissions {oct(stat.S_IMODE(st.st_mode))} (group or "
                                 f"others may read or write it)",
                           f"chmod 600 {path}; if others may have read it, delete it instead "
                           f"(rm {path}) and a new key is created")
                return None
        if st.st_size != KEY_BYTES:
            _untrusted(path, f"has {st.st_size} bytes, expected {KEY_BYTES}",
                       f"delete it (rm {path}); a new random key is created on next use")
            return None
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        _untrusted(path, f"could be read only partly ({len(key)} of {KEY_BYTES} bytes)",
                   f"delete it (rm {path}); a new random key is created on next use")
        return None
    return key


# ---------------------------------------------------------------------------------------------
# canonical encoding, MAC, manifest
# ---------------------------------------------------------------------------------------------


def _encoding(format_version: int, q: str, K: int, n: int, r_max: int, rounding: str,
              method: str, values) -> bytes:
    """The canonical encoding of a table (module docstring): length-prefixed fields."""
    parts = [_MAGIC]
    fields = (("format_version", str(int(format_version))), ("q", q), ("K", str(int(K))),
              ("n", str(int(n))), ("r_max", str(int(r_max))), ("rounding", rounding),
              ("method", method))
    for name, text in fields:
        data = text.encode("utf-8")
        parts += [name.encode("ascii"), struct.pack("<Q", len(data)), data]
    data = np.ascontiguousarray(values, dtype="<f8").tobytes()
    parts += [b"log_thresholds", struct.pack("<Q", len(data)), data]
    return b"".join(parts)


def _mac(key: bytes, encoding: bytes) -> str:
    return hmac.new(key, encoding, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Table:
    values: np.ndarray
    q: str
    K: int
    n: int
    r_max: int
    format_version: int
    rounding: str
    method: str
    mac: str

    def encoding(self) -> bytes:
        return _encoding(self.format_version, self.q, self.K, self.n, self.r_max, self.rounding,
                         self.method, self.values)

    def entry(self, name: str) -> dict:
        """This table's manifest entry."""
        return {"file": name, "q": self.q, "K": self.K, "n": self.n, "r_max": self.r_max,
                "format_version": self.format_version, "rounding": self.rounding,
                "method": self.method,
                "sha256": hashlib.sha256(self.encoding()).hexdigest()}


def _manifest() -> dict:
    """{sha256 of the canonical encoding: entry} of the shipped tables (empty if the manifest
    is missing; a damaged manifest is reported once and trusts nothing)."""
    global _MANIFEST
    if _MANIFEST is not None:
        return _MANIFEST
    out = {}
    try:
        with open(MANIFEST_FILE, "rb") as fh:
            doc = json.loads(fh.read(MAX_FILE_BYTES).decode("utf-8"))
        for entry in doc["tables"]:
            digest = entry["sha256"]
            if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
                raise ValueError(f"bad sha256 {digest!r}")
            out[digest] = entry
    except FileNotFoundError:
        out = {}
    except Exception as exc:  # damaged manifest: trust no shipped table
        _warn_once(f"numbaflip: the manifest of shipped threshold tables {MANIFEST_FILE} is "
                   f"damaged ({exc}); shipped tables are ignored and recomputed. Fix: "
                   f"reinstall numbaflip, or regenerate it with `numbaflip precompute --paper "
                   f"--out precomputed --manifest {MANIFEST_FILE}`")
        out = {}
    _MANIFEST = out
    return out


def _in_manifest(t: _Table) -> bool:
    entry = _manifest().get(hashlib.sha256(t.encoding()).hexdigest())
    if entry is None:
        return False
    try:  # the digest binds the metadata already; this only guards against a sloppy manifest
        return (entry["q"] == t.q and int(entry["K"]) == t.K and int(entry["n"]) == t.n
                and int(entry["r_max"]) == t.r_max and entry["method"] == t.method
                and entry["rounding"] == t.rounding
                and int(entry["format_version"]) == t.format_version)
    except (KeyError, TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# reading a (possibly hostile) file
# ---------------------------------------------------------------------------------------------


def _read_file_bytes(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a symlink) of at most
    :data:`MAX_FILE_BYTES`, else None.  Never blocks, never follows a link."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return None
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)  # the file actually opened (it may have been swapped)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return None
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        return None
    return b"".join(chunks)


def _parse_npz(data: bytes) -> dict | None:
    """The arrays of an ``.npz`` held in ``data`` if it has the shape of a table file: stored
    (uncompressed) members with the expected names, plain (non-object) dtypes whose headers fit
    the member sizes.  None otherwise; never raises."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > len(_MEMBERS):
                return None
            seen = set()
            for info in infos:
                name = info.filename
                if (not name.endswith(".npy") or name[:-4] not in _MEMBERS or name in seen
                        or info.compress_type != zipfile.ZIP_STORED
                        or info.file_size != info.compress_size
                        or info.file_size > len(data)):
                    return None
                seen.add(name)
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        return None
                    if dtype.hasobject or len(shape) > 1:
                        return None
                    count = math.prod(shape)
                    if count * dtype.itemsize > info.file_size:
                        return None
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {key: np.array(z[key]) for key in z.files}
    except Exception:  # corrupted, truncated, pickled objects, wrong types: not a table
        return None


def _scalar(d: dict, key: str, kinds: str):
    a = d.get(key)
    if a is None or a.ndim != 0 or a.dtype.kind not in kinds:
        raise ValueError(key)
    return a[()]


def _parse_table(d: dict | None) -> _Table | None:
    """A :class:`_Table` if ``d`` has every field with the right type, else None."""
    if d is None or any(key not in d for key in _FIELDS):
        return None
    try:
        values = d["log_thresholds"]
        if values.dtype != np.float64 or values.ndim != 1:
            return None
        mac = str(_scalar(d, "hmac", "U")) if "hmac" in d else ""
        return _Table(values=np.ascontiguousarray(values, dtype=np.float64),
                      q=str(_scalar(d, "q", "U")), K=int(_scalar(d, "K", "iu")),
                      n=int(_scalar(d, "n", "iu")), r_max=int(_scalar(d, "r_max", "iu")),
                      format_version=int(_scalar(d, "format_version", "iu")),
                      rounding=str(_scalar(d, "rounding", "U")),
                      method=str(_scalar(d, "method", "U")), mac=mac)
    except (ValueError, TypeError, OverflowError):
        return None


def _read_table(path: Path) -> _Table | None:
    """The table in ``path`` as stored (NOT verified), or None if it is not one."""
    data = _read_file_bytes(path)
    return None if data is None else _parse_table(_parse_npz(data))


def _well_formed(t: _Table, name: str, canon: str, K: int) -> bool:
    """Metadata and values consistent with a threshold table for (canon, K) stored under
    ``name`` (necessary, not sufficient: says nothing about who wrote it)."""
    if (t.q != canon or t.K != K or t.rounding != "down" or t.method not in _METHOD_RANK
            or t.r_max < 0 or t.values.shape[0] != t.r_max + 1 or t.n < 0):
        return False
    if name != table_path(".", canon, K, t.n).name:
        return False
    v = t.values
    if not np.all(np.isfinite(v)) or np.any(np.diff(v) > 0):
        return False
    return math.log(0.5) - 1e-9 <= v[0] <= math.log(0.5)


def _load_table(path: Path, canon: str, K: int, *, key: bytes | None, writable: bool):
    """(table, method, n) if ``path`` holds a table for (canon, K) that verifies — by its HMAC
    under ``key`` (writable cache only) or by the manifest of shipped tables — else None."""
    t = _read_table(path)
    if t is None or not _well_formed(t, path.name, canon, K):
        return None
    trusted = _in_manifest(t)
    if not trusted and writable and key is not None and t.format_version == FORMAT_VERSION:
        trusted = bool(t.mac) and hmac.compare_digest(_mac(key, t.encoding()), t.mac)
    if not trusted:
        return None
    return t.values, t.method, t.n


def _candidate_files(directory: Path, canon: str, K: int):
    pattern = f"thresholds_K{K}_q{_q_file_token(canon)}_n"
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    rx = re.compile(re.escape(pattern) + r"(\d+)\.npz$")
    return [directory / name for name in sorted(names) if rx.match(name)]


def _find_on_disk(canon: str, K: int, r_needed: int, method: str):
    """Best verified table on disk for (canon, K) acceptable for ``method``: the first one
    (in search order) covering r_needed, else the longest one found.  Files that do not
    verify are ignored (and left alone)."""
    best = None
    writable = Path(_config.table_dir())
    key = None
    key_read = False
    for directory in search_dirs():
        is_writable = directory == writable
        for path in _candidate_files(directory, canon, K):
            if is_writable and not key_read:
                key, key_read = _cache_key(), True
            got = _load_table(path, canon, K, key=key, writable=is_writable)
            if got is None:
                continue
            table, file_method, _ = got
            if _METHOD_RANK[file_method] < _METHOD_RANK[method]:
                continue
            if table.shape[0] - 1 >= r_needed:
                return table
            if best is None or table.shape[0] > best.shape[0]:
                best = table
    return best


def _write_table(directory, canon: str, K: int, n: int, table: np.ndarray, method: str,
                 key: bytes | None):
    """Atomically write a table with its HMAC under ``key`` (an empty ``hmac`` when ``key`` is
    None: such a file is trusted only through the manifest).  Returns the path, or None (with a
    warning) if not writable."""
    directory = Path(directory)
    path = table_path(directory, canon, K, n)
    table = np.ascontiguousarray(table, dtype=np.float64)
    r_max = table.shape[0] - 1
    mac = "" if key is None else _mac(key, _encoding(FORMAT_VERSION, canon, K, n, r_max, "down",
                                                     method, table))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb", suffix=".tmp.npz") as fh:
            np.savez(fh, log_thresholds=table, q=np.array(canon), K=np.int64(K),
                     n=np.int64(n), r_max=np.int64(r_max),
                     format_version=np.int64(FORMAT_VERSION), rounding=np.array("down"),
                     method=np.array(method), hmac=np.array(mac))
    except OSError as exc:
        warnings.warn(f"could not write threshold table {path} ({exc}); it will be recomputed "
                      f"next time. Set numbaflip.config.table_dir or $NUMBAFLIP_TABLE_DIR to a "
                      f"writable directory to keep it.", NumbaflipWarning, stacklevel=3)
        return None
    return path


def write_manifest(paths, manifest_path, *, check: bool = True) -> dict:
    """Write the manifest of shipped tables listing the table files ``paths``.

    Every file must be a well-formed table (any format version) stored under its proper name.
    With ``check`` (the default, and what the shipped manifest needs) each table is compared
    with a fresh recomputation (:func:`numbaflip.tight.thresholds.log_thresholds` with its own q, K,
    r_max and method): a stored value above the recomputed one would over-certify, and raises
    :class:`NumbaflipInputError` before anything is written.  Written atomically; returns
    ``{"tables": n, "identical": how many equal their recomputation}``.
    """
    entries, identical = [], 0
    for path in sorted(Path(p) for p in paths):
        t = _read_table(path)
        if t is None:
            raise NumbaflipInputError(f"{path} is not a readable threshold table (regular "
                                      f"file, .npz without pickles); regenerate it with "
                                      f"`numbaflip precompute`")
        try:
            canon = _thr.canonical_q_str(t.q, t.K)
        except NumbaflipInputError:
            canon = None
        if canon != t.q or not _well_formed(t, path.name, canon, t.K):
            raise NumbaflipInputError(f"{path} is not a consistent threshold table (metadata, "
                                      f"file name or values); regenerate it with "
                                      f"`numbaflip precompute`")
        if check:
            ref = _thr.log_thresholds(t.q, t.K, t.r_max, method=t.method)
            above = np.flatnonzero(~(t.values <= ref))
            if above.size:
                r = int(above[0])
                raise NumbaflipInputError(
                    f"{path}: stored L_{r} = {t.values[r]!r} exceeds a fresh recomputation "
                    f"({ref[r]!r}) at {above.size} entries; it would over-certify, so it is "
                    f"not listed. Regenerate it with `numbaflip precompute`")
            identical += bool(np.array_equal(t.values, ref))
        entries.append(t.entry(path.name))
    doc = {
        "manifest_version": 1,
        "about": "Shipped tight-threshold tables trusted by numbaflip.tight.cache: a table is used "
                 "only if the sha256 of its canonical encoding (numbaflip.tight.cache._encoding: "
                 "format_version, q, K, n, r_max, rounding, method, log_thresholds as "
                 "little-endian float64, each length-prefixed) is listed here. Regenerate with "
                 "`numbaflip precompute --paper --out precomputed --manifest "
                 "numbaflip/precomputed_manifest.json`.",
        "checked_against_recomputation": bool(check),
        "tables": entries,
    }
    text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
    manifest_path = Path(manifest_path)
    try:
        with atomic_write(manifest_path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise NumbaflipInputError(f"could not write the manifest {manifest_path} ({exc}); "
                                  f"check that its directory exists and is writable") from None
    global _MANIFEST
    _MANIFEST = None
    return {"tables": len(entries), "identical": identical}


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise NumbaflipInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def get_log_thresholds(q_str, K: int, r_needed: int, *, n: int | None = None,
                       method: str = "auto") -> np.ndarray:
    """Thresholds L_r = log(1 − p_r) for r = 0..(at least) r_needed, rounded DOWN,
    non-increasing (Lee et al. 2019; math.md §4).

    Looks in memory, then on disk (verified tables only, see the module docstring), and
    otherwise computes with :func:`numbaflip.tight.thresholds.log_thresholds` and caches the result
    (with its HMAC; not cached when the key is unusable).  A table shorter than ``r_needed`` is
    extended (recomputed to max(r_needed, 1.5 × its length), capped at ``n`` when
    ``n >= r_needed``).  The returned array is read-only and may be longer than needed.
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
        mac_key = _cache_key()
        if mac_key is not None:  # an unusable key: compute, do not cache
            _write_table(_config.table_dir(), canon, K, n if n is not None else target, table,
                         method, mac_key)
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
