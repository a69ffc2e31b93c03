"""How the anime face is put back, and the attribute controls of an attribute model.

* :class:`LookControls`: the paste mode (``head``: the anime head replaces the person's head and
  hair, the default; ``face``: the inner face only; ``box``: the whole crop, faded) and matching
  the real face's colour — the ``paste`` and ``match_colour`` fields of
  :class:`realtime.compose.FaceOptions`, as ``--paste`` and ``--match-colour`` set them.
* :class:`AttributePanel`: hidden until an attribute model is loaded. Such a model offers
  ``attributes`` (attribute name → the values it can take) and ``edit(z, {name: value}, seed)``
  → a new style code; each choice edits the current style (in the background) and the live
  view blends to the result.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QSpinBox, QWidget)

from ..compose import PASTE_MODES, FaceOptions

__all__ = ["LookControls", "AttributePanel"]

_PASTE_TEXT = {"head": "head and hair", "face": "inner face only", "box": "whole crop (sticker)"}


class LookControls(QWidget):
    """``changed(FaceOptions)`` when the user picks another paste mode or colour matching."""

    changed = Signal(object)

    def __init__(self, faces: FaceOptions, parent: QWidget | None = None):
        super().__init__(parent)
        self.faces = faces
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Paste"))
        self.paste = QComboBox()
        for m in PASTE_MODES:
            self.paste.addItem(_PASTE_TEXT.get(m, m), m)
        self.paste.setCurrentIndex(PASTE_MODES.index(faces.paste))
        self.paste.setToolTip("What the anime crop replaces (--paste)")
        self.paste.currentIndexChanged.connect(self._changed)
        lay.addWidget(self.paste, 1)
        self.match = QCheckBox("match colour")
        self.match.setChecked(faces.match_colour)
        self.match.setToolTip("Tint the anime face to the real face's colour under the room's "
                              "light (--match-colour)")
        self.match.toggled.connect(self._changed)
        lay.addWidget(self.match)

    def _changed(self) -> None:
        self.faces = dataclasses.replace(self.faces, paste=self.paste.currentData(),
                                         match_colour=self.match.isChecked())
        self.changed.emit(self.faces)


class AttributePanel(QGroupBox):
    """Attribute controls (see the module docstring). ``edited(np.ndarray)`` carries the new
    style; ``failed(str)`` one line when an edit fails."""

    edited = Signal(object)
    failed = Signal(str)

    def __init__(self, tasks, current_style, parent: QWidget | None = None):
        super().__init__("Attributes", parent)
        self.tasks, self.current_style = tasks, current_style
        self.model = None
        self.base = None                # the style the edits are made to (None: the current one)
        self.combos: dict[str, QComboBox] = {}
        self.form = QFormLayout(self)
        self.seed: QSpinBox | None = None
        tasks.done.connect(self._done)
        tasks.failed.connect(self._failed)
        self.hide()

    def set_model(self, model, base=None, chosen: dict | None = None, seed: int = 0) -> None:
        """Show controls for ``model``'s attributes (None: hide the panel). ``chosen`` edits are
        already made (``--edit`` on the command line) to the style ``base``: the controls show
        them, and later edits start from ``base``."""
        while self.form.rowCount():
            self.form.removeRow(0)
        self.combos, self.seed, self.model, self.base = {}, None, model, None
        if model is None:
            self.hide()
            return
        for name, values in dict(model.attributes).items():
            c = QComboBox()
            c.addItem("unchanged", None)
            for v in values:
                c.addItem(str(v), v)
            c.currentIndexChanged.connect(self._edit)
            self.form.addRow(QLabel(str(name)), c)
            self.combos[name] = c
        self.seed = QSpinBox()
        self.seed.setRange(0, 2 ** 31 - 1)
        self.seed.setToolTip("Different seeds give different looks with the same attributes")
        self.seed.valueChanged.connect(self._edit)
        self.form.addRow(QLabel("seed"), self.seed)
        if chosen:
            self.base = None if base is None else np.asarray(base, np.float32)
            for w in (*self.combos.values(), self.seed):
                w.blockSignals(True)
            for name, value in chosen.items():
                if name in self.combos:
                    self.combos[name].setCurrentIndex(max(0, self.combos[name].findData(value)))
            self.seed.setValue(int(seed))
            for w in (*self.combos.values(), self.seed):
                w.blockSignals(False)
        self.show()

    def chosen(self) -> dict:
        return {n: c.currentData() for n, c in self.combos.items() if c.currentData() is not None}

    def restyled(self) -> None:
        """The style was changed by something else (gallery, sliders, bank): the edits chosen
        are made to that one from now on."""
        self.base = None

    def _edit(self) -> None:
        if self.base is None:
            self.base = self.current_style()
        model, z, wanted = self.model, self.base, self.chosen()
        if model is None or z is None:
            return
        if not wanted:                  # every attribute back to "unchanged": the style as it was
            self.edited.emit(np.asarray(z, np.float32))
            return
        seed = self.seed.value()
        self.tasks.run("attribute-edit", lambda: np.asarray(model.edit(z, wanted, seed), np.float32))

    def _done(self, name: str, token, result) -> None:
        if name == "attribute-edit":
            self.edited.emit(result)

    def _failed(self, name: str, token, message: str) -> None:
        if name == "attribute-edit":
            self.failed.emit(f"attribute edit: {message}")
