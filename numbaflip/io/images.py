"""Reading image arrays (and label vectors) for :mod:`numbaflip.features`.

Supported files, chosen by the extension (case-insensitive):

``.npy``
    One numeric array, loaded with ``allow_pickle=False``.
``.idx``, ``-idx3-ubyte``, ``-idx1-ubyte``, … and the same with ``.gz``
    The IDX format of MNIST and Fashion-MNIST (Debian ``dataset-fashion-mnist`` ships
    ``/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz``): two zero bytes, a type
    code, the number of dimensions, the dimensions as big-endian 32-bit integers, then the
    values in big-endian order.

Every file is treated as hostile: the header must be consistent with the payload (no more and
no fewer bytes than the dimensions say), the decompressed size is capped before anything is
allocated (a gzip bomb stops at :data:`MAX_BYTES`), and no object arrays are ever loaded.
Problems raise :class:`~numbaflip.errors.NumbaflipInputError`.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from ..errors import NumbaflipInputError

__all__ = ["load_images", "load_labels", "read_idx", "MAX_BYTES"]

#: Largest payload read from one file (decompressed): 4 GiB.
MAX_BYTES = 1 << 32

# IDX type codes -> big-endian numpy dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _check_file(path) -> str:
    try:
        fspath = os.fspath(path)
    except TypeError:
        raise NumbaflipInputError(
            f"path must be a string or os.PathLike, got {type(path).__name__}") from None
    if not os.path.exists(fspath):
        raise NumbaflipInputError(f"file not found: {fspath!r}; check the path")
    if not os.path.isfile(fspath):
        raise NumbaflipInputError(f"{fspath!r} is not a regular file; pass a file path")
    return fspath


def _is_idx_name(fspath: str) -> bool:
    name = os.path.basename(fspath).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(".idx") or "idx" in name.rsplit(".", 1)[-1] or "-idx" in name


def _read_upto(fspath: str, limit: int) -> bytes:
    """At most ``limit`` (decompressed) bytes from the start of ``fspath``."""
    opener = gzip.open if fspath.lower().endswith(".gz") else open
    try:
        with opener(fspath, "rb") as fh:
            return fh.read(limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise NumbaflipInputError(
            f"cannot read {fspath!r}: {exc}; check that it is a valid (gzipped) IDX file") from None


def _read_capped(fspath: str, limit: int) -> bytes:
    """The (decompressed) bytes of ``fspath``, refusing more than ``limit`` bytes."""
    data = _read_upto(fspath, limit + 1)
    if len(data) > limit:
        raise NumbaflipInputError(
            f"{fspath!r} holds more bytes than its IDX header announces (or more than "
            f"{MAX_BYTES} bytes); the file is corrupt or not an IDX file")
    return data


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a native-endian numpy array.

    The header is validated against the payload: a file whose size differs from what its
    dimensions announce is an error, and nothing larger than :data:`MAX_BYTES` is read.
    """
    fspath = _check_file(path)
    head = _read_upto(fspath, 4 + 4 * 255)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
        raise NumbaflipInputError(
            f"{fspath!r} is not an IDX file (its first bytes are not 00 00 <type> <ndim> with a "
            "known type code); pass an IDX file such as train-images-idx3-ubyte(.gz) or a .npy "
            "array")
    dtype = np.dtype(_IDX_TYPES[head[2]])
    ndim = head[3]
    if ndim == 0 or len(head) < 4 + 4 * ndim:
        raise NumbaflipInputError(f"{fspath!r}: the IDX header is truncated or has 0 dimensions")
    shape = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape, dtype=object))
    nbytes = count * dtype.itemsize
    if nbytes > MAX_BYTES:
        raise NumbaflipInputError(
            f"{fspath!r}: the IDX header announces shape {shape} ({nbytes} bytes), more than "
            f"the {MAX_BYTES} bytes numbaflip reads from one file")
    offset = 4 + 4 * ndim
    data = _read_capped(fspath, offset + nbytes)
    if len(data) != offset + nbytes:
        raise NumbaflipInputError(
            f"{fspath!r}: the IDX header announces shape {shape} ({nbytes} bytes of data) but "
            f"the file holds {len(data) - offset}; the file is truncated or corrupt")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _load_any(path, what: str) -> np.ndarray:
    fspath = _check_file(path)
    if fspath.lower().endswith(".npy"):
        try:
            arr = np.load(fspath, allow_pickle=False, mmap_mode=None)
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                raise NumbaflipInputError(
                    f"cannot read {fspath!r}: it holds Python objects (pickled data), which are "
                    f"not loaded for safety; save the {what} as a plain numeric array") from None
            raise NumbaflipInputError(f"cannot read {fspath!r}: {exc}") from None
        except (OSError, EOFError) as exc:
            raise NumbaflipInputError(f"cannot read {fspath!r}: {exc}") from None
    elif _is_idx_name(fspath):
        arr = read_idx(fspath)
    else:
        raise NumbaflipInputError(
            f"cannot read {what} from {fspath!r}: unknown file type; pass a .npy array or an "
            "IDX file (name containing 'idx', optionally .gz)")
    if arr.dtype.kind not in "biuf":
        raise NumbaflipInputError(
            f"{what} in {fspath!r} have non-numeric dtype {arr.dtype}; store numbers")
    return arr


def load_images(path) -> np.ndarray:
    """Images from a ``.npy`` or IDX file, shape (n, H, W) or (n, C, H, W), dtype as stored.

    The values are checked by :func:`numbaflip.features.check_images` when they are used.
    """
    arr = _load_any(path, "images")
    if arr.ndim not in (3, 4):
        raise NumbaflipInputError(
            f"images in {os.fspath(path)!r} must have shape (n, H, W) or (n, C, H, W), got "
            f"{arr.shape}; for tabular data use a label-free map from scikit-learn instead "
            "(docs/features.md)")
    return arr


def load_labels(path) -> np.ndarray:
    """A label vector (shape (n,)) from a ``.npy`` or IDX file; integers only."""
    arr = _load_any(path, "labels")
    if arr.ndim != 1:
        raise NumbaflipInputError(
            f"labels in {os.fspath(path)!r} must be 1-D (one per image), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise NumbaflipInputError(
                f"labels in {os.fspath(path)!r} must be integers; found non-integral values")
    return arr.astype(np.int64)
