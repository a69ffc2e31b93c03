"""The style's numbers as sliders, and "from image…".

A GNR style is a short vector (8 numbers for the released model) drawn from a standard normal;
each slider covers -3..3. Moving one sets the live style at once (the live view blends to it
over 0.3 s, so dragging looks continuous). "From image…" takes the style of an anime picture
with the checkpoint's anime→face style encoder (:meth:`training.style.StyleCode.from_image`,
``G_B2A_ema``), in the background; it needs a checkpoint (an exported file has no encoder).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QSlider, QVBoxLayout, QWidget)

from training.images import IMAGE_EXTENSIONS
from training.style import StyleCode

__all__ = ["StyleSliders", "SLIDER_RANGE"]

SLIDER_RANGE = 3.0
_STEPS = 100                      # slider units per 1.0


class StyleSliders(QWidget):
    """``changed(np.ndarray)`` when the user moves a slider or a picture's style arrives;
    ``failed(str)`` when a picture cannot give a style."""

    changed = Signal(object)
    failed = Signal(str)

    def __init__(self, tasks, checkpoint_for_style, parent: QWidget | None = None):
        """``tasks``: :class:`~realtime.studio.tasks.Tasks`; ``checkpoint_for_style()``: the
        open model's checkpoint path, or None when it has none."""
        super().__init__(parent)
        self.tasks, self.checkpoint_for_style = tasks, checkpoint_for_style
        self.sliders: list[QSlider] = []
        self.values: list[QLabel] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(8)
        self.grid.setVerticalSpacing(2)
        lay.addLayout(self.grid)
        row = QHBoxLayout()
        self.image_button = QPushButton("From image…")
        self.image_button.setToolTip("Take the style of an anime face picture (needs a checkpoint)")
        self.image_button.clicked.connect(self._choose_image)
        self.status = QLabel()
        self.status.setObjectName("hint")
        row.addWidget(self.image_button)
        row.addWidget(self.status, 1)
        lay.addLayout(row)
        tasks.done.connect(self._task_done)
        tasks.failed.connect(self._task_failed)
        self._build(8)

    def _build(self, n: int) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.sliders, self.values = [], []
        half = (n + 1) // 2
        for i in range(n):
            r, c = i % half, (i // half) * 3
            name = QLabel(f"z{i + 1}")
            name.setObjectName("statCaption")
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(int(-SLIDER_RANGE * _STEPS), int(SLIDER_RANGE * _STEPS))
            s.setToolTip(f"style number {i + 1} of {n}")
            v = QLabel("+0.00")
            v.setObjectName("sliderValue")
            v.setMinimumWidth(v.fontMetrics().horizontalAdvance("+0.00") + 4)
            v.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            s.valueChanged.connect(self._moved)
            self.grid.addWidget(name, r, c)
            self.grid.addWidget(s, r, c + 1)
            self.grid.addWidget(v, r, c + 2)
            self.sliders.append(s)
            self.values.append(v)
        self.grid.setColumnStretch(1, 1)
        self.grid.setColumnStretch(4, 1)

    def vector(self) -> np.ndarray:
        return np.array([s.value() / _STEPS for s in self.sliders], np.float32)

    def set_values(self, z) -> None:
        """Show style ``z`` (no ``changed`` signal)."""
        z = np.asarray(z, np.float32).ravel()
        if len(z) != len(self.sliders):
            self._build(len(z))
        for s, v, x in zip(self.sliders, self.values, z):
            s.blockSignals(True)
            s.setValue(int(round(float(np.clip(x, -SLIDER_RANGE, SLIDER_RANGE)) * _STEPS)))
            s.blockSignals(False)
            v.setText(f"{x:+.2f}")

    def set_enabled_for(self, dynamic: bool, has_checkpoint: bool) -> None:
        for s in self.sliders:
            s.setEnabled(dynamic)
        self.image_button.setEnabled(dynamic and has_checkpoint)
        self.image_button.setToolTip("Take the style of an anime face picture" if has_checkpoint
                                     else "Needs a checkpoint: an exported model has no style encoder")

    def _moved(self) -> None:
        z = self.vector()
        for v, x in zip(self.values, z):
            v.setText(f"{x:+.2f}")
        self.changed.emit(z)

    # -- from image -----------------------------------------------------------------------------
    def _choose_image(self) -> None:
        pattern = " ".join(f"*{s}" for s in IMAGE_EXTENSIONS)
        path, _ = QFileDialog.getOpenFileName(self, "An anime face picture", "",
                                              f"Images ({pattern})")
        if path:
            self.from_image(Path(path))

    def from_image(self, path: Path) -> None:
        """Read the style of the anime face in ``path`` (in the background)."""
        checkpoint = self.checkpoint_for_style()
        if checkpoint is None:
            self.failed.emit("from image needs a checkpoint (an exported model has no style "
                             "encoder): open a .pt checkpoint as the model")
            return
        self.status.setText(f"reading the style of {path.name}…")
        self.tasks.run("style-image", lambda: StyleCode.from_image(path, checkpoint), token=path)

    def _task_done(self, name: str, token, result) -> None:
        if name != "style-image":
            return
        z = result.numpy()
        self.status.setText(f"style of {Path(token).name}")
        self.set_values(z)
        self.changed.emit(z)

    def _task_failed(self, name: str, token, message: str) -> None:
        if name == "style-image":
            self.status.setText("")
            self.failed.emit(message)
