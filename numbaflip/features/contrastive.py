"""A label-free image encoder trained by contrastive learning (SimCLR's NT-Xent loss).

Why it matters for certificates: numbaflip certifies a classifier that is linear in the
training labels **on features that do not depend on them** (math.md §1; Rosenfeld et al. 2020,
§3).  The encoder below is fitted on the images alone — :meth:`ContrastiveEncoder.fit` takes no
labels — so its features are a valid input to :func:`numbaflip.certify`, and they separate the
classes far better than PCA does, which is where most of a certified radius comes from
(docs/results/features.md).

The model is small enough for a CPU: three stride-2 3×3 convolution blocks (width, 2·width,
2·width channels, batch normalisation, ReLU), average pooling to a 2×2 grid and a linear map
to ``dim`` features; a two-layer projection head on top is used by the loss only.  Each step
takes a batch of B images, makes two random views of each (random affine map and pixel
dropout) and minimises the NT-Xent loss, which pulls the two views of an image together and
pushes the 2B − 2 others away (Chen et al., "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020).
"""
from __future__ import annotations

import inspect
import os
import time

import numpy as np

from ..errors import NumbaflipInputError
from ._images import check_images, check_option

__all__ = ["ContrastiveEncoder", "FORMAT", "FORMAT_VERSION"]

#: Tag and version of files written by :meth:`ContrastiveEncoder.save`.
FORMAT = "numbaflip.ContrastiveEncoder"
FORMAT_VERSION = 1
#: Largest encoder file :meth:`ContrastiveEncoder.load` opens.
_MAX_FILE_BYTES = 256 << 20

INSTALL_HINT = ("install the optional extra: pip install 'numbaflip[features]' (on a machine "
                "without a GPU, pip install torch==2.13.0 first takes the CPU build)")


def _torch():
    """The torch module, or an ImportError that says how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"numbaflip.features.ContrastiveEncoder needs PyTorch; "
                          f"{INSTALL_HINT}") from exc
    return torch


class ContrastiveEncoder:
    """Label-free image features from a small CNN trained with a SimCLR-style loss.

    Parameters
    ----------
    dim : int, default 256
        Number of features returned by :meth:`transform`.  The default equals the number of
        pooled values (8·width); a smaller ``dim`` compresses them and, measured on
        Fashion-MNIST, costs certified radius (docs/results/features_fashion-mnist.md).
    epochs : int, default 12
        Passes over the images during :meth:`fit`.
    batch_size : int, default 256
        Images per step (each gives two views, so the loss compares 2·batch_size views).
        :meth:`fit` needs at least this many images.
    width : int, default 32
        Channels of the first convolution (then 2·width and 2·width).
    lr : float, default 2e-3
        Adam learning rate, decayed to 0 on a cosine schedule.
    temperature : float, default 0.2
        Temperature of the NT-Xent loss.
    rotation, shift, scale, pixel_dropout
        The augmentations: rotation up to ``rotation`` degrees, translation up to ``shift`` of
        the image side, isotropic zoom in ``scale``, each pixel zeroed with probability
        ``pixel_dropout``.
    seed : int, default 0
        Seeds the weights, the shuffling and the augmentations.  On the CPU, with the same
        number of threads, the same seed and images give the same features bit for bit.
    n_threads : int or None
        Threads for PyTorch during :meth:`fit` and :meth:`transform` (restored afterwards);
        None keeps ``torch.get_num_threads()``.  On a machine shared with other work, fewer
        threads than cores is often much faster.
    progress : bool or None
        A tqdm bar per epoch on stderr (None: only on a terminal).

    Notes
    -----
    The guarantee that matters to numbaflip: :meth:`fit` receives images only.  Anything the
    features learn, they learn without the training labels, so certificates computed on them
    hold against label flips exactly as for fixed features (math.md §1).  Do not fine-tune the
    encoder with labels and then certify on its features.
    """

    def __init__(self, dim=256, epochs=12, *, batch_size=256, width=32, lr=2e-3,
                 temperature=0.5, rotation=15.0, shift=0.1, scale=(0.9, 1.4),
                 flip=True, jitter=0.4, pixel_dropout=0.1, seed=0, n_threads=None,
                 progress=None):
        _torch()
        self.dim = check_option("dim", dim, int, low=1, high=4096)
        self.epochs = check_option("epochs", epochs, int, low=1, high=10_000)
        self.batch_size = check_option("batch_size", batch_size, int, low=2, high=1 << 16)
        self.width = check_option("width", width, int, low=1, high=1024)
        self.lr = check_option("lr", lr, float, low=0, low_open=True, high=10)
        self.temperature = check_option("temperature", temperature, float, low=0,
                                        low_open=True, high=100)
        self.rotation = check_option("rotation", rotation, float, low=0, high=180)
        self.shift = check_option("shift", shift, float, low=0, high=1)
        self.scale = _check_scale(scale)
        if not isinstance(flip, bool):
            raise NumbaflipInputError(f"flip must be True or False, got {flip!r}")
        self.flip = flip
        self.jitter = check_option("jitter", jitter, float, low=0, high=1)
        self.pixel_dropout = check_option("pixel_dropout", pixel_dropout, float, low=0,
                                          high=0.95)
        self.seed = check_option("seed", seed, int, low=0, high=2**63 - 1)
        self.n_threads = (None if n_threads is None
                          else check_option("n_threads", n_threads, int, low=1, high=1024))
        self.progress = progress
        self._model = None

    # -- scikit-learn style ----------------------------------------------------------------
    def get_params(self, deep=True):
        """The constructor parameters (as scikit-learn's ``get_params``)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params):
        """A new configuration; refits are needed afterwards (the fitted model is dropped)."""
        merged = {**self.get_params(), **params}
        self.__init__(**merged)
        return self

    def __repr__(self):
        return f"ContrastiveEncoder(dim={self.dim}, epochs={self.epochs}, seed={self.seed})"

    # -- fitting and features --------------------------------------------------------------
    def fit(self, images):
        """Train the encoder on ``images`` (n, H, W) or (n, C, H, W) — no labels, by design.

        Returns ``self``.  Sets ``loss_history_`` (mean loss per epoch), ``fit_seconds_``,
        ``fit_threads_`` (PyTorch threads used) and ``input_shape_`` (C, H, W); all are saved
        by :meth:`save`.
        """
        x = check_images(images)
        if x.shape[0] < self.batch_size:
            raise NumbaflipInputError(
                f"fit got {x.shape[0]} images, fewer than one batch (batch_size="
                f"{self.batch_size}); pass more images or a smaller batch_size")
        torch = _torch()
        from . import _torch_model as tm
        t0 = time.perf_counter()
        with _threads(torch, self.n_threads):
            threads = torch.get_num_threads()
            gen = torch.Generator().manual_seed(self.seed)
            mean, std = _channel_stats(x)
            data = torch.from_numpy((x - mean[None, :, None, None]) / std[None, :, None, None])
            model = _new_model(torch, tm, self, x.shape[1])
            steps = (x.shape[0] // self.batch_size) * self.epochs
            opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=1e-6)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, steps) / steps)))
            params = dict(batch_size=self.batch_size, temperature=self.temperature,
                          rotation=self.rotation, shift=self.shift, scale=self.scale,
                          dropout=self.pixel_dropout, flip=self.flip, jitter=self.jitter)
            history = [self._epoch(tm, model, opt, sched, data, gen, params, e)
                       for e in range(self.epochs)]
        self._model, self._mean, self._std = model, mean, std
        self.input_shape_ = tuple(int(s) for s in x.shape[1:])
        self.loss_history_ = history
        self.fit_seconds_ = time.perf_counter() - t0
        self.fit_threads_ = threads
        return self

    def _epoch(self, tm, model, opt, sched, data, gen, params, e):
        from tqdm.auto import tqdm
        disable = None if self.progress is None else not self.progress
        steps = data.shape[0] // self.batch_size
        with tqdm(total=steps, desc=f"epoch {e + 1}/{self.epochs}", unit="batch",
                  disable=disable, leave=True) as bar:
            loss = tm.train_epoch(model, opt, sched, data, gen, params, bar)
        if not np.isfinite(loss):
            raise NumbaflipInputError(
                f"training diverged in epoch {e + 1} (loss {loss}); lower lr (now {self.lr})")
        return loss

    def transform(self, images) -> np.ndarray:
        """Features of ``images``, a float64 array (n, dim); the images must match ``fit``'s
        channels and size."""
        if self._model is None:
            raise NumbaflipInputError(
                "this ContrastiveEncoder is not fitted yet; call fit(images) first or "
                "ContrastiveEncoder.load(path)")
        x = check_images(images)
        if tuple(x.shape[1:]) != self.input_shape_:
            raise NumbaflipInputError(
                f"images have shape (C, H, W) = {tuple(x.shape[1:])}, but the encoder was "
                f"fitted on {self.input_shape_}; pass images of the same size and channels")
        torch = _torch()
        from . import _torch_model as tm
        m, s = self._mean[None, :, None, None], self._std[None, :, None, None]
        with _threads(torch, self.n_threads):
            out = tm.embed(self._model, torch.from_numpy((x - m) / s))
        return out.numpy()

    def fit_transform(self, images) -> np.ndarray:
        """``fit(images).transform(images)``."""
        return self.fit(images).transform(images)

    # -- persistence -----------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fitted encoder to ``path`` (a PyTorch file of tensors and plain values,
        readable with ``weights_only=True``), atomically."""
        if self._model is None:
            raise NumbaflipInputError("cannot save an encoder that is not fitted; call fit first")
        torch = _torch()
        from .._version import __version__
        from ..io._atomic import atomic_write, plan_output
        plan = plan_output(path)
        if plan.mode != "atomic":
            raise NumbaflipInputError(
                f"cannot save the encoder to {os.fspath(path)!r}: pass a regular file path "
                "(not stdout, a FIFO or a device)")
        blob = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "numbaflip_version": __version__,
                "params": {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in self.get_params().items() if k != "progress"},
                "input_shape": list(self.input_shape_),
                "mean": torch.from_numpy(self._mean), "std": torch.from_numpy(self._std),
                "loss_history": [float(v) for v in self.loss_history_],
                "fit_seconds": float(getattr(self, "fit_seconds_", float("nan"))),
                "fit_threads": int(getattr(self, "fit_threads_", 0)),
                "state_dict": self._model.state_dict()}
        with atomic_write(plan.target, "wb", file_mode=plan.file_mode) as fh:
            torch.save(blob, fh)

    @classmethod
    def load(cls, path, *, n_threads=None, progress=None) -> "ContrastiveEncoder":
        """Read an encoder written by :meth:`save`.

        The file is opened with ``torch.load(weights_only=True)``, so it cannot run code; a file
        of another format or version, or one whose tensors do not fit the model, is refused.
        """
        torch = _torch()
        blob = _read_blob(torch, path)
        params = dict(blob["params"], n_threads=n_threads, progress=progress)
        if "scale" in params:
            params["scale"] = tuple(params["scale"])
        try:
            enc = cls(**params)
            from . import _torch_model as tm
            shape = tuple(int(v) for v in blob["input_shape"])
            model = _new_model(torch, tm, enc, shape[0])
            model.load_state_dict(blob["state_dict"])
            mean = blob["mean"].numpy().astype(np.float32)
            std = blob["std"].numpy().astype(np.float32)
        except (TypeError, KeyError, ValueError, RuntimeError, AttributeError) as exc:
            raise NumbaflipInputError(
                f"{os.fspath(path)!r} is not a valid numbaflip encoder file ({exc}); refit and "
                "save it again") from None
        if mean.shape != (shape[0],) or std.shape != (shape[0],) or not np.all(std > 0):
            raise NumbaflipInputError(
                f"{os.fspath(path)!r} has inconsistent normalisation statistics; refit it")
        model.eval()
        enc._model, enc._mean, enc._std = model, mean, std
        enc.input_shape_ = shape
        enc.loss_history_ = list(blob.get("loss_history", []))
        enc.fit_seconds_ = float(blob.get("fit_seconds", float("nan")))
        enc.fit_threads_ = int(blob.get("fit_threads", 0))
        return enc


def _check_scale(scale):
    try:
        lo, hi = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise NumbaflipInputError(
            f"scale must be a pair (low, high) of zoom factors, got {scale!r}") from None
    if not (0.1 <= lo <= hi <= 10):
        raise NumbaflipInputError(
            f"scale must satisfy 0.1 ≤ low ≤ high ≤ 10, got {scale!r}")
    return (lo, hi)


def _channel_stats(x: np.ndarray):
    """Per-channel mean and standard deviation of the images (label-free normalisation)."""
    mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def _new_model(torch, tm, enc, channels):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(enc.seed)
        return tm.Encoder(channels, enc.width, enc.dim, enc.dim)


class _threads:
    """Context manager: torch.set_num_threads(n) inside, the previous count restored after."""

    def __init__(self, torch, n):
        self.torch, self.n = torch, n

    def __enter__(self):
        self.before = self.torch.get_num_threads()
        if self.n is not None:
            self.torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.before)


def _read_blob(torch, path):
    try:
        fspath = os.fspath(path)
    except TypeError:
        raise NumbaflipInputError(
            f"path must be a string or os.PathLike, got {type(path).__name__}") from None
    if not os.path.isfile(fspath):
        raise NumbaflipInputError(f"encoder file not found (or not a regular file): {fspath!r}")
    if os.path.getsize(fspath) > _MAX_FILE_BYTES:
        raise NumbaflipInputError(
            f"{fspath!r} is larger than {_MAX_FILE_BYTES} bytes; not a numbaflip encoder file")
    try:
        blob = torch.load(fspath, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or hostile file
        raise NumbaflipInputError(
            f"cannot read {fspath!r} as a numbaflip encoder ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); pass a file written by "
            "ContrastiveEncoder.save") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise NumbaflipInputError(
            f"{fspath!r} is not a numbaflip encoder file (no {FORMAT!r} tag); pass a file "
            "written by ContrastiveEncoder.save")
    if blob.get("format_version") != FORMAT_VERSION:
        raise NumbaflipInputError(
            f"{fspath!r} was written in encoder format version {blob.get('format_version')!r} "
            f"(numbaflip {blob.get('numbaflip_version', '?')}); this numbaflip reads version "
            f"{FORMAT_VERSION}: refit the encoder with this version and save it again")
    return blob
