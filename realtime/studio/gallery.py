"""The style gallery: twelve styles drawn on the user's own face, the newest aligned crop of the
live view, so each thumbnail shows what that style will look like on them.

Thumbnails are rendered in a thread (``gnr-gallery``) through
:meth:`realtime.engines.base.SharedEngine.run_with_style`: one batch with that style, then the
live style restored under the same lock, so the live view never shows a gallery style. They are
rendered again every few seconds while the face moves, only when a full render costs under a
quarter of that interval (a released-size model on a CPU renders on demand: shuffle, or the
first face). Clicking a thumbnail picks that style; the live view blends to it.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (QButtonGroup, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QToolButton, QVBoxLayout, QWidget)

from training.messages import one_line
from training.pixels import to_pixels
from training.style import StyleCode

from .live import to_qimage

__all__ = ["GALLERY_SIZE", "StyleGallery"]

GALLERY_SIZE = 12
THUMB = 78
REFRESH_MS = 2000


class StyleGallery(QWidget):
    """A grid of style thumbnails. ``picked(np.ndarray)`` when one is clicked.

    ``controller``: the :class:`~realtime.studio.live.LiveController` (its shared engine and
    latest face crop)."""

    picked = Signal(object)
    _rendered = Signal(int, int, QImage, float)      # generation, slot, image, render seconds
    _render_failed = Signal(int, str)

    def __init__(self, controller, parent: QWidget | None = None, seed: int | None = None):
        super().__init__(parent)
        self.controller = controller
        self.rng = np.random.default_rng(seed)
        self.seeds: list[int] = []
        self.styles: list[np.ndarray] = []
        self.rendered = 0                    # thumbnails drawn in the current generation
        self.last_render_s = 0.0
        self._gen = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        head = QHBoxLayout()
        self.caption = QLabel("Styles on your face")
        self.caption.setObjectName("hint")
        self.shuffle_button = QPushButton("Shuffle")
        self.shuffle_button.setToolTip("Twelve new random styles")
        self.shuffle_button.clicked.connect(self.shuffle)
        head.addWidget(self.caption, 1)
        head.addWidget(self.shuffle_button)
        lay.addLayout(head)
        grid = QGridLayout()
        grid.setSpacing(2)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: list[QToolButton] = []
        for i in range(GALLERY_SIZE):
            b = QToolButton()
            b.setCheckable(True)
            b.setIconSize(QSize(THUMB, THUMB))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setObjectName("thumb")
            b.clicked.connect(lambda _=False, i=i: self.pick(i))
            self.group.addButton(b, i)
            grid.addWidget(b, i // 4, i % 4)
            self.buttons.append(b)
        lay.addLayout(grid)

        self._rendered.connect(self._show_thumb)
        self._render_failed.connect(self._show_failure)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._auto_refresh)
        self.timer.start(REFRESH_MS)
        self.shuffle(render=False)

    # -- styles ---------------------------------------------------------------------------------
    def shuffle(self, render: bool = True) -> None:
        """Twelve new styles (seeds, as ``--style SEED`` takes them)."""
        self.seeds = [int(s) for s in self.rng.integers(0, 100_000, GALLERY_SIZE)]
        self.styles = [StyleCode.from_seed(s).numpy() for s in self.seeds]
        self.group.setExclusive(False)
        for b, s in zip(self.buttons, self.seeds):
            b.setChecked(False)
            b.setText(f"seed {s}")
            b.setIcon(QIcon(_placeholder()))
        self.group.setExclusive(True)
        self.rendered = 0
        if render:
            self.render()

    def pick(self, i: int) -> None:
        """Lock style ``i`` (the live view blends to it)."""
        self.buttons[i].setChecked(True)
        self.picked.emit(self.styles[i].copy())

    def clear_choice(self) -> None:
        """The style was set elsewhere (sliders, bank): no thumbnail is the current one."""
        self.group.setExclusive(False)
        for b in self.buttons:
            b.setChecked(False)
        self.group.setExclusive(True)

    def can_render(self) -> bool:
        return self.controller.shared is not None and self.controller.dynamic_style

    # -- rendering ------------------------------------------------------------------------------
    def render(self) -> bool:
        """Render every thumbnail on the newest face crop, in the background. False when there
        is nothing to render on (no face yet, or a model whose style is fixed)."""
        if self._closed or not self.can_render():
            self.caption.setText("This model's style is fixed: pick a checkpoint or a "
                                 "style-as-input export to try styles"
                                 if self.controller.shared is not None else "Styles on your face")
            return False
        face = self.controller.latest_face()
        if face is None or face.shape[-1] != self.controller.shared.size:
            self.caption.setText("Styles on your face — waiting for a face…")
            return False
        if self._thread is not None and self._thread.is_alive():
            return True                       # one render at a time; the next tick catches up
        self._gen += 1
        gen, styles, shared = self._gen, [s.copy() for s in self.styles], self.controller.shared
        self.caption.setText("Styles on your face")
        self._stop.clear()
        self._thread = threading.Thread(target=self._render, args=(gen, shared, face, styles),
                                        name="gnr-gallery", daemon=True)
        self._thread.start()
        return True

    def _render(self, gen: int, shared, face, styles) -> None:
        t0 = time.monotonic()
        try:
            for i, z in enumerate(styles):
                if self._stop.is_set():
                    return
                y = shared.run_with_style(face, z)
                img = to_pixels(y[0].detach().float().cpu()).permute(1, 2, 0).numpy()
                self._emit(self._rendered, gen, i, to_qimage(img), time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - shown in the gallery's caption, one line
            self._emit(self._render_failed, gen, one_line(e))

    def _emit(self, signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:                  # the window is gone
            pass

    def _show_thumb(self, gen: int, i: int, image: QImage, seconds: float) -> None:
        if gen != self._gen:
            return
        self.buttons[i].setIcon(QIcon(QPixmap.fromImage(image.scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))))
        self.rendered = i + 1
        if self.rendered == GALLERY_SIZE:
            self.last_render_s = seconds

    def _show_failure(self, gen: int, message: str) -> None:
        if gen == self._gen:
            self.caption.setText(f"Could not render the styles: {message}")

    def _auto_refresh(self) -> None:
        if not self.isVisible():
            return
        cheap = self.last_render_s < REFRESH_MS / 1000 / 4
        if self.rendered < GALLERY_SIZE or cheap:
            self.render()

    def close_renderer(self, timeout: float = 1.0) -> bool:
        """Stop rendering for good; True when the render thread ended within ``timeout`` s."""
        self._closed = True
        self.timer.stop()
        self._stop.set()
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True


def _placeholder() -> QPixmap:
    pm = QPixmap(THUMB, THUMB)
    pm.fill(QColor(38, 42, 50))
    p = QPainter(pm)
    p.setPen(QColor(90, 96, 110))
    p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, "…")
    p.end()
    return pm
