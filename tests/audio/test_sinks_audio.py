"""Live outputs with sound: frames stamped when written, sound blocks when played, both on the
output's one clock; read back with PyAV, a flash and its click meet to the millisecond."""
from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from realtime.audio import AudioChunk
from realtime.compose import ConfigError, FileOutput, StreamOutput, make_sinks
from realtime.sinks import StreamSink, VideoFileSink
from realtime.types import Frame
from tests.audio import avsync

RATE = avsync.RATE


def _frame(level: int, i: int) -> Frame:
    return Frame(np.full((48, 64, 3), level, np.uint8), 0.0, i)


def _play(sink, clicks_at=(0.5, 1.0), flash_frame=12):
    """Sound from 0.1 s (a click at each of ``clicks_at``, on the sink's clock) written ahead,
    and 30 frames written at 25 fps from 0.02 s, frame ``flash_frame`` white; returns the
    time that frame was handed to the sink."""
    o = sink.origin
    for k in range(150):
        t = 0.1 + k * 0.01
        x = np.zeros((480, 1), np.float32)
        for c in clicks_at:
            i = int(round((c - t) * RATE))
            if 0 <= i < 480:
                x[i] = 0.9
        sink.write_audio(AudioChunk(x, o + t))
    flash_t = None
    for i in range(30):
        while time.monotonic() < o + 0.02 + i * 0.04:
            time.sleep(0.001)
        if i == flash_frame:
            flash_t = time.monotonic() - o
        sink.write(_frame(255 if i == flash_frame else 40, i))
    return flash_t


def _flash_and_clicks(media):
    flash = [t for t, img in media.video if img.mean() > 200]
    t0, x = media.sound
    return flash, avsync.clicks(t0, x)


@pytest.mark.parametrize("suffix, codec", [(".mp4", "aac"), (".mkv", "aac"), (".webm", "opus")])
def test_a_live_recording_carries_the_sound_on_the_frames_clock(tmp_path, suffix, codec):
    import av

    path = tmp_path / f"live{suffix}"
    sink = VideoFileSink(path, width=64, height=48, live=True, live_audio=True, fps=25)
    written = _play(sink, clicks_at=(0.5, 1.0))
    sink.close()
    with av.open(str(path)) as c:
        assert c.streams.audio[0].codec_context.name == codec
    flash, clicks = _flash_and_clicks(avsync.read_file(path))
    assert len(flash) == 1 and flash[0] == pytest.approx(written, abs=0.002)   # stamped when written
    assert clicks == pytest.approx([0.5, 1.0], abs=0.002)                     # when played


def test_the_sound_track_stays_continuous_over_a_hole_and_an_overlap(tmp_path):
    path = tmp_path / "holes.mp4"
    sink = VideoFileSink(path, width=64, height=48, live=True, live_audio=True)
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(480) / RATE)).astype(np.float32)
    starts = [-0.05] + [0.10 + 0.01 * k for k in range(20)] + \
        [0.33 + 0.01 * k for k in range(20)] + \
        [0.525 + 0.01 * k for k in range(20)]   # before the file's start, a 30 ms hole, a 5 ms overlap
    for t in starts:
        sink.write_audio(AudioChunk(tone[:, None], sink.origin + t))
    sink.write(_frame(40, 0))
    assert sink.audio.filled == int(0.03 * RATE) and sink.audio.trimmed == int(0.005 * RATE)
    sink.close()
    media = avsync.read_file(path)
    assert avsync.track_gaps(media) == []
    t0, x = media.sound                      # (AAC's first frame is its encoder's priming)
    sounding = np.flatnonzero(np.abs(x) > 0.05)
    assert t0 + sounding[0] / RATE == pytest.approx(0.1, abs=0.002)
    assert (sounding[-1] - sounding[0]) / RATE == pytest.approx(0.725 - 0.1, abs=0.002)
    assert np.diff(sounding).max() / RATE == pytest.approx(0.03, abs=0.002)  # the hole: silence


def test_only_a_live_recording_takes_live_sound():
    with pytest.raises(ConfigError, match="live recording"):
        FileOutput("out.mp4", live_audio=True)
    assert FileOutput("out.mp4", keep_timing=False, live_audio=True).live_audio


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_stream_carries_the_sound_on_the_frames_clock(tmp_path):
    url = f"udp://127.0.0.1:{_free_udp_port()}"
    catcher = avsync.StreamCatcher(url)
    sink = make_sinks([StreamOutput(url, audio=True)], (64, 48), 25.0)[0]
    assert isinstance(sink, StreamSink) and sink.audio is not None
    written = _play(sink, clicks_at=(0.5, 1.0))
    sink.close()
    catcher.join(15)
    flash, clicks = _flash_and_clicks(catcher.media)
    assert len(flash) == 1 and len(clicks) == 2
    # MPEG-TS shifts every time stamp by its mux delay; the distances stay
    assert flash[0] - clicks[0] == pytest.approx(written - 0.5, abs=0.002)
    assert clicks[1] - clicks[0] == pytest.approx(0.5, abs=0.001)
