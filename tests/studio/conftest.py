"""The studio's tests run on Qt's offscreen platform (pytest-qt), on videos made in code.

OpenCV's Qt variables are removed before pytest-qt creates the QApplication (the studio's own
:func:`realtime.studio.qtenv.prepare`, exactly as the app does)."""
from __future__ import annotations

import importlib.util
import os

import pytest

from realtime.compose import ModelOptions
from realtime.studio import qtenv
from realtime.synthetic import face_scene, write_video

if importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("pytestqt") is None:
    collect_ignore_glob = ["test_*.py"]       # the gui and dev extras bring both

os.environ["QT_QPA_PLATFORM"] = "offscreen"
qtenv.prepare(headless=True)


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A 320x240 face moving slowly, 40 frames at 25 fps, with a sound track."""
    path = tmp_path_factory.mktemp("media") / "face.mp4"
    frames = [face_scene(320, 240, dx=2 * (i % 10) - 10) for i in range(40)]
    return write_video(path, frames, fps=25, audio_s=1.6)


@pytest.fixture(scope="session", autouse=True)
def _theme(qapp):
    from realtime.studio.theme import apply_theme
    apply_theme(qapp)


@pytest.fixture
def studio(qtbot, clip, tmp_path):
    """A factory for studio windows on the synthesized clip with the demo model and a style
    bank in tmp_path; every window is closed at the end of the test."""
    from realtime.studio.window import StudioSettings, StudioWindow

    made = []

    def make(**changes):
        settings = dict(model=ModelOptions(model="demo", dynamic_style=True), input=clip,
                        style_bank=tmp_path / "styles.json", gallery_seed=0)
        settings.update(changes)
        w = StudioWindow(StudioSettings(**settings))
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        # a model still opening cannot be interrupted (the app leaves with os._exit then); the
        # test process lives on, so let it finish before the window goes
        qtbot.waitUntil(lambda: not w.tasks.busy(), timeout=60_000)
        w.close()
        w.deleteLater()
