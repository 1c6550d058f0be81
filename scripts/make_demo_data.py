"""Regenerate ``numbaflip/data/digits.npz``, the demo dataset shipped inside numbaflip.

What it computes
    A copy of the UCI "Optical Recognition of Handwritten Digits" test set (1797 images of
    8×8 pixels with integer values 0..16, digit labels 0..9) as bundled with scikit-learn
    (``sklearn.datasets.load_digits``, file ``sklearn/datasets/data/digits.csv.gz``).  The
    pixels are stored as ``uint8`` in the original order, with no other processing.

Arrays in the output ``.npz`` (``numpy.savez_compressed``, loadable with ``allow_pickle=False``)
    ``images``          uint8 (1797, 64)  row-major 8×8 pixel counts, 0..16
    ``labels``          uint8 (1797,)     digit 0..9
    ``format_version``  int64 scalar      1
    ``source``          str scalar        provenance, one line

How long it takes
    Under a second.  scikit-learn is needed only here (``pip install scikit-learn``); it is
    not a runtime dependency of numbaflip.

Where the output goes
    ``numbaflip/data/digits.npz`` next to this repository's package, or ``--out PATH``.
    The file is written to a temporary name and renamed, so an interrupted run leaves the old
    file intact.  numpy's zip writer stores fixed timestamps, so the output is byte-for-byte
    reproducible for a given numpy version.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile

import numpy as np

FORMAT_VERSION = 1
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                           "numbaflip", "data", "digits.npz")


def build():
    """Return ``(images uint8 (1797, 64), labels uint8 (1797,), source str)``."""
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("this script needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    data = np.asarray(d.data)
    if data.shape != (1797, 64) or data.min() < 0 or data.max() > 16 \
            or not np.array_equal(data, np.round(data)):
        raise RuntimeError(f"unexpected digits data: shape {data.shape}, "
                           f"range [{data.min()}, {data.max()}]")
    images = data.astype(np.uint8)
    labels = np.asarray(d.target).astype(np.uint8)
    source = (f"UCI Optical Recognition of Handwritten Digits (test set, optdigits.tes), "
              f"via scikit-learn {sklearn.__version__} load_digits(); CC BY 4.0; "
              f"doi:10.24432/C50P49")
    return images, labels, source


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output .npz (default: %(default)s)")
    args = ap.parse_args(argv)
    images, labels, source = build()
    out = os.path.abspath(args.out)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=os.path.dirname(out))
    os.close(fd)
    try:
        np.savez_compressed(tmp, images=images, labels=labels,
                            format_version=np.int64(FORMAT_VERSION), source=np.str_(source))
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    with open(out, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    print(f"wrote {out}: {images.shape[0]} images, {os.path.getsize(out)} bytes, "
          f"sha256 {digest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
