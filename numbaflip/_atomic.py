"""Atomic file writes: a temporary file in the target's directory, fsync, then rename.

Readers (and concurrent writers) never see a half-written file; on any error the temporary
file is removed and an existing file at the target is left untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", *, suffix: str = ".tmp", file_mode: int = 0o644,
                 **open_kwargs):
    """Yield a file object; on normal exit it replaces ``path`` atomically."""
    fspath = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(fspath))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(fspath) + ".", suffix=suffix,
                               dir=directory)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode)  # mkstemp creates 0600
        os.replace(tmp, fspath)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
