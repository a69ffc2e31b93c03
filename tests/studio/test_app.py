"""The studio as a program: its command line, the headless screenshot, OpenCV's Qt variables,
and the camera list."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtGui import QImage

from realtime.studio import qtenv
from realtime.studio.__main__ import main
from realtime.studio.cameras import Camera, list_cameras

ROOT = Path(__file__).resolve().parents[2]


def test_opencv_qt_variables_are_removed_and_a_users_own_are_kept(monkeypatch):
    plugins = str(Path(cv2.__file__).parent / "qt" / "plugins")
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", plugins)
    monkeypatch.setenv("QT_QPA_FONTDIR", "/usr/share/fonts")
    assert qtenv.prepare() == ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    assert os.environ["QT_QPA_FONTDIR"] == "/usr/share/fonts"


def test_cameras_are_listed_by_their_opencv_index(tmp_path):
    for node, name, index in (("video0", "Integrated Camera", 0), ("video1", "Integrated Camera", 1),
                              ("video2", "Dummy video device (0x0000)", 0), ("video10", "USB Cam", 0)):
        (tmp_path / node).mkdir()
        (tmp_path / node / "name").write_text(name + "\n")
        (tmp_path / node / "index").write_text(f"{index}\n")
    if sys.platform.startswith("linux"):
        assert list_cameras(tmp_path) == [Camera(0, "Integrated Camera"),
                                          Camera(2, "Dummy video device (0x0000)"),
                                          Camera(10, "USB Cam")]
        assert list_cameras(tmp_path / "absent") == []
    assert Camera(3, "USB Cam").label == "USB Cam (camera 3)"


def test_bad_command_lines_are_one_line_and_exit_2(capsys, tmp_path):
    assert main(["--input", str(tmp_path / "missing.mp4")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --input {tmp_path / 'missing.mp4'}: no such file"
    assert main(["--quit-after", "0"]) == 2
    assert "--quit-after" in capsys.readouterr().err
    assert main(["--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["--screenshot", str(tmp_path / "no" / "s.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_screenshot_renders_the_window_offscreen(tmp_path, clip):
    shot = tmp_path / "studio.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}   # --screenshot sets it
    r = subprocess.run([sys.executable, "-m", "realtime.studio", "--input", str(clip), "--model",
                        "identity", "--screenshot", str(shot), "--quit-after", "4", "--tab", "files"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    img = QImage(str(shot))
    assert img.width() >= 1000 and img.height() >= 700
    small = img.scaled(64, 64).convertToFormat(QImage.Format.Format_RGB888)
    px = np.frombuffer(small.constBits(), np.uint8, count=small.sizeInBytes())
    assert px.std() > 10                                   # a window was drawn, not a blank
    assert [p.name for p in tmp_path.iterdir()] == ["studio.png"]      # written atomically
