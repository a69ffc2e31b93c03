"""The live view: the camera image and the result with a split you drag (before on the left of
it, after on the right), and the numbers under it.

:class:`SplitView` takes the newest frame from the live controller's mailbox when its signal
fires and repaints at most at the screen's refresh rate: a frame that arrives sooner waits for
the next slot, and a newer one replaces it meanwhile (the newest wins). :class:`StatsBar` shows
fps, end-to-end latency p50/p95 and dropped frames all the time, and the per-stage times one
click away.
"""
from __future__ import annotations

import math
import time

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from ..pipeline import STAGES

__all__ = ["SplitView", "StatsBar"]


class SplitView(QWidget):
    """Before | after, split where the user drags (a fraction of the width, 0..1)."""

    split_changed = Signal(float)

    def __init__(self, mailbox, parent: QWidget | None = None):
        super().__init__(parent)
        self.mailbox = mailbox
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.split = 0.4                 # mostly the result, the original beside it
        self.message = "starting…"
        self.dimmed = False
        self.frames_shown = 0
        self._dragging = False
        self._last_paint = 0.0
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.timeout.connect(self._show_newest)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        mailbox.ready.connect(self._frame_ready)

    # -- frames ---------------------------------------------------------------------------------
    def _interval(self) -> float:
        screen = self.screen()
        rate = screen.refreshRate() if screen is not None else 60.0
        return 1.0 / rate if rate and math.isfinite(rate) and rate > 1 else 1.0 / 60

    def _frame_ready(self) -> None:
        wait = self._last_paint + self._interval() - time.monotonic()
        if wait > 0:
            if not self._pending.isActive():
                self._pending.start(max(1, int(wait * 1000)))
            return
        self._show_newest()

    def _show_newest(self) -> None:
        item = self.mailbox.take()
        if item is None:
            return
        self.before, self.after = item.before, item.after
        self.message, self.dimmed = "", False
        self.frames_shown += 1
        self._last_paint = time.monotonic()
        self.update()

    def set_message(self, text: str, dim: bool = True) -> None:
        """A line over the view (loading, paused, no source); the last frame stays, dimmed."""
        self.message, self.dimmed = text, dim
        self.update()

    # -- drawing --------------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        img = self.after
        w, h = self.width(), self.height()
        if img is None or img.width() == 0:
            return QRectF(0, 0, w, h)
        scale = min(w / img.width(), h / img.height())
        iw, ih = img.width() * scale, img.height() * scale
        return QRectF((w - iw) / 2, (h - ih) / 2, iw, ih)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(16, 18, 22))
        r = self.image_rect()
        if self.after is not None:
            p.drawImage(r, self.after)
            x = r.left() + self.split * r.width()
            if self.before is not None and self.split > 0:
                src_w = self.split * self.before.width()
                p.drawImage(QRectF(r.left(), r.top(), x - r.left(), r.height()), self.before,
                            QRectF(0, 0, src_w, self.before.height()))
            if 0 < self.split < 1:
                self._draw_handle(p, x, r)
            self._draw_tags(p, r, x)
        if self.dimmed or self.after is None:
            p.fillRect(self.rect(), QColor(0, 0, 0, 140 if self.after is not None else 0))
        if self.message:
            f = QFont(self.font())
            f.setPointSizeF(f.pointSizeF() * 1.25)
            p.setFont(f)
            p.setPen(QColor(235, 238, 245))
            p.drawText(self.rect().adjusted(24, 24, -24, -24),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
        p.end()

    def _draw_handle(self, p: QPainter, x: float, r: QRectF) -> None:
        p.setPen(QPen(QColor(255, 255, 255, 220), 2))
        p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
        c = QPointF(x, r.center().y())
        p.setBrush(QColor(255, 255, 255, 230))
        p.drawEllipse(c, 13, 13)
        p.setPen(QPen(QColor(40, 44, 52), 2))
        for d in (-1, 1):                          # two small arrows: drag me sideways
            p.drawLine(QPointF(c.x() + d * 3, c.y() - 5), QPointF(c.x() + d * 8, c.y()))
            p.drawLine(QPointF(c.x() + d * 8, c.y()), QPointF(c.x() + d * 3, c.y() + 5))

    def _draw_tags(self, p: QPainter, r: QRectF, x: float) -> None:
        f = QFont(self.font())
        f.setBold(True)
        p.setFont(f)
        for text, left, show in (("BEFORE", True, self.split > 0.08),
                                 ("AFTER", False, self.split < 0.92)):
            if not show:
                continue
            w = p.fontMetrics().horizontalAdvance(text) + 16
            box = QRectF(r.left() + 10 if left else r.right() - w - 10, r.top() + 10, w, 22)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 150))
            p.drawRoundedRect(box, 4, 4)
            p.setPen(QColor(240, 240, 240))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # -- dragging the split ---------------------------------------------------------------------
    def set_split(self, fraction: float) -> None:
        self.split = min(max(float(fraction), 0.0), 1.0)
        self.split_changed.emit(self.split)
        self.update()

    def _fraction_at(self, x: float) -> float:
        r = self.image_rect()
        return (x - r.left()) / max(r.width(), 1.0)

    def _near_handle(self, x: float) -> bool:
        r = self.image_rect()
        return abs(x - (r.left() + self.split * r.width())) < 16

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._dragging = True
            self.set_split(self._fraction_at(event.position().x()))

    def mouseMoveEvent(self, event) -> None:
        x = event.position().x()
        if self._dragging:
            self.set_split(self._fraction_at(x))
        self.setCursor(Qt.CursorShape.SplitHCursor if self._dragging or self._near_handle(x)
                       else Qt.CursorShape.ArrowCursor)

    def mouseReleaseEvent(self, event) -> None:
        self._dragging = False

    def mouseDoubleClickEvent(self, event) -> None:
        self.set_split(0.0 if self.split > 0 else 0.4)


class StatsBar(QWidget):
    """fps · latency p50 / p95 · dropped, always shown; per-stage times behind "Stages"."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        row = QHBoxLayout()
        row.setSpacing(18)
        self.fields: dict[str, QLabel] = {}
        for key, caption in (("fps", "fps"), ("p50", "latency p50"), ("p95", "p95"),
                             ("dropped", "dropped")):
            box = QVBoxLayout()
            box.setSpacing(0)
            value = QLabel("–")
            value.setObjectName("statValue")
            cap = QLabel(caption)
            cap.setObjectName("statCaption")
            box.addWidget(value)
            box.addWidget(cap)
            row.addLayout(box)
            self.fields[key] = value
        row.addStretch(1)
        self.stages_button = QPushButton("Stages ▸")
        self.stages_button.setCheckable(True)
        self.stages_button.setToolTip("Time per pipeline stage, p50 / p95 over the last 120 frames")
        self.stages_button.toggled.connect(self._toggle)
        row.addWidget(self.stages_button, 0, Qt.AlignmentFlag.AlignVCenter)
        outer.addLayout(row)

        self.stages = QWidget()
        grid = QGridLayout(self.stages)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(2)
        self.stage_cells: dict[str, tuple[QLabel, QLabel]] = {}
        for r, text in enumerate(("", "p50 ms", "p95 ms")):
            lab = QLabel(text)
            lab.setObjectName("statCaption")
            grid.addWidget(lab, r, 0)
        for c, stage in enumerate(STAGES, start=1):
            head = QLabel("output" if stage == "encode" else stage)
            head.setObjectName("statCaption")
            head.setAlignment(Qt.AlignmentFlag.AlignRight)
            p50, p95 = QLabel("–"), QLabel("–")
            for lab in (p50, p95):
                lab.setAlignment(Qt.AlignmentFlag.AlignRight)
                lab.setObjectName("stageValue")
            grid.addWidget(head, 0, c)
            grid.addWidget(p50, 1, c)
            grid.addWidget(p95, 2, c)
            self.stage_cells[stage] = (p50, p95)
        grid.setColumnStretch(len(STAGES) + 1, 1)
        self.stages.hide()
        outer.addWidget(self.stages)

    def _toggle(self, on: bool) -> None:
        self.stages.setVisible(on)
        self.stages_button.setText("Stages ▾" if on else "Stages ▸")

    def show_numbers(self, snap: dict) -> None:
        def ms(v: float) -> str:
            return "–" if v != v else f"{v:.0f} ms"
        self.fields["fps"].setText(f"{snap['fps']:.1f}" if snap["running"] else "–")
        self.fields["p50"].setText(ms(snap["p50_ms"]))
        self.fields["p95"].setText(ms(snap["p95_ms"]))
        self.fields["dropped"].setText(str(snap["dropped"]))
        if self.stages.isVisible():
            for stage, (c50, c95) in self.stage_cells.items():
                p = snap["stages"].get(stage)
                c50.setText("–" if p is None else f"{p[0]:.1f}")
                c95.setText("–" if p is None else f"{p[1]:.1f}")
