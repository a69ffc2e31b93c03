"""The Files tab: a dropped folder of a video and a photo is converted as realtime.convert does
it (audio kept, atomic), the live view pauses meanwhile (the policy for a CPU), cancel leaves
nothing behind."""
from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from realtime.studio.convert_queue import default_policy
from realtime.synthetic import face_scene, read_back, write_video
from tests.studio.helpers import WAIT_MS
from training.images import read_image_rgb


def drop(widget, paths) -> None:
    """What a drag from a file manager delivers: the drag enters (and is accepted), then drops."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(*args)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(*args))


def test_a_dropped_folder_is_converted_while_the_live_view_pauses(studio, qtbot, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "talk.mp4", [face_scene(320, 240, dx=i) for i in range(30)], fps=25, audio_s=1.2)
    Image.fromarray(face_scene(400, 300)).save(src / "portrait.png")
    (src / "notes.txt").write_text("not media")
    out = tmp_path / "out"
    out.mkdir()
    w = studio()
    qtbot.waitUntil(lambda: w.view.frames_shown >= 2, timeout=WAIT_MS)
    w.files.folder.setText(str(out))
    w.files.policy.setCurrentIndex(0)                   # pause the live view (the CPU default)
    paused = []
    w.queue.busy.connect(lambda busy: paused.append((busy, w.controller.paused)))
    drop(w.files.drop, [src])
    assert sorted(r.item.job.input.name for r in w.files.rows.values()) == ["portrait.png", "talk.mp4"]
    qtbot.waitUntil(lambda: all(r.item.job.status == "done" for r in w.files.rows.values()),
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: w.controller.is_running(), timeout=WAIT_MS)   # resumed afterwards
    assert paused[0] == (True, True)                    # paused while the queue ran

    video = read_back(out / "talk_anime.mp4")
    assert video["frames"] == 30 and (video["width"], video["height"]) == (320, 240)
    assert video["audio_codec"] == "aac" and abs(video["audio_s"] - 1.2) < 0.1
    first_in = face_scene(320, 240, dx=0).astype(int)
    assert np.abs(video["first"].astype(int) - first_in)[80:160, 120:200].mean() > 15   # face drawn
    photo = read_image_rgb(out / "portrait_anime.png")
    assert photo.shape == (300, 400, 3)
    assert np.abs(photo.astype(int) - face_scene(400, 300).astype(int))[100:200, 150:250].mean() > 15
    assert sorted(p.name for p in out.iterdir()) == ["portrait_anime.png", "talk_anime.mp4"]
    for row in w.files.rows.values():
        assert row.show_button.isEnabled() and row.bar.value() == row.bar.maximum()

    # dropping the same files again skips them: the outputs exist
    drop(w.files.drop, [src / "talk.mp4"])
    newest = max(w.files.rows)
    assert w.files.rows[newest].item.job.status == "skipped"
    assert "exists" in w.files.rows[newest].state.text()


def test_cancel_stops_a_running_file_and_writes_nothing(studio, qtbot, tmp_path):
    clip = write_video(tmp_path / "long.mp4", [face_scene(320, 240, dx=i % 30) for i in range(300)])
    out = tmp_path / "out"
    out.mkdir()
    w = studio()
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=WAIT_MS)
    w.files.folder.setText(str(out))
    w.files.add_paths([clip, tmp_path / "missing.mp4"])
    assert "missing.mp4: no such file" in w.files.notes.text()
    (row,) = w.files.rows.values()
    qtbot.waitUntil(lambda: row.bar.value() > 0, timeout=WAIT_MS)
    row.cancel.click()
    qtbot.waitUntil(lambda: row.item.job.status == "cancelled", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.queue.is_busy(), timeout=WAIT_MS)
    assert list(out.iterdir()) == []
    assert not row.show_button.isEnabled()


def test_the_policy_pauses_on_a_small_cpu_only():
    assert default_policy("cpu", cores=2)[0] == "pause"
    assert default_policy("cpu", cores=16)[0] == "parallel"
    assert default_policy("cuda", cores=2)[0] == "parallel"
