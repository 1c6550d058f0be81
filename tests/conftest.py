"""Test-session setup: everything the suite writes goes under pytest's temporary directory.

The threshold-table cache, the cache's key file, the XDG cache/config homes and matplotlib's
config directory are pointed into one session temporary directory, so running the tests never
writes to ``~/.cache``, ``~/.config`` or the working tree (apart from Numba's ``__pycache__``).
Subprocesses started by tests inherit these variables.
"""
import pytest

import numbaflip.config
import numbaflip.tight.cache


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("numbaflip-home")
    env = {
        "NUMBAFLIP_TABLE_DIR": base / "tables",
        # key file for the cache's MAC; its directory is deliberately not created here
        "NUMBAFLIP_KEY_FILE": base / "config" / "cache.key",
        "XDG_CACHE_HOME": base / "cache",
        "XDG_CONFIG_HOME": base / "config",
        "MPLCONFIGDIR": base / "matplotlib",
    }
    mp = pytest.MonkeyPatch()
    for name, path in env.items():
        mp.setenv(name, str(path))
    mp.setenv("MPLBACKEND", "Agg")  # headless plotting, also in subprocesses
    numbaflip.config.reset()
    numbaflip.tight.cache.clear_memory_cache()
    try:
        yield base
    finally:
        mp.undo()
        numbaflip.config.reset()
        numbaflip.tight.cache.clear_memory_cache()
