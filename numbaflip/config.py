"""Tunables in one place.  Tests may change them and must call :func:`reset` afterwards.

Every tunable here affects speed or tightness only, never soundness: a certificate computed
with any setting is valid.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass
class Config:
    #: Newton stops when the relative change of the objective is below this.
    newton_rtol: float = 1e-13
    #: Newton iteration cap per (test point, rival) problem.
    newton_maxiter: int = 100
    #: How the binary Chernoff bound is searched and certified: "histogram" (bucketed α, one
    #: pass, Newton on buckets, certified sandwich, full pass only where it does not close;
    #: math.md §2b), "passes" (Newton with a full pass over α per step; the reference), or
    #: "auto": histogram from ``histogram_min_n`` training points on, where it pays off.
    chernoff_engine: str = "auto"
    #: Smallest n for which "auto" uses the histogram engine.
    histogram_min_n: int = 4096
    #: Bytes of one block of alpha (block rows × n × 8); bounds the memory of certify.
    block_bytes: int = 256 * 2 ** 20
    #: Test points per alpha block; None: as many as fit in ``block_bytes``.
    block_size: int | None = None
    #: Directory for cached threshold tables; None means $NUMBAFLIP_TABLE_DIR, else the
    #: user's cache directory.
    table_dir: str | None = None
    #: Key file for the HMAC of cached threshold tables (32 random bytes, created on first
    #: use, mode 0600; must lie outside the table directory); None means $NUMBAFLIP_KEY_FILE,
    #: else $XDG_CONFIG_HOME/numbaflip/cache.key (default ~/.config/numbaflip/cache.key).
    #: An unusable key does not affect results: tables are then recomputed, not cached.
    key_file: str | None = None


config = Config()


def reset() -> None:
    """Restore every tunable to its default."""
    for f in fields(Config):
        setattr(config, f.name, f.default)


def block_rows(n: int) -> int:
    """Test points per block of alpha for n training points."""
    if config.block_size:
        return int(config.block_size)
    return max(1, int(config.block_bytes) // (8 * max(int(n), 1)))


def table_dir() -> str:
    """Where writable threshold tables live (created on demand by the table module)."""
    if config.table_dir:
        return config.table_dir
    env = os.environ.get("NUMBAFLIP_TABLE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "numbaflip", "thresholds")
