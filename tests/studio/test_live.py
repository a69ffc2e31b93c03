"""The live side of the studio: a synthesized video played as a camera reaches the view through
the real pipeline; errors become one message and the window stays usable; closing stops every
thread."""
from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QThreadPool

from realtime.compose import ModelOptions
from realtime.synthetic import face_scene, write_video
from tests.studio.helpers import WAIT_MS, as_array, studio_threads


def test_frames_reach_the_view_with_the_face_drawn(studio, qtbot):
    w = studio()
    qtbot.waitUntil(lambda: w.view.frames_shown >= 8, timeout=WAIT_MS)
    before, after = as_array(w.view.before), as_array(w.view.after)
    assert before.shape == after.shape == (240, 320, 3)
    # the demo model repaints the face, and nothing far from it
    diff = np.abs(before.astype(int) - after.astype(int)).sum(-1)
    assert diff[80:160, 120:200].mean() > 20
    assert diff[:, :40].mean() < 2 and diff[:, -40:].mean() < 2
    # the numbers under the view are live
    qtbot.waitUntil(lambda: w.controller.snapshot()["fps"] > 0, timeout=WAIT_MS)
    snap = w.controller.snapshot()
    assert snap["p50_ms"] > 0 and snap["p95_ms"] >= snap["p50_ms"]
    assert {"track", "align", "engine", "paste"} <= set(snap["stages"])
    w._show_stats()
    assert w.stats.fields["fps"].text() != "–"
    assert "demo model" in w.engine_label.text() and "onnxruntime" in w.engine_label.text()
    assert w.why_label.text().startswith("auto:")          # auto's reason is shown
    w.stats.stages_button.click()                           # per-stage times, one click away
    w._show_stats()
    assert w.stats.stages.isVisible() and w.stats.stage_cells["engine"][0].text() != "–"


def test_the_split_follows_a_drag(studio, qtbot):
    from PySide6.QtCore import QPoint, Qt

    w = studio(model=ModelOptions(model="identity"))
    qtbot.waitUntil(lambda: w.view.frames_shown >= 1, timeout=WAIT_MS)
    r = w.view.image_rect()
    y = int(r.center().y())
    qtbot.mousePress(w.view, Qt.MouseButton.LeftButton, pos=QPoint(int(r.left() + 0.5 * r.width()), y))
    qtbot.mouseMove(w.view, QPoint(int(r.left() + 0.8 * r.width()), y))
    qtbot.mouseRelease(w.view, Qt.MouseButton.LeftButton, pos=QPoint(int(r.left() + 0.8 * r.width()), y))
    assert abs(w.view.split - 0.8) < 0.02


def test_a_bad_checkpoint_is_one_message_and_the_app_stays_usable(studio, qtbot, tmp_path):
    w = studio()
    qtbot.waitUntil(lambda: w.view.frames_shown >= 3, timeout=WAIT_MS)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"this is not a checkpoint" * 100)
    w.open_model_file(bad)
    qtbot.waitUntil(lambda: "Could not open the model" in w.message.text(), timeout=WAIT_MS)
    text = w.message.text()
    assert "broken.pt" in text and "Still using" in text and "demo model" in text
    assert "Traceback" not in text and "\n" not in text
    assert "demo model" in w.controller.model.summary
    shown = w.view.frames_shown
    qtbot.waitUntil(lambda: w.view.frames_shown >= shown + 3, timeout=WAIT_MS)  # still live
    # and another model opens afterwards
    identity = w.model_combo.findText("No network (identity)")
    w.model_combo.setCurrentIndex(identity)
    w._model_picked(identity)
    qtbot.waitUntil(lambda: w.controller.model.engine.name == "identity", timeout=WAIT_MS)
    shown = w.view.frames_shown
    qtbot.waitUntil(lambda: w.view.frames_shown >= shown + 3, timeout=WAIT_MS)


def test_no_camera_is_one_message_then_a_video_works(studio, qtbot, clip):
    w = studio(input=None, camera=57)
    qtbot.waitUntil(lambda: "camera 57" in w.message.text(), timeout=WAIT_MS)
    assert "could not be opened" in w.message.text()
    assert "stopped" in w.view.message
    w.use_video_file(clip)
    qtbot.waitUntil(lambda: w.view.frames_shown >= 3, timeout=WAIT_MS)


def test_closing_stops_every_thread(studio, qtbot, tmp_path):
    long_clip = write_video(tmp_path / "long.mp4", [face_scene(320, 240, dx=i % 20) for i in range(250)])
    out = tmp_path / "out"
    out.mkdir()
    baseline = {t.ident for t in threading.enumerate()}
    w = studio()
    qtbot.waitUntil(lambda: w.view.frames_shown >= 3 and w.gallery.rendered > 0, timeout=WAIT_MS)
    w.files.policy.setCurrentIndex(1)                    # keep the live view running
    w.files.folder.setText(str(out))
    w.files.add_paths([long_clip])                       # a conversion in flight too
    qtbot.waitUntil(lambda: any(r.bar.value() > 0 for r in w.files.rows.values()), timeout=WAIT_MS)
    assert {"gnr-live", "gnr-source", "gnr-faces", "gnr-engine", "gnr-output",
            "gnr-convert"} <= set(studio_threads())
    w.close()                    # joins each part with a timeout (at most 1 s for any one)
    assert studio_threads() == []
    assert {t.ident for t in threading.enumerate()} <= baseline
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    assert list(out.iterdir()) == []                     # the interrupted output left nothing


def test_a_source_that_goes_away_mid_run_is_one_message(studio, qtbot, tmp_path, clip):
    """A camera unplugged mid-run: here the video played as a camera is deleted, and the next
    loop cannot open it. The window says so in one line and takes another source."""
    short = write_video(tmp_path / "short.mp4", [face_scene(320, 240) for _ in range(8)])
    w = studio(input=short)
    qtbot.waitUntil(lambda: w.view.frames_shown >= 2, timeout=WAIT_MS)
    short.unlink()
    qtbot.waitUntil(lambda: "short.mp4" in w.message.text(), timeout=WAIT_MS)
    assert "no such file" in w.message.text() and "\n" not in w.message.text()
    qtbot.waitUntil(lambda: not w.controller.is_running(), timeout=WAIT_MS)
    assert studio_threads() == [] or set(studio_threads()) <= {"gnr-gallery"}
    w.use_video_file(clip)
    n = w.view.frames_shown
    qtbot.waitUntil(lambda: w.view.frames_shown >= n + 3, timeout=WAIT_MS)
