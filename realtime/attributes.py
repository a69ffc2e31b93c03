"""Attribute-conditioned styles in the apps: the attribute model (an implicit style function,
:mod:`training.isf`) that goes with a model, checked against it, and the edits asked for on the
command line (``--edit hair=red --edit mouth=smile``, ``--edit-seed N``).

    attrs = open_attributes(isf_path, model_path=ckpt, edits=["hair=red"], seed=0)
    z2 = attrs.apply(z)               # a StyleCode again, with the edits in force
    attrs.parse(["eyes=red"])        # AttributeConfigError: one line listing the known ones

:class:`Attributes` also steps through the values of one attribute at a time
(:meth:`Attributes.cycle`), for the webcam's keys. Nothing here touches an engine: the apps edit
the style code and hand it to the engine as any other style (the engines, the exporter and the
style bank take the same 8 numbers).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from training.messages import one_line
from training.style import StyleCode

__all__ = ["Attributes", "AttributeConfigError", "open_attributes", "model_gnr_sha256"]


class AttributeConfigError(ValueError):
    """A missing, broken or mismatched attribute model, or an edit it does not know (one line,
    naming the flag)."""


def model_gnr_sha256(model_path: Path) -> str | None:
    """The sha256 of the GNR checkpoint ``model_path`` renders as: a GNR checkpoint's own, a
    student's teacher's, or what an exported ONNX graph records (its checkpoint's, or its
    teacher's for a student's graph). None where nothing says (a TensorRT engine)."""
    path = Path(model_path)
    if path.suffix.lower() == ".onnx":
        from export.onnx import read_info
        try:
            info = read_info(path)
        except Exception:  # noqa: BLE001 - opening the engine reports what is wrong with it
            return None
        if info is None:
            return None
        return (info.teacher or {}).get("sha256") or info.checkpoint_sha256
    if path.suffix.lower() in (".engine", ".plan", ".trt"):
        return None
    from training.isf.api import gnr_sha256
    return gnr_sha256(path)


@dataclass
class Attributes:
    """A loaded attribute model, the edits in force and the edit seed."""

    isf: object
    edits: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    _cycling: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.isf.attributes)

    @property
    def path(self) -> Path:
        return self.isf.path

    def parse(self, edits: Sequence[str] | None) -> dict[str, str]:
        from training.isf import EditError
        try:
            return self.isf.parse(list(edits or ()))
        except EditError as e:
            raise AttributeConfigError(f"--edit: {one_line(e)}") from None

    def apply(self, style: StyleCode, edits: dict[str, str] | None = None) -> StyleCode:
        """``style`` with ``edits`` (default: the edits in force) made, at this edit seed."""
        edits = self.edits if edits is None else edits
        return self.isf.edit(style, edits, seed=self.seed) if edits else style

    def describe_edits(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.edits.items()) or "no edits"

    # -- the webcam's keys -----------------------------------------------------------------------
    @property
    def cycling(self) -> str:
        """The attribute whose values :meth:`cycle` steps through."""
        return self.names[self._cycling % len(self.names)]

    def next_attribute(self) -> str:
        self._cycling = (self._cycling + 1) % len(self.names)
        return self.cycling

    def cycle(self) -> dict[str, str]:
        """Step the cycling attribute to its next value (after its last value: no edit of it,
        then the first value again); returns the edits in force."""
        name = self.cycling
        values = tuple(self.isf.attributes[name])
        now = self.edits.get(name)
        i = values.index(now) + 1 if now in values else 0
        if i >= len(values):
            self.edits.pop(name, None)
        else:
            self.edits[name] = values[i]
        return dict(self.edits)


def open_attributes(path: Path, *, model_path: Path | None, edits: Sequence[str] = (),
                    seed: int = 0, log: Callable[[str], None] = lambda m: None) -> Attributes:
    """Load the attribute model at ``path``, refuse one trained for another GNR checkpoint than
    ``model_path`` renders as, and parse ``edits``. Every failure is one
    :class:`AttributeConfigError` line naming ``--attributes`` or ``--edit``."""
    from training.isf import ISFError, load_isf

    try:
        isf = load_isf(path)
    except (ISFError, FileNotFoundError) as e:
        raise AttributeConfigError(f"--attributes: {one_line(e)}") from None
    if isf.space != "latent":
        raise AttributeConfigError(
            f"--attributes: {Path(path).name} edits the 512-d mapped style (trained with --space "
            "mapped); the engines take the 8-d code: train it with --space latent")
    if model_path is not None:
        sha = model_gnr_sha256(model_path)
        if sha is None:
            log(f"{Path(model_path).name} does not record its checkpoint: cannot check that "
                f"{Path(path).name} was trained for it")
        else:
            try:
                isf.check_gnr(sha256=sha, name=Path(model_path).name)
            except ISFError as e:
                raise AttributeConfigError(f"--attributes: {one_line(e)}") from None
    attrs = Attributes(isf, seed=int(seed))
    attrs.edits = attrs.parse(edits)
    return attrs
