"""The Outputs tab: a recording and a stream at once while the live view runs; the virtual camera
says what to install where there is no backend (none can exist on this machine: FACTS.md)."""
from __future__ import annotations

import importlib.util

from realtime.sinks import VirtualCameraSink
from realtime.synthetic import read_back
from tests.conftest import free_udp_port, watch_stream
from tests.studio.helpers import WAIT_MS


def test_record_and_stream_at_once_and_the_virtual_camera_state(studio, qtbot, tmp_path):
    w = studio()
    qtbot.waitUntil(lambda: w.view.frames_shown >= 2, timeout=WAIT_MS)
    panel = w.outputs
    url = f"udp://127.0.0.1:{free_udp_port()}"
    reader, received = watch_stream(url)
    panel.stream_url.setText(url)
    panel.stream_button.click()
    record = tmp_path / "shown.mp4"
    panel.record_path.setText(str(record))
    panel.record_button.click()
    assert panel.stream_state.text() == f"on — {url}"
    assert panel.record_state.text().startswith("on — ")
    panel.vcam_button.click()
    if importlib.util.find_spec("pyvirtualcam") is None:
        assert panel.vcam_state.text().startswith("unavailable")
        assert not panel.vcam_button.isChecked() and not panel.vcam_hint.isHidden()
        assert VirtualCameraSink.INSTALL_HINT in panel.vcam_hint.text()
    qtbot.waitUntil(lambda: w.hub.frames_written("record") >= 20, timeout=WAIT_MS)
    reader.join(timeout=15)
    panel.record_button.click()                          # stop: the file is finished
    panel.stream_button.click()
    assert panel.record_state.text().startswith(f"saved {record}")
    assert panel.stream_state.text() == "off"
    assert len(received) >= 5 and received[0] == (320, 240)
    shown = read_back(record)
    assert shown["frames"] >= 20 and (shown["width"], shown["height"]) == (320, 240)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp file left


def test_an_output_that_cannot_open_says_why(studio, qtbot, tmp_path):
    w = studio()
    qtbot.waitUntil(lambda: w.view.frames_shown >= 1, timeout=WAIT_MS)
    panel = w.outputs
    panel.record_path.setText(str(tmp_path / "no_such_folder" / "x.mp4"))
    panel.record_button.click()
    assert "does not exist" in panel.record_state.text() and not panel.record_button.isChecked()
    panel.stream_url.setText("nonsense://nowhere")
    panel.stream_button.click()
    assert panel.stream_state.text().startswith("unavailable") and not panel.stream_button.isChecked()
    shown = w.view.frames_shown
    qtbot.waitUntil(lambda: w.view.frames_shown > shown + 2, timeout=WAIT_MS)   # still live


def test_sound_from_the_video_file_goes_into_a_recording_in_sync(studio, qtbot, tmp_path):
    """The Sound switch with the playing video's own sound: the delay in use is shown, a
    recording started meanwhile gets a continuous sound track, and its clicks meet the flashes
    of the picture (median within one frame); without a sound server the panel says why there
    is no virtual microphone, and the sound still goes into the recording."""
    import numpy as np

    from realtime.compose import ModelOptions
    from tests.audio import avsync

    clip = avsync.flash_clip(tmp_path / "flashes.mov")
    w = studio(input=clip, model=ModelOptions(model="identity"))
    qtbot.waitUntil(lambda: w.view.frames_shown >= 2, timeout=WAIT_MS)
    panel = w.outputs
    panel.sound_source.setCurrentIndex(panel.sound_source.findData("file"))
    panel.sound_button.click()
    assert panel.sound_button.isChecked() and not panel.sound_source.isEnabled()
    state = panel.sound_state.text()
    assert state.startswith("on — the sound of flashes.mov, delayed ") and "ms" in state
    if w.hub.sound.mic_out is None:
        assert "no virtual microphone:" in state
    record = tmp_path / "shown.mp4"
    panel.record_path.setText(str(record))
    panel.record_button.click()
    assert panel.record_state.text() == f"on — {record} (with sound)"
    qtbot.waitUntil(lambda: w.hub.frames_written("record") >= 150, timeout=WAIT_MS)
    panel._tick()
    assert "delayed" in panel.sound_state.text()
    panel.record_button.click()
    panel.sound_button.click()
    assert panel.sound_state.text() == "off" and panel.sound_source.isEnabled()
    media = avsync.read_file(record)
    assert avsync.track_gaps(media) == []
    errors = [e for t, e in avsync.sync_errors(media) if t >= 2.0]     # after warm-up
    print(f"studio recording: {len(errors)} flashes, video − sound "
          f"{[round(1000 * e) for e in errors]} ms")
    assert len(errors) >= 3 and abs(np.median(errors)) <= 1 / avsync.FPS


def test_sound_from_a_microphone_says_what_to_install_where_there_is_none(studio, qtbot):
    from tests.pipeline.test_webcam import _sound_backend_problem

    problem = _sound_backend_problem()
    if problem is None:
        import pytest
        pytest.skip("this machine has a sound backend")
    w = studio()
    panel = w.outputs
    panel.sound_source.setCurrentIndex(panel.sound_source.findData("mic"))
    panel.sound_button.click()
    assert not panel.sound_button.isChecked() and panel.sound_source.isEnabled()
    assert panel.sound_state.text().startswith("unavailable: ")
    assert "pip install -e '.[audio]'" in panel.sound_state.text()
