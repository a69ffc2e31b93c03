"""Attributes: their vocabulary, ``labels.csv``, ``"hair=red"`` edits and the ISF's condition.

An :class:`AttributeVocab` is the ordered list of attribute names, each with its values (for the
demo data: ``hair`` black ... pink, ``hair_length`` short/long, ``mouth`` line/open/smile,
``blush`` no/yes, ``ribbon`` no/yes). It is read from ``labels.csv`` when an ISF is trained and
stored in the ISF's checkpoint, so every edit is checked against what that ISF knows.

The condition ``d`` the implicit style function takes is, per attribute, a one-hot over its
values plus one more slot, *keep*: an edit names only the attributes to change ({"hair": "red"})
and every other attribute is asked to stay as it is.

``labels.csv``: a ``file`` column (image paths relative to the anime folder, ``--data-b``) and one
column per attribute, categorical values (or 0/1). Every problem is one :class:`LabelsError` line
naming the line, the column and the fix.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

__all__ = ["AttributeVocab", "EditError", "LabelsError", "LabelledImages", "read_labels", "KEEP"]

KEEP = -1                       # "leave this attribute as it is" in index form
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_SHOWN_FILES = 3


class LabelsError(ValueError):
    """A labels.csv that cannot be trained on (missing column, unknown file, bad value...)."""


class EditError(ValueError):
    """An edit naming an unknown attribute or value; the message lists the known ones."""


def _natural(values: set[str]) -> tuple[str, ...]:
    try:
        return tuple(sorted(values, key=float))
    except ValueError:
        return tuple(sorted(values))


@dataclass(frozen=True)
class AttributeVocab:
    """Attribute names (in order) and the values each can take."""

    names: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        if not self.names:
            raise LabelsError("no attributes: labels.csv needs at least one column besides 'file'")
        if len(self.names) != len(self.values) or len(set(self.names)) != len(self.names):
            raise LabelsError(f"attribute names must be unique and each needs values: {self.names}")
        for name, vals in zip(self.names, self.values):
            if len(vals) < 2 or len(set(vals)) != len(vals):
                raise LabelsError(f"attribute {name!r} needs two or more distinct values, got {list(vals)}")

    # -- construction / storage ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Sequence[str]]) -> "AttributeVocab":
        return cls(tuple(str(k) for k in d), tuple(tuple(str(v) for v in vals) for vals in d.values()))

    def to_dict(self) -> dict[str, list[str]]:
        return {n: list(v) for n, v in zip(self.names, self.values)}

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def dim(self) -> int:
        """Length of the condition vector: each attribute's values plus its *keep* slot."""
        return sum(n + 1 for n in self.sizes)

    def describe(self) -> str:
        return "; ".join(f"{n} ({', '.join(v)})" for n, v in zip(self.names, self.values))

    # -- edits -----------------------------------------------------------------------------------
    def value_index(self, name: str, value: str) -> tuple[int, int]:
        """(attribute index, value index), or :class:`EditError` listing what is known."""
        if name not in self.names:
            raise EditError(f"unknown attribute {name!r}; known attributes: {self.describe()}")
        a = self.names.index(name)
        if value not in self.values[a]:
            raise EditError(f"unknown value {value!r} for {name!r}; known values: "
                            f"{', '.join(self.values[a])} (all attributes: {self.describe()})")
        return a, self.values[a].index(value)

    def parse_edits(self, edits: str | Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
        """``"hair=red"``, ``"hair=red,mouth=smile"``, ``["hair=red", "mouth=smile"]`` or
        ``{"hair": "red"}`` -> ``{"hair": "red", ...}``, every name and value checked. Naming
        one attribute twice with different values is an error."""
        if edits is None:
            return {}
        if isinstance(edits, Mapping):
            pairs = [(str(k), str(v)) for k, v in edits.items()]
        else:
            items = [edits] if isinstance(edits, str) else list(edits)
            pairs = []
            for item in items:
                if not isinstance(item, str):
                    raise EditError(f"an edit is a string like 'hair=red', got {item!r}")
                for part in item.split(","):
                    part = part.strip()
                    if not part:
                        continue
                    name, sep, value = part.partition("=")
                    if not sep or not name.strip() or not value.strip():
                        raise EditError(f"an edit is ATTRIBUTE=VALUE (e.g. hair=red), got {part!r}; "
                                        f"known attributes: {self.describe()}")
                    pairs.append((name.strip(), value.strip()))
        out: dict[str, str] = {}
        for name, value in pairs:
            self.value_index(name, value)
            if name in out and out[name] != value:
                raise EditError(f"{name!r} is asked to be both {out[name]!r} and {value!r}")
            out[name] = value
        return out

    def indices(self, edits: Mapping[str, str]) -> list[int]:
        """One entry per attribute: the value index asked for, or :data:`KEEP`."""
        idx = [KEEP] * len(self.names)
        for name, value in edits.items():
            a, v = self.value_index(name, value)
            idx[a] = v
        return idx

    def encode(self, idx: torch.Tensor) -> torch.Tensor:
        """N x A value indices (:data:`KEEP` = leave as is) -> the N x ``dim`` condition."""
        if idx.ndim != 2 or idx.shape[1] != len(self.names):
            raise ValueError(f"expected N x {len(self.names)} attribute indices, got {tuple(idx.shape)}")
        parts = []
        for a, n in enumerate(self.sizes):
            col = idx[:, a].long()
            col = torch.where(col < 0, torch.full_like(col, n), col)      # KEEP -> the last slot
            parts.append(torch.nn.functional.one_hot(col, n + 1))
        return torch.cat(parts, dim=1).float()


# -------------------------------------------------------------------------------------------------
# labels.csv
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledImages:
    """The rows of a labels.csv: image files (resolved) and their value indices (N x A)."""

    vocab: AttributeVocab
    files: tuple[Path, ...]
    names: tuple[str, ...]          # the ``file`` cells as written (relative to the image folder)
    labels: np.ndarray              # N x A int64


def read_labels(path: str | Path, image_dir: str | Path,
                attributes: Sequence[str] | None = None) -> LabelledImages:
    """Read and check ``path``. ``file`` cells are resolved against ``image_dir`` (absolute paths
    are taken as they are). ``attributes`` keeps only those columns (default: every column)."""
    path, image_dir = Path(path), Path(image_dir)
    if not path.is_file():
        raise LabelsError(f"labels file not found: {path}" if not path.exists()
                          else f"labels path {path} is not a file")
    if not image_dir.is_dir():
        raise LabelsError(f"image folder not found: {image_dir} (the folder labels.csv's 'file' "
                          "column is relative to, --data-b)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise LabelsError(f"could not read {path} as CSV: {e}") from None
    rows = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not rows:
        raise LabelsError(f"{path} is empty; it needs a header line: file,ATTRIBUTE,...")
    header = [c.strip() for c in rows[0][1]]
    if "file" not in header:
        raise LabelsError(f"{path} has no 'file' column (header: {', '.join(header)}); the first "
                          "line must name the columns, e.g. file,hair,mouth")
    columns = [c for c in header if c != "file"]
    for c in columns:
        if not _NAME.match(c):
            raise LabelsError(f"{path}: column name {c!r} is not a plain name "
                              "(letters, digits, _ - .)")
    if len(set(header)) != len(header):
        raise LabelsError(f"{path}: a column is named twice in the header ({', '.join(header)})")
    if attributes:
        unknown = [a for a in attributes if a not in columns]
        if unknown:
            raise LabelsError(f"--attributes {', '.join(unknown)}: not a column of {path} "
                              f"(columns: {', '.join(columns)})")
        columns = list(attributes)
    if not columns:
        raise LabelsError(f"{path} has only a 'file' column; add one column per attribute")
    col_at = {c: header.index(c) for c in ["file", *columns]}
    names: list[str] = []
    cells: list[list[str]] = []
    seen: dict[str, int] = {}
    missing: list[tuple[int, str]] = []
    files: list[Path] = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise LabelsError(f"{path} line {line}: {len(row)} cells, the header has {len(header)}")
        name = row[col_at["file"]].strip()
        if not name:
            raise LabelsError(f"{path} line {line}: empty 'file' cell")
        if name in seen:
            raise LabelsError(f"{path} line {line}: {name!r} is listed twice (first on line {seen[name]})")
        seen[name] = line
        vals = []
        for c in columns:
            v = row[col_at[c]].strip()
            if not v:
                raise LabelsError(f"{path} line {line}: empty value for {c!r} (file {name})")
            if not _NAME.match(v):
                raise LabelsError(f"{path} line {line}: value {v!r} of {c!r} is not a plain name "
                                  "(letters, digits, _ - .; no spaces, commas or '=')")
            vals.append(v)
        p = Path(name) if Path(name).is_absolute() else image_dir / name
        if not p.is_file():
            missing.append((line, name))
        files.append(p)
        names.append(name)
        cells.append(vals)
    if missing:
        shown = ", ".join(f"{n!r} (line {ln})" for ln, n in missing[:_SHOWN_FILES])
        more = f" and {len(missing) - _SHOWN_FILES} more" if len(missing) > _SHOWN_FILES else ""
        raise LabelsError(f"{path}: {len(missing)} file(s) not found in {image_dir}: {shown}{more} "
                          "('file' is relative to the anime folder given with --data-b)")
    if not cells:
        raise LabelsError(f"{path} has a header but no rows")
    values = []
    for a, c in enumerate(columns):
        found = {r[a] for r in cells}
        if len(found) < 2:
            raise LabelsError(f"{path}: attribute {c!r} has only one value ({next(iter(found))!r}); "
                              "nothing to learn (drop the column or add other values)")
        values.append(_natural(found))
    vocab = AttributeVocab(tuple(columns), tuple(values))
    labels = np.array([[values[a].index(r[a]) for a in range(len(columns))] for r in cells],
                      dtype=np.int64)
    return LabelledImages(vocab, tuple(files), tuple(names), labels)
