"""The one conversion between pixels and the model's value range.

Every network here takes and returns RGB in [-1, 1] (the authors' ``transforms.Normalize(0.5,
0.5)``); images on disk, frames from a camera and what a screen shows are uint8 0..255. These
two functions (and their numpy twins) are the only place that maps one onto the other:

    x = to_unit(pixels)            # uint8 (any layout) -> float32 in [-1, 1], same layout
    pixels = to_pixels(y)          # float in about [-1, 1] -> uint8, clamped and rounded

Layouts are not changed here (H×W×3 stays H×W×3; N×3×S×S stays N×3×S×S): callers permute.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["to_unit", "to_pixels", "to_unit_np", "to_pixels_np", "image_to_batch",
           "batch_to_images"]

SCALE = 127.5


def to_unit(pixels: "torch.Tensor", dtype=None) -> "torch.Tensor":
    """uint8 (or float 0..255) tensor -> float in [-1, 1] (float32 unless ``dtype``)."""
    import torch

    return pixels.to(dtype or torch.float32).div(SCALE).sub_(1.0)


def to_pixels(x: "torch.Tensor") -> "torch.Tensor":
    """Float tensor in about [-1, 1] -> uint8 0..255 (clamped, rounded to nearest)."""
    import torch

    return torch.round((x.float().clamp(-1.0, 1.0) + 1.0) * SCALE).to(torch.uint8)


def to_unit_np(pixels: np.ndarray, dtype=np.float32) -> np.ndarray:
    return pixels.astype(dtype) / np.asarray(SCALE, dtype) - np.asarray(1.0, dtype)


def to_pixels_np(x: np.ndarray) -> np.ndarray:
    return np.round((np.clip(x, -1.0, 1.0) + 1.0) * SCALE).astype(np.uint8)


def image_to_batch(image: np.ndarray, device=None) -> "torch.Tensor":
    """One H×W×3 uint8 image -> 1×3×H×W float32 in [-1, 1]."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(image))
    if device is not None:
        t = t.to(device)
    return to_unit(t.permute(2, 0, 1)[None])


def batch_to_images(x: "torch.Tensor") -> np.ndarray:
    """N×3×H×W float in [-1, 1] -> N×H×W×3 uint8 on the host."""
    return to_pixels(x.detach()).permute(0, 2, 3, 1).contiguous().cpu().numpy()
