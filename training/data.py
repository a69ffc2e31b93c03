"""Image folders for training: checked up front, mixed by weight, sampled reproducibly.

* ``scan_folder`` lists the images of a folder (recursively, sorted), reads each file's header
  and sets aside the ones that do not decode, so a run fails at start-up with a clear message on a
  missing or empty folder or a folder of non-images, instead of hours later.
* ``ImageFolderSet`` decodes lazily: any mode (grayscale, palette, RGBA, 16-bit) becomes RGB; a
  non-square image is centre-cropped to a square; any size is resized to the model's size. A file
  that fails to decode later (truncated on disk) is reported once and replaced by the next image.
* ``MixSampler`` draws from several folders by weight (``--data-a selfies:3 celeba_male:1``), is
  sharded across DDP ranks (each rank reads a disjoint stream, like ``DistributedSampler``) and is a
  pure function of (seed, position): resuming at step ``s`` continues the exact same stream.
"""
from __future__ import annotations

import bisect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .messages import one_line
from .images import IMAGE_EXTENSIONS, read_image_rgb
from .pixels import to_unit
from .train_config import DataSource

log = logging.getLogger(__name__)



class DataError(ValueError):
    """A data folder that cannot be trained on (missing, empty, no decodable images)."""


@dataclass(frozen=True)
class FolderScan:
    folder: Path
    images: tuple[Path, ...]
    bad: tuple[tuple[Path, str], ...]      # image-named files that do not decode, with the reason
    other: int                             # files without an image extension


def _check_header(path: Path) -> str | None:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.size   # header read only; full decode happens when the image is used
            if im.width < 1 or im.height < 1:
                return "empty image"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        return f"{type(e).__name__}: {one_line(e)}"
    return None


def scan_folder(folder: str | os.PathLike, check: bool = True) -> FolderScan:
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"data folder {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"data path {folder} is a file, not a folder of images")
    images: list[Path] = []
    bad: list[tuple[Path, str]] = []
    other: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = Path(root) / name
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                other.append(p)
                continue
            reason = _check_header(p) if check else None
            (bad.append((p, reason)) if reason else images.append(p))
    if not images:
        if bad:
            shown = "; ".join(f"{p.name}: {r}" for p, r in bad[:3])
            raise DataError(f"none of the {len(bad)} image files in {folder} could be read "
                            f"(first: {shown})")
        example = ", ".join(p.name for p in other[:3])
        raise DataError(f"no images in {folder}: found {len(other)} other files"
                        + (f" (e.g. {example})" if other else "")
                        + f"; supported extensions: {' '.join(IMAGE_EXTENSIONS)}")
    if bad:
        log.warning("%s: skipping %d unreadable image file(s), first: %s (%s)", folder, len(bad),
                    bad[0][0].name, bad[0][1])
    return FolderScan(folder, tuple(images), tuple(bad), len(other))


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """Any image file -> size x size x 3 uint8 RGB (centre square crop, high-quality resize)."""
    from PIL import Image
    im = Image.fromarray(read_image_rgb(path))
    w, h = im.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(im, dtype=np.uint8).copy()


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float in [-1, 1]."""
    return to_unit(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1))


class ImageFolderSet(Dataset):
    """The images of one or more folders, as 3 x S x S tensors in [-1, 1]."""

    def __init__(self, paths: Sequence[Path], size: int):
        if not paths:
            raise DataError("no images")
        self.paths = list(paths)
        self.size = int(size)
        self._reported: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        n = len(self.paths)
        for k in range(min(n, 64)):
            i = (index + k) % n
            try:
                return to_tensor(load_image(self.paths[i], self.size))
            except (OSError, ValueError, SyntaxError) as e:
                if i not in self._reported:
                    self._reported.add(i)
                    log.warning("could not decode %s (%s); using the next image instead",
                                self.paths[i], e)
        raise DataError(f"64 consecutive images starting at {self.paths[index]} failed to decode")


class MixedFolders:
    """Several folders with weights: one flat index space plus each folder's range in it."""

    def __init__(self, sources: Sequence[DataSource], size: int, check: bool = True, what: str = "data"):
        if not sources:
            raise DataError(f"no {what} folder given")
        self.sources = list(sources)
        self.scans = [scan_folder(s.path, check=check) for s in self.sources]
        paths = [p for scan in self.scans for p in scan.images]
        self.offsets = [0]
        for scan in self.scans:
            self.offsets.append(self.offsets[-1] + len(scan.images))
        self.dataset = ImageFolderSet(paths, size)
        total = sum(s.weight for s in self.sources)
        self.weights = [s.weight / total for s in self.sources]

    def __len__(self) -> int:
        return len(self.dataset)

    def folder_of(self, index: int) -> int:
        return bisect.bisect_right(self.offsets, index) - 1

    def describe(self) -> str:
        return ", ".join(f"{scan.folder} ({len(scan.images)} images, weight {w:.3g}"
                         + (f", {len(scan.bad)} unreadable" if scan.bad else "") + ")"
                         for scan, w in zip(self.scans, self.weights))


class MixSampler(Sampler[int]):
    """Endless stream of dataset indices, a pure function of (seed, position).

    Positions are grouped in rounds of ``len(dataset)`` draws. In each round, every folder is
    walked in a fresh random order; with one folder a round is exactly a random permutation (an
    epoch), with several the folder of each draw is picked by weight. Rank ``r`` of ``world`` takes
    positions ``r, r + world, r + 2 world, ...`` and ``start`` skips the first ``start`` of them.
    """

    def __init__(self, mix: MixedFolders, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        self.sizes = [b - a for a, b in zip(mix.offsets[:-1], mix.offsets[1:])]
        self.offsets = mix.offsets
        self.weights = torch.tensor(mix.weights, dtype=torch.float64)
        self.round = sum(self.sizes)
        self.seed, self.rank, self.world, self.start = int(seed), int(rank), int(world), int(start)
        self._cache: tuple[int, list[int]] | None = None

    def _round_indices(self, r: int) -> list[int]:
        if self._cache is not None and self._cache[0] == r:
            return self._cache[1]
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + r) % (2 ** 63))
        perms = [torch.randperm(n, generator=g) for n in self.sizes]
        if len(self.sizes) == 1:
            out = perms[0].tolist()
        else:
            folder = torch.multinomial(self.weights, self.round, replacement=True, generator=g).tolist()
            counters = [0] * len(self.sizes)
            out = []
            for f in folder:
                out.append(self.offsets[f] + int(perms[f][counters[f] % self.sizes[f]]))
                counters[f] += 1
        self._cache = (r, out)
        return out

    def index_at(self, k: int) -> int:
        p = k * self.world + self.rank
        return self._round_indices(p // self.round)[p % self.round]

    def __iter__(self) -> Iterator[int]:
        k = self.start
        while True:
            yield self.index_at(k)
            k += 1

    def __len__(self) -> int:        # endless; DataLoader only needs a number
        return 2 ** 62


def _worker_init(_worker_id: int) -> None:
    """Loader processes ignore Ctrl-C: the main process finishes its step, saves, and stops them."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM too: `kill -TERM -PGID`, GNU timeout and job schedulers signal the whole process
    # group; a worker that died of it would make the main process fail in its SIGCHLD handler
    # instead of saving. The main process shuts its workers down itself.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(mix: MixedFolders, batch: int, seed: int, rank: int, world: int, start_step: int,
                workers: int) -> Iterator[torch.Tensor]:
    """Batches of ``batch`` images for this rank, starting at training step ``start_step``."""
    sampler = MixSampler(mix, seed, rank, world, start=start_step * batch)
    loader = DataLoader(mix.dataset, batch_size=batch, sampler=sampler, drop_last=True,
                        num_workers=workers, persistent_workers=False,
                        pin_memory=torch.cuda.is_available(),
                        prefetch_factor=2 if workers > 0 else None,
                        worker_init_fn=_worker_init if workers > 0 else None)
    return iter(loader)


def fixed_images(mix: MixedFolders, n: int) -> torch.Tensor:
    """``n`` images spread evenly over the data (the same every time): the sample grid's rows."""
    total = len(mix)
    idx = np.linspace(0, total - 1, num=min(n, total)).round().astype(int)
    return torch.stack([mix.dataset[int(i)] for i in idx])
