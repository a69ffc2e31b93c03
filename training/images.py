"""The one still-image reader: any image file -> H×W×3 uint8 RGB.

EXIF orientation is applied (a phone photo comes out the way it is shown), 16-bit images are
scaled to 8 bits, palette and grayscale images become RGB, and transparency is composited over
mid-grey (128, which is 0 in the model's [-1, 1]: the neutral value the aligner also uses outside
the frame). Pillow does the decoding.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .messages import one_line

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "read_image_rgb", "is_image_path"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """A file that is missing, a folder, or does not decode as an image."""


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read ``path`` as H×W×3 uint8 RGB (see the module docstring); ImageReadError otherwise."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"image not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"expected an image file, got a folder: {path}")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                im = Image.fromarray(np.clip(arr / max(arr.max(), 1.0) * 255.0, 0, 255).astype(np.uint8))
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (128, 128, 128, 255))
                im = Image.alpha_composite(bg, im)
            rgb = np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        why = one_line(e).replace(f" '{path}'", "").replace(f" {path}", "")
        raise ImageReadError(f"could not read {path} as an image (PNG/JPEG/WebP...): {why}") from None
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageReadError(f"{path}: the image is empty")
    return rgb
