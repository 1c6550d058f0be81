"""Writing output files without clobbering anything.

:func:`atomic_write` writes a temporary file in the target's directory, fsyncs it and renames it
over the target: readers (and concurrent writers) never see a half-written file; on any error
the temporary file is removed and an existing file at the target is left untouched.

:func:`plan_output` and :func:`write_output` decide *how* a user-given output path is written,
so that nothing but the intended regular file is ever replaced:

* ``-`` is standard output (written to ``sys.stdout``).
* A regular file, or a path that does not exist yet, is written atomically **at its resolved
  target** (:func:`os.path.realpath`): a symlink stays a symlink and the file it points to
  receives the new contents.
* Anything else that exists — a FIFO, a character or block device (``/dev/stdout``,
  ``/dev/null``), a ``/proc/self/fd/N`` style link — is opened for writing and streamed to;
  it is never renamed over or unlinked.
* An output that is the same file as one of the ``protect`` paths (the inputs; compared by
  ``st_dev``/``st_ino``, so symlinks and hard links are caught) is refused, as are a missing
  or unwritable directory, a directory, a socket and a read-only existing file.

Problems raise :class:`~numbaflip.errors.NumbaflipInputError` before anything is written, so a
caller can check the output path first (:func:`plan_output`) and compute afterwards.
"""
from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from dataclasses import dataclass

from ..errors import NumbaflipInputError

__all__ = ["atomic_write", "OutputPlan", "plan_output", "write_output"]


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


@dataclass(frozen=True)
class OutputPlan:
    """How an output path will be written (see :func:`plan_output`).

    ``mode`` is ``"stdout"`` (``-``), ``"atomic"`` (temporary file + rename at ``target``, the
    resolved path) or ``"stream"`` (open ``target`` for writing; ``append`` for a regular file
    reached through a magic link such as ``/dev/stdout`` redirected to a file).
    """

    path: str
    target: str
    mode: str
    file_mode: int = 0o644
    append: bool = False


def _fail(fspath: str, what: str) -> NumbaflipInputError:
    return NumbaflipInputError(f"cannot write {fspath!r}: {what}")


def _check_directory(fspath: str, target: str) -> None:
    directory = os.path.dirname(target) or "."
    via = "" if os.path.abspath(fspath) == target else f" (it resolves to {target!r})"
    if not os.path.isdir(directory):
        raise _fail(fspath, f"directory {directory!r} does not exist{via}; create it first or "
                            "choose another output path")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _fail(fspath, f"directory {directory!r} is not writable{via}; choose a "
                            "directory you can write to or fix its permissions")


def plan_output(path, protect=()) -> OutputPlan:
    """Check ``path`` as an output and say how it will be written; nothing is written.

    ``protect``: paths that must not be overwritten (the inputs); nonexistent ones are ignored.
    Raises :class:`NumbaflipInputError` with what is wrong and how to fix it.
    """
    try:
        fspath = os.fspath(path)
    except TypeError:
        raise NumbaflipInputError(
            f"output path must be a string or os.PathLike, got {type(path).__name__}") from None
    if fspath == "-":
        return OutputPlan(fspath, "-", "stdout")
    if not fspath:
        raise NumbaflipInputError("output path is empty; pass a file name, or - for stdout")
    try:
        st = os.stat(fspath)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _fail(fspath, f"{exc.strerror or exc}; check the path") from None

    if st is not None:
        for inp in protect:
            if inp is None:
                continue
            try:
                ist = os.stat(inp)
            except OSError:
                continue
            if (ist.st_dev, ist.st_ino) == (st.st_dev, st.st_ino):
                raise _fail(fspath, f"it is the same file as the input {os.fspath(inp)!r} "
                                    "(directly, or through a symlink or hard link); writing "
                                    "would destroy the input — choose another output file")
        if stat.S_ISDIR(st.st_mode):
            raise _fail(fspath, "it is a directory; pass a file name inside it")
        if stat.S_ISSOCK(st.st_mode):
            raise _fail(fspath, "it is a socket; pass a file name, a FIFO, or - for stdout")
        if stat.S_ISREG(st.st_mode):
            target = os.path.realpath(fspath)
            try:
                rst = os.stat(target)
            except OSError:
                rst = None
            if rst is not None and os.path.samestat(rst, st):
                if not os.access(target, os.W_OK):
                    raise _fail(fspath, f"{target!r} exists and is read-only; remove it or "
                                        "make it writable if it may be replaced, or choose "
                                        "another output file")
                _check_directory(fspath, target)
                return OutputPlan(fspath, target, "atomic", stat.S_IMODE(st.st_mode))
            # A regular file behind a link that realpath cannot name (/dev/stdout, /dev/fd/N
            # redirected to a file): write through the link, appending.
            if not os.access(fspath, os.W_OK):
                raise _fail(fspath, "it is not writable; check its permissions")
            return OutputPlan(fspath, fspath, "stream", append=True)
        # FIFO, character or block device: stream into it, never rename over it.
        if not os.access(fspath, os.W_OK):
            raise _fail(fspath, "it is not writable; check its permissions")
        return OutputPlan(fspath, fspath, "stream")

    target = os.path.realpath(fspath)  # a dangling symlink writes its target
    _check_directory(fspath, target)
    return OutputPlan(fspath, target, "atomic")


def write_output(path, text: str, *, protect=(), encoding: str = "utf-8") -> OutputPlan:
    """Write ``text`` to ``path`` following :func:`plan_output` (re-checked now)."""
    plan = plan_output(path, protect)
    try:
        if plan.mode == "stdout":
            sys.stdout.write(text)
            sys.stdout.flush()
        elif plan.mode == "stream":
            flags = os.O_WRONLY | (os.O_APPEND if plan.append else 0)
            fd = os.open(plan.target, flags)  # no O_CREAT, no O_TRUNC: never replaces
            with os.fdopen(fd, "w", encoding=encoding, newline="") as fh:
                fh.write(text)
        else:
            with atomic_write(plan.target, "w", file_mode=plan.file_mode, encoding=encoding,
                              newline="") as fh:
                fh.write(text)
    except BrokenPipeError:
        raise _fail(plan.path, "the reader closed the pipe before all output was written") \
            from None
    except OSError as exc:
        raise _fail(plan.path, f"{exc.strerror or exc}; check the path, free space and "
                               "permissions") from None
    return plan
