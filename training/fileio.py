"""File helpers every package uses: atomic writes (temporary file beside the target, fsync,
rename) and content hashes. A crash, a full disk or Ctrl-C never leaves a half-written file in
place of a good one.

They live here, in the model's home, because ``training`` is the lowest layer: ``export``,
``realtime`` and ``benchmarks`` all build on it and use these same helpers."""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


FILE_MODE = 0o644      # what a finished output gets: the owner writes, everyone reads


def temp_beside(path: str | os.PathLike, suffix: str = ".tmp", mode: int = FILE_MODE) -> Path:
    """A new, empty, hidden temporary file in ``path``'s folder (same file system, so a rename
    onto ``path`` is atomic), created with an explicit ``mode`` (mkstemp's is 0600). The
    process umask is never touched: other threads may be creating files at the same time."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block exits cleanly the temporary file is
    fsync'ed and renamed over ``path``. On any error (or Ctrl-C) it is removed and an existing
    ``path`` is left untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
