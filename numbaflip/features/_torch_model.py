"""The PyTorch side of :class:`numbaflip.features.ContrastiveEncoder` (imported only when used).

A small convolutional encoder, the augmentations that make two views of an image, and the
NT-Xent loss of SimCLR (Chen et al., 2020).  Nothing here ever sees a label: the only
supervision is "these two views come from the same image".
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Encoder", "augment", "nt_xent", "train_epoch", "embed"]


class Encoder(nn.Module):
    """Three stride-2 3×3 convolution blocks (batch norm, ReLU) of width, 2·width and 2·width
    channels, average pooling to a 2×2 grid (which keeps the coarse layout of the image: where
    the object is, not only what textures it has), and a linear map to ``dim`` features.

    ``project`` is the SimCLR projection head: the loss is computed on its output, while the
    features returned by :meth:`forward` are taken before it (they transfer better).  Stride-2
    convolutions instead of pooling keep a CPU step cheap: the full-resolution activations are
    the costly part of a small network.
    """

    def __init__(self, channels: int, width: int, dim: int, proj_dim: int):
        super().__init__()

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*block(channels, width), *block(width, 2 * width),
                                  *block(2 * width, 2 * width), nn.AdaptiveAvgPool2d(2),
                                  nn.Flatten(), nn.Linear(8 * width, dim))
        self.project = nn.Sequential(nn.Linear(dim, 2 * dim, bias=False),
                                     nn.BatchNorm1d(2 * dim), nn.ReLU(),
                                     nn.Linear(2 * dim, proj_dim))

    def forward(self, x):
        return self.body(x)


def augment(x, gen, *, rotation: float, shift: float, scale: tuple, dropout: float,
            flip: bool = True, jitter: float = 0.0):
    """A random view of every image of the batch ``x`` (B, C, H, W), drawn from ``gen``.

    Random affine map (rotation up to ``rotation`` degrees, translation up to ``shift`` of the
    image size, isotropic scale in ``scale``), bilinear resampling with zero padding, then
    pixel dropout with probability ``dropout``.  A scale s > 1 zooms in (a crop of 1/s of
    the side); with ``flip`` half of the views are mirrored left to right; ``jitter`` scales
    the contrast by a factor in [1 − jitter, 1 + jitter] and shifts the brightness by up to
    ± jitter (in units of the normalised pixels), so that two views cannot be matched by
    their overall brightness alone (the grey-scale counterpart of SimCLR's colour jitter).
    """
    b = x.shape[0]
    u = torch.rand(b, 7, generator=gen, dtype=x.dtype)
    angle = (2 * u[:, 0] - 1) * (rotation * math.pi / 180)
    s = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    mirror = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(b, dtype=x.dtype)
    theta = torch.stack([torch.stack([cos * mirror, -sin, (2 * u[:, 2] - 1) * 2 * shift], 1),
                         torch.stack([sin, cos, (2 * u[:, 3] - 1) * 2 * shift], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if jitter > 0:
        gain = 1 + jitter * (2 * u[:, 5] - 1)
        offset = jitter * (2 * u[:, 6] - 1)
        out = out * gain[:, None, None, None] + offset[:, None, None, None]
    if dropout > 0:
        keep = torch.rand(out.shape, generator=gen, dtype=x.dtype) >= dropout
        out = out * keep
    return out


def nt_xent(z, temperature: float):
    """NT-Xent loss of SimCLR for 2B projections ``z``: rows i and i + B are the positive pair."""
    z = F.normalize(z, dim=1)
    sim = z @ z.T / temperature
    n2 = z.shape[0]
    sim = sim.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
    b = n2 // 2
    target = torch.cat([torch.arange(b, n2), torch.arange(0, b)])
    return F.cross_entropy(sim, target)


def train_epoch(model, opt, sched, data, gen, params, bar):
    """One pass over ``data`` (N, C, H, W) in shuffled batches; returns the mean loss."""
    model.train()
    n, bs = data.shape[0], params["batch_size"]
    order = torch.randperm(n, generator=gen)
    total, steps = 0.0, n // bs
    aug = {k: params[k] for k in ("rotation", "shift", "scale", "dropout", "flip", "jitter")}
    for i in range(steps):
        x = data[order[i * bs:(i + 1) * bs]]
        views = torch.cat([augment(x, gen, **aug), augment(x, gen, **aug)])
        loss = nt_xent(model.project(model(views)), params["temperature"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += float(loss.detach())
        bar.update(1)
        bar.set_postfix(loss=f"{total / (i + 1):.3f}", refresh=False)
    return total / steps


@torch.no_grad()
def embed(model, data, batch: int = 1024):
    """Features of ``data`` (N, C, H, W) in evaluation mode, as a float64 tensor (N, dim)."""
    model.eval()
    return torch.cat([model(data[i:i + batch]).double() for i in range(0, data.shape[0], batch)])
