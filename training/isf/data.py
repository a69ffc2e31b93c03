"""Data for the ISF: labelled anime images in memory, the held-out split, and content codes.

* :func:`in_holdout` splits labelled images by a hash of their ``file`` name, so the ISF
  (``split="train"``) and the separately trained evaluation classifier (``split="holdout"``)
  never see the same image, whatever order the CSV lists them in.
* :func:`load_images` reads image files as one N x 3 x S x S uint8 tensor (a few thousand
  64 x 64 images are a few tens of MB: the ISF's steps are fast and need no loader processes).
* :func:`content_bank`: the generator is frozen, so the content codes of the face images the
  edits are rendered on are computed once. Without face images, content comes from the anime
  images turned into faces by the checkpoint's anime->face generator (``G_B2A_ema``) and encoded
  by the face->anime one, as GNR's own cycle does.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data import DataError, load_image, scan_folder
from ..pixels import to_unit
from ..train_config import DataSource
from .attributes import LabelledImages, LabelsError

log = logging.getLogger("training.isf")


def in_holdout(name: str, fraction: float) -> bool:
    """Whether ``name`` (a labels.csv ``file`` cell) is in the held-out share ``fraction``."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2 ** 64
    return h < fraction


def split(labelled: LabelledImages, fraction: float, which: str) -> LabelledImages:
    """The ``"train"`` (ISF) or ``"holdout"`` (evaluation classifier) part of ``labelled``."""
    if which not in ("train", "holdout", "all"):
        raise ValueError(f"split must be train, holdout or all, got {which!r}")
    if which == "all":
        return labelled
    keep = [in_holdout(n, fraction) == (which == "holdout") for n in labelled.names]
    if not any(keep):
        raise LabelsError(f"the {which} split (holdout fraction {fraction}) of the labels is empty; "
                          f"{len(keep)} labelled images in all: change --holdout")
    idx = np.flatnonzero(keep)
    return LabelledImages(labelled.vocab, tuple(labelled.files[i] for i in idx),
                          tuple(labelled.names[i] for i in idx), labelled.labels[idx])


def load_images(paths: Sequence[Path], size: int) -> torch.Tensor:
    """N x 3 x size x size uint8 (any mode/size is converted: RGB, centre square, resized)."""
    out = torch.empty(len(paths), 3, size, size, dtype=torch.uint8)
    for i, p in enumerate(paths):
        try:
            out[i] = torch.from_numpy(load_image(p, size)).permute(2, 0, 1)
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"could not read image {p}: {e}") from None
    return out


def unit(images: torch.Tensor, device=None) -> torch.Tensor:
    """uint8 N x 3 x S x S -> float in [-1, 1] on ``device``."""
    return to_unit(images.to(device) if device is not None else images)


def face_paths(sources: Sequence[DataSource], limit: int) -> list[Path]:
    """Up to ``limit`` images spread evenly over the face folders (weights set each folder's
    share)."""
    scans = [scan_folder(s.path) for s in sources]
    total = sum(s.weight for s in sources)
    out: list[Path] = []
    for scan, s in zip(scans, sources):
        n = min(len(scan.images), max(1, round(limit * s.weight / total)))
        idx = np.linspace(0, len(scan.images) - 1, num=n).round().astype(int)
        out += [scan.images[i] for i in idx]
    return out


@torch.no_grad()
def content_bank(G_A2B, faces: torch.Tensor | None, anime: torch.Tensor | None = None, G_B2A=None,
                 batch: int = 64, seed: int = 0) -> torch.Tensor:
    """Content codes (M x C x s x s, float32, on G's device) of ``faces`` (uint8), or, without
    faces, of the ``anime`` images turned into faces by ``G_B2A`` with a random style each."""
    dev = next(G_A2B.parameters()).device
    src = faces if faces is not None else anime
    if src is None or len(src) == 0:
        raise DataError("no images to take content codes from")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(src), batch):
        x = unit(src[i:i + batch], dev)
        if faces is None:
            if G_B2A is None:
                raise DataError("without face images (--data-a) content codes come from the anime "
                                "images through the checkpoint's G_B2A_ema, which is missing")
            z = torch.randn(len(x), G_B2A.latent_dim, generator=gen).to(dev)
            x = G_B2A.decode(G_B2A.encode(x).content, z).clamp(-1, 1)
        out.append(G_A2B.encode(x).content.float())
    return torch.cat(out)
