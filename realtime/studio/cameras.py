"""The cameras of this machine, each with the index OpenCV opens it by (what
:class:`realtime.compose.CameraInput` takes).

* Linux: ``/sys/class/video4linux`` names every V4L2 node; OpenCV's index N is ``/dev/videoN``,
  and a camera's capture node is the one whose ``index`` attribute is 0 (the others of the same
  device carry metadata). Exact, and nothing is opened.
* Elsewhere: Qt Multimedia's ``QMediaDevices.videoInputs()`` when it is installed (the
  ``PySide6-Addons`` wheel; ``PySide6-Essentials`` lacks it), in the order the system lists them,
  which is the order DirectShow and AVFoundation — OpenCV's backends there — number them. Without
  it, camera 0 is offered, and opening it says whether it is there.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Camera", "list_cameras"]

V4L_ROOT = Path("/sys/class/video4linux")


@dataclass(frozen=True)
class Camera:
    index: int            # the OpenCV index
    name: str
    known: bool = True    # False: offered without knowing it exists

    @property
    def label(self) -> str:
        return f"{self.name} (camera {self.index})" if self.known else f"Camera {self.index}"


def _v4l2(root: Path) -> list[Camera]:
    found = []
    for node in sorted(root.glob("video*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0)):
        m = re.fullmatch(r"video(\d+)", node.name)
        if not m:
            continue
        try:
            if (node / "index").exists() and (node / "index").read_text().strip() != "0":
                continue                  # a metadata node of a camera listed already
            name = (node / "name").read_text().strip() or node.name
        except OSError:
            continue
        found.append(Camera(int(m.group(1)), name))
    return found


def _qt_multimedia() -> list[Camera] | None:
    try:
        from PySide6.QtMultimedia import QMediaDevices
    except ImportError:
        return None
    return [Camera(i, dev.description()) for i, dev in enumerate(QMediaDevices.videoInputs())]


def list_cameras(v4l_root: Path = V4L_ROOT) -> list[Camera]:
    """The cameras found, or ``[Camera(0, known=False)]`` where this system cannot list them."""
    if sys.platform.startswith("linux") and v4l_root.is_dir():
        return _v4l2(v4l_root)
    if sys.platform.startswith("linux"):
        return []                         # no video4linux at all: no camera on this machine
    listed = _qt_multimedia()
    return listed if listed is not None else [Camera(0, "Camera 0", known=False)]
