"""Style codes: the 8 floats that say how a face is rendered, and where they came from.

A GNR generator renders a content code with an 8-d style latent (``latent_dim``), mapped by its MLP
to 512-d. The authors sample styles as ``torch.randn(latent_dim)`` and take a reference style from
an anime (B-domain) image with the anime->face generator's style encoder
(``G_B2A_ema.encode(anime).style``). :class:`StyleCode` holds such a vector with a human-readable
``source`` and is what export (baked ONNX graphs, engines) and the apps pass around.

    StyleCode.default()                             # what the apps use when no style is given
    StyleCode.from_seed(42)                         # the authors' sampling, reproducible
    StyleCode.from_file("style.npy")                # 8 floats saved with np.save / StyleCode.save
    StyleCode.from_image("anime.png", "ckpt.pt")    # the style of an anime face
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .fileio import atomic_path
from .messages import one_line

if TYPE_CHECKING:
    import torch

__all__ = ["StyleCode", "StyleError", "DEFAULT_LATENT_DIM", "DEFAULT_STYLE_SEED", "load_style_image"]

DEFAULT_LATENT_DIM = 8
DEFAULT_STYLE_SEED = 0          # the style every app and the exporter use when none is given


class StyleError(ValueError):
    """A style that cannot be used: wrong length, non-finite values, unreadable file or image."""


@dataclass(frozen=True)
class StyleCode:
    """One style latent (``latent_dim`` floats, 8 for the released model) and where it came from
    (``"seed 42"``, ``"file style.npy"``, ``"image anime.png via G_B2A_ema of ckpt.pt"``)."""

    vector: tuple[float, ...]
    source: str = "vector"

    def __post_init__(self) -> None:
        try:
            vec = tuple(float(v) for v in np.asarray(self.vector, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError) as e:
            raise StyleError(f"a style must be a sequence of numbers: {e}") from None
        if not vec:
            raise StyleError("a style needs at least one value (the released model uses 8)")
        if not all(math.isfinite(v) for v in vec):
            raise StyleError(f"style from {self.source} contains NaN or infinite values")
        object.__setattr__(self, "vector", vec)
        object.__setattr__(self, "source", str(self.source))

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def default(cls, dim: int = DEFAULT_LATENT_DIM) -> "StyleCode":
        """The style used when none is asked for: seed :data:`DEFAULT_STYLE_SEED`."""
        return cls.from_seed(DEFAULT_STYLE_SEED, dim)

    @classmethod
    def from_seed(cls, seed: int, dim: int = DEFAULT_LATENT_DIM) -> "StyleCode":
        """``torch.randn(dim)`` from a generator seeded with ``seed`` (the authors' sampling;
        the same vector as ``torch.manual_seed(seed); torch.randn(1, dim)`` on the CPU)."""
        import torch

        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise StyleError(f"style seed must be an integer, got {seed!r}")
        if not 0 <= int(seed) < 2 ** 63:
            raise StyleError(f"style seed must be in [0, 2**63), got {seed}")
        gen = torch.Generator().manual_seed(int(seed))
        vec = torch.randn(1, int(dim), generator=gen)[0]
        return cls(tuple(vec.tolist()), f"seed {int(seed)}")

    @classmethod
    def from_vector(cls, values: Sequence[float] | np.ndarray | "torch.Tensor", source: str = "vector",
                    dim: int | None = None) -> "StyleCode":
        arr = _as_array(values)
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 1:
            raise StyleError(f"style from {source} must be a vector of {dim or 'N'} floats "
                             f"(or 1 x {dim or 'N'}), got shape {arr.shape}")
        if dim is not None and arr.shape[0] != dim:
            raise StyleError(f"style from {source} has {arr.shape[0]} values, the model needs {dim}")
        return cls(tuple(arr.tolist()), source)

    @classmethod
    def from_file(cls, path: str | os.PathLike, dim: int = DEFAULT_LATENT_DIM) -> "StyleCode":
        """A ``.npy`` file holding ``dim`` floats (shape (dim,) or (1, dim))."""
        path = Path(path)
        if not path.exists():
            raise StyleError(f"style vector file not found: {path}")
        if path.is_dir():
            raise StyleError(f"style vector path is a folder, not a .npy file: {path}")
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY" and magic[:2] != b"PK":
            raise StyleError(f"{path} is not a .npy file (save the style's {dim} floats with "
                             "numpy.save('style.npy', vector))")
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise StyleError(f"could not read {path} as a .npy array of {dim} floats (save one "
                             f"with numpy.save('style.npy', vector)): {one_line(e)}") from None
        if isinstance(arr, np.lib.npyio.NpzFile):  # pragma: no cover - .npz given
            arr.close()
            raise StyleError(f"{path} is an .npz archive; save the style with numpy.save (.npy)")
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise StyleError(f"{path} holds {arr.dtype} values, expected {dim} real numbers")
        if arr.shape not in ((dim,), (1, dim)):
            raise StyleError(f"{path} holds an array of shape {arr.shape}; a style is {dim} floats "
                             f"(shape ({dim},) or (1, {dim}))")
        arr = arr.astype(np.float64).reshape(-1)
        if not np.isfinite(arr).all():
            raise StyleError(f"{path} contains NaN or infinite values")
        return cls(tuple(arr.tolist()), f"file {path}")

    @classmethod
    def from_image(cls, image: str | os.PathLike | np.ndarray, checkpoint, *,
                   which: str = "G_B2A_ema", device: str = "cpu") -> "StyleCode":
        """The style of an anime face picture, read by the checkpoint's anime->face generator's
        style encoder (``G_B2A_ema``, as the authors take styles from B-domain images).

        ``image``: a file (PNG/JPEG/...) or an H x W x 3 uint8 RGB array, a roughly centred anime
        face like the authors' 256 x 256 anime crops (a non-square image is centre-cropped to a
        square, then resized to the model's size). ``checkpoint``: a checkpoint path, or an
        already loaded Generator (then ``which`` only names it in ``source``).
        """
        import torch
        from torch.nn import functional as F

        from .networks import Generator
        from .pixels import to_unit

        if isinstance(checkpoint, Generator):
            G, ck_name = checkpoint, "the given generator"
        else:
            from .checkpoint import load_generator
            G, ck_name = load_generator(checkpoint, which=which, device=device), Path(checkpoint).name
        if isinstance(image, np.ndarray):
            rgb, im_name = _check_rgb(image, "style image"), "array"
        else:
            rgb, im_name = load_style_image(image), Path(image).name
        h, w = rgb.shape[:2]
        side = min(h, w)
        rgb = rgb[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        dev = next(G.parameters()).device
        x = to_unit(torch.from_numpy(np.array(rgb, copy=True)).to(dev).permute(2, 0, 1)[None])
        if x.shape[-2:] != (G.size, G.size):
            x = F.interpolate(x, size=(G.size, G.size), mode="bilinear", antialias=True,
                              align_corners=False).clamp(-1, 1)
        with torch.no_grad():
            style = G.encode(x).style[0].double().cpu()
        return cls(tuple(style.tolist()), f"image {im_name} via {which} of {ck_name}")

    # -- conversions ---------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.vector)

    def numpy(self, dtype=np.float32) -> np.ndarray:
        return np.asarray(self.vector, dtype=dtype)

    def tensor(self, device=None, dtype=None) -> "torch.Tensor":
        """1 x dim tensor (float32 unless ``dtype`` says otherwise)."""
        import torch

        return torch.tensor([self.vector], dtype=dtype or torch.float32, device=device)

    def check_dim(self, dim: int) -> "StyleCode":
        if self.dim != dim:
            raise StyleError(f"style from {self.source} has {self.dim} values, the model needs {dim}")
        return self

    def to_dict(self) -> dict:
        return {"vector": list(self.vector), "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "StyleCode":
        if not isinstance(d, dict) or "vector" not in d:
            raise StyleError(f"a style dict needs a 'vector' key, got {d!r:.80}")
        return cls(tuple(d["vector"]), d.get("source", "vector"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the vector as a float32 ``.npy`` file, atomically (temp file + rename)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, self.numpy())
        return path

    def __str__(self) -> str:
        vals = ", ".join(f"{v:+.3f}" for v in self.vector)
        return f"style ({self.source}): [{vals}]"


def _as_array(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise StyleError(f"a style must be numbers: {e}") from None


def _check_rgb(img: np.ndarray, what: str) -> np.ndarray:
    if img.dtype != np.uint8:
        raise StyleError(f"{what} must be uint8 RGB (0..255), got dtype {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise StyleError(f"{what} must be H x W x 3 RGB, got shape {img.shape}")
    return img[..., :3]


def load_style_image(path: str | os.PathLike) -> np.ndarray:
    """An anime picture as H x W x 3 uint8 RGB (the one image reader), errors as StyleError."""
    from .images import ImageReadError, read_image_rgb

    try:
        return read_image_rgb(path)
    except ImageReadError as e:
        raise StyleError(str(e)) from None
