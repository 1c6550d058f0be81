"""Validation of image arrays and encoder options (no PyTorch needed)."""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import NumbaflipInputError

__all__ = ["check_images", "check_option", "MIN_SIDE"]

#: Smallest image side the encoder accepts (three stride-2 convolutions).
MIN_SIDE = 8
#: Largest absolute pixel value accepted (values are converted to float32).
_MAX_ABS = 1e30


def check_images(images, *, what: str = "images") -> np.ndarray:
    """``images`` as a float32 array of shape (n, C, H, W), or a clear error.

    Accepts (n, H, W) (one channel) and (n, C, H, W); any real dtype.  Refuses other ranks,
    empty arrays, sides below :data:`MIN_SIDE`, non-finite values and values too large for
    float32.
    """
    if hasattr(images, "__array__") and not isinstance(images, np.ndarray):
        images = np.asarray(images)
    if not isinstance(images, np.ndarray):
        raise NumbaflipInputError(
            f"{what} must be a numpy array of shape (n, H, W) or (n, C, H, W), got "
            f"{type(images).__name__}; convert with numpy.asarray")
    if images.dtype.kind not in "biuf":
        raise NumbaflipInputError(
            f"{what} have dtype {images.dtype}; pass real numbers (e.g. uint8 pixels or floats)")
    if images.ndim == 3:
        images = images[:, None, :, :]
    elif images.ndim != 4:
        raise NumbaflipInputError(
            f"{what} must have shape (n, H, W) or (n, C, H, W), got {images.shape} (rank "
            f"{images.ndim}); a flat (n, H*W) array must be reshaped, e.g. "
            "a.reshape(len(a), 28, 28); for tabular data use a label-free map from "
            "scikit-learn instead (docs/features.md)")
    n, c, h, w = images.shape
    if n == 0 or c == 0:
        raise NumbaflipInputError(f"{what} are empty (shape {images.shape})")
    if h < MIN_SIDE or w < MIN_SIDE:
        raise NumbaflipInputError(
            f"{what} are {h}×{w} pixels; the encoder needs at least {MIN_SIDE}×{MIN_SIDE} "
            "(upsample them, or use a label-free map such as PCA for tiny inputs)")
    if images.dtype.kind == "f":
        finite = np.isfinite(images)
        if not finite.all():
            i = int(np.argwhere(~finite)[0][0])
            raise NumbaflipInputError(
                f"{what} contain non-finite values (NaN or inf), first in image {i}; clean or "
                "drop those images")
        if images.size and float(np.max(np.abs(images))) > _MAX_ABS:
            raise NumbaflipInputError(
                f"{what} contain values above {_MAX_ABS:g} in magnitude; rescale them "
                "(e.g. to [0, 1])")
    return np.ascontiguousarray(images, dtype=np.float32)


def check_option(name: str, value, kind, *, low=None, high=None, low_open=False):
    """A numeric option checked against its range; returns it as ``kind`` (int or float)."""
    ok_type = (numbers.Integral,) if kind is int else (numbers.Real,)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        raise NumbaflipInputError(
            f"{name} must be {'an integer' if kind is int else 'a real number'}, got {value!r}")
    value = kind(value)
    if not np.isfinite(value):
        raise NumbaflipInputError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise NumbaflipInputError(
            f"{name} must be {'>' if low_open else '≥'} {low}, got {value!r}")
    if high is not None and value > high:
        raise NumbaflipInputError(f"{name} must be ≤ {high}, got {value!r}")
    return value
