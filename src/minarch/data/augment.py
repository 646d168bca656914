"""Whole-batch augmentation on the batch's own device, drawn from one generator.

A crop (with optional flip) is one ``gather`` from the zero-padded batch with
per-sample index grids: no per-sample Python loop, no torchvision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from minarch.errors import DataError

# kind -> whether 2-D images are also flipped left-right; "none" is the identity.
# The names a study may write are the recipe's (spec.schema.AUGMENTATIONS); a test
# checks each has its implementation here.
_FLIPS = {"crop": False, "crop-flip": True}
IMPLEMENTED = ("none", *_FLIPS)


def augment(x: Tensor, kind: str, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Augment (N, C, H, W) images or (N, C, L) signals; the same generator state repeats it.

    "crop" pads ``pad`` zeros on each side and crops back at a random offset
    (a random shift along L for signals); "crop-flip" also mirrors half of the
    images (signals are only shifted: a reversed signal is another signal).
    """
    if kind not in IMPLEMENTED:
        raise DataError(f"unknown augmentation {kind!r}; valid: {', '.join(IMPLEMENTED)}")
    if kind == "none":
        return x
    if x.dim() not in (3, 4):
        raise DataError(
            f"augment {kind!r} needs (N, C, L) or (N, C, H, W) input, got {tuple(x.shape)}"
        )
    if pad < 0:
        raise DataError(f"augment pad must be >= 0, got {pad}")
    image = x.dim() == 4
    return _random_crop(x, pad, flip=_FLIPS[kind] and image, generator=generator)


def _random_crop(x: Tensor, pad: int, *, flip: bool, generator: torch.Generator) -> Tensor:
    image = x.dim() == 4
    x4 = x if image else x.unsqueeze(2)
    n, c, h, w = x4.shape
    pad_h = pad if image else 0
    padded = F.pad(x4, (pad, pad, pad_h, pad_h)).reshape(n, c, -1)

    def draw(high: int) -> Tensor:
        return torch.randint(0, high, (n, 1), generator=generator, device=generator.device).to(
            x.device
        )

    rows = draw(2 * pad_h + 1) + torch.arange(h, device=x.device)
    cols = draw(2 * pad + 1) + torch.arange(w, device=x.device)
    if flip:
        mirrored = torch.rand(n, 1, generator=generator, device=generator.device).to(x.device) < 0.5
        cols = torch.where(mirrored, cols.flip(1), cols)
    index = rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]
    out = padded.gather(2, index.reshape(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
    return out if image else out.squeeze(2)
