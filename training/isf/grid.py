"""Grids of edits: rows are base styles (a face's content + a style code), columns the unedited
render, then one column per attribute value asked for. Used for the training samples and for
``python -m training.isf grid``."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..pixels import batch_to_images
from .attributes import AttributeVocab


def all_edits(vocab: AttributeVocab) -> list[dict[str, str]]:
    """Every single-attribute edit, attribute by attribute, value by value."""
    return [{n: v} for n, vals in zip(vocab.names, vocab.values) for v in vals]


@torch.no_grad()
def render_edits(G, edit_fn, contents: torch.Tensor, codes: torch.Tensor,
                 columns: Sequence[Mapping[str, str]], use_mapping: bool = True) -> np.ndarray:
    """rows x (1 + len(columns)) tiles as one H x W x 3 uint8 image. ``edit_fn(codes, edits)``
    returns edited codes (in the space ``G.decode`` takes with ``use_mapping``)."""
    tiles = [G.decode(contents, codes, use_mapping=use_mapping)]
    for edits in columns:
        tiles.append(G.decode(contents, edit_fn(codes, edits), use_mapping=use_mapping))
    imgs = [batch_to_images(t) for t in tiles]                       # k x (N x S x S x 3)
    rows = [np.concatenate([im[r] for im in imgs], axis=1) for r in range(len(contents))]
    return np.concatenate(rows, axis=0)


def with_header(grid: np.ndarray, tile: int, labels: Sequence[str], scale: int = 1) -> np.ndarray:
    """Upscale ``grid`` by ``scale`` (nearest) and put one text label above each column."""
    from PIL import Image, ImageDraw
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    t = tile * scale
    head = 14 * max(1, scale // 2) + 6
    out = Image.new("RGB", (img.width, img.height + head), (255, 255, 255))
    out.paste(img, (0, head))
    d = ImageDraw.Draw(out)
    for i, text in enumerate(labels):
        d.text((i * t + 3, 3), text, fill=(0, 0, 0))
    return np.asarray(out)


def save_grid(img: np.ndarray, path: str | Path) -> Path:
    """Write an H x W x 3 uint8 grid as a PNG (written beside, then renamed)."""
    from ..loop import save_png
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).float() / 255, path)
    return path


def make_grid(isf_path, checkpoint, data_a, out, *, rows: int = 6,
              edits: Sequence[str] | None = None, seed: int = 0, edit_seed: int = 0,
              scale: int = 2) -> Path:
    """The edit grid of an ISF on a GNR checkpoint: ``rows`` faces of ``data_a`` with random
    styles; columns: unedited, then each edit (default: every value of every attribute), with
    a text header."""
    from ..checkpoint import load_generator
    from .api import load_isf
    from .data import content_bank, face_paths, load_images

    isf = load_isf(isf_path, checkpoint=checkpoint)
    G = load_generator(checkpoint)
    columns = [isf.parse(e) for e in edits] if edits else all_edits(isf.vocab)
    faces = load_images(face_paths(data_a, max(rows * 8, rows)), G.size)
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(faces), generator=gen)[:rows]
    contents = content_bank(G, faces[pick])
    z = torch.randn(len(contents), G.latent_dim, generator=gen)
    mapped = isf.space == "mapped"
    codes = G.mapping(z) if mapped else z
    grid = render_edits(G, lambda c, e: isf.edit_codes(c, e, seed=edit_seed), contents, codes,
                        columns, use_mapping=not mapped)
    labels = ["unedited"] + [",".join(f"{v}" if len(e) == 1 and k == "hair" else f"{k}={v}"
                                      for k, v in e.items()) for e in columns]
    return save_grid(with_header(grid, G.size, labels, scale), out)
