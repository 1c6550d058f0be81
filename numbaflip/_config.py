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
    #: Test points per alpha block (memory is about block_size * n * 8 bytes).
    block_size: int = 256
    #: Directory for cached threshold tables; None means $NUMBAFLIP_TABLE_DIR, else the
    #: user's cache directory.
    table_dir: str | None = None


config = Config()


def reset() -> None:
    """Restore every tunable to its default."""
    for f in fields(Config):
        setattr(config, f.name, f.default)


def table_dir() -> str:
    """Where writable threshold tables live (created on demand by the table module)."""
    if config.table_dir:
        return config.table_dir
    env = os.environ.get("NUMBAFLIP_TABLE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "numbaflip", "thresholds")
