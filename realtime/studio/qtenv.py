"""Qt's environment, put right before the QApplication exists.

OpenCV (installed by MediaPipe, used for cameras) sets ``QT_QPA_PLATFORM_PLUGIN_PATH`` and
``QT_QPA_FONTDIR`` to its own bundled Qt when it is first imported (measured: FACTS.md). PySide6
then loads OpenCV's platform plugins, which breaks it on a desktop. :func:`prepare` imports
OpenCV once, so it has done that, and removes the two variables again where they point inside
OpenCV (a value the user set elsewhere is kept).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OPENCV_QT_VARIABLES", "prepare"]

OPENCV_QT_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")


def prepare(headless: bool = False) -> list[str]:
    """Import OpenCV and remove the Qt variables it set; with ``headless``, render offscreen
    unless a platform was chosen. Returns the names of the variables removed."""
    import cv2

    cv2_dir = Path(cv2.__file__).resolve().parent
    removed = []
    for name in OPENCV_QT_VARIABLES:
        value = os.environ.get(name)
        if value and Path(value).resolve().is_relative_to(cv2_dir):
            del os.environ[name]
            removed.append(name)
    try:                                  # "can't open camera by index" warnings on probing
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass
    if headless:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return removed
