"""Small helpers the studio's tests share."""
from __future__ import annotations

import threading

import numpy as np
from PySide6.QtGui import QImage

WAIT_MS = 90_000          # generous: the 2-core test machine is shared; nothing here is timed


def as_array(img: QImage) -> np.ndarray:
    """A QImage as H×W×3 uint8 RGB."""
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    rows = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes()).reshape(h, img.bytesPerLine())
    return rows[:, :3 * w].reshape(h, w, 3).copy()


def studio_threads() -> list[str]:
    """The names of the studio's and its pipelines' threads still alive."""
    return [t.name for t in threading.enumerate() if t.name.startswith("gnr-")]
