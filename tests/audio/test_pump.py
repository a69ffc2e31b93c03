"""The pump on a real file's sound, driven by a test clock: every click leaves exactly the delay
after the instant its frame was due, across the loop's seam and through a delay change, in one
continuous track."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.audio import LatencyTracker
from realtime.audio_io import AudioPump, AudioUnavailableError, FileSoundTrack
from realtime.sources import LoopingFileSource
from realtime.synthetic import face_scene, write_video
from tests.audio import avsync

RATE = avsync.RATE


class Collector:
    name = "collector"

    def __init__(self):
        self.chunks = []

    def write_audio(self, chunk):
        self.chunks.append(chunk)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """1 s at 25 fps, one burst of six clicks at frames 5..10 (0.20..0.40 s)."""
    return avsync.flash_clip(tmp_path_factory.mktemp("pump") / "clip.mov", seconds=1.0,
                             size=(64, 48))


def test_clicks_leave_the_delay_after_their_frames_across_loops_and_a_delay_change(clip):
    video = LoopingFileSource(clip)
    assert video.loop_period_s == pytest.approx(1.0)
    next(iter(video))                                   # starts the pacing clock
    t0 = video.t0
    tracker = LatencyTracker(window_s=0.05)
    out = Collector()
    pump = AudioPump(FileSoundTrack(clip, video), [out], tracker)
    now = t0
    while now < t0 + 2.75:
        latency = 0.080 if now < t0 + 1.7 else 0.200     # the model got slower at 1.7 s
        tracker.add(latency, now)
        pump.step(now)
        now += 0.005
    assert pump.origin == t0 and len(pump.history) >= 2
    assert pump.history[-1][1] == pytest.approx(200.0, abs=0.1)
    assert 1.7 <= pump.history[-1][0] - t0 <= 1.76

    times = np.array([c.t_s for c in out.chunks])
    assert np.allclose(np.diff(times), 480 / RATE)      # one continuous track, no gap
    x = np.concatenate([c.samples[:, 0] for c in out.chunks])
    found = avsync.clicks(times[0], x) - t0
    frames = [i / avsync.FPS for i in sorted(avsync.burst_frames(25))]
    want = [m + 0.080 for m in frames] + [1 + m + 0.080 for m in frames] + \
        [2 + m + 0.200 for m in frames]
    assert found == pytest.approx(want, abs=1.5 / RATE)  # to the sample (the click's peak)
    # the change is a crossfade: nothing above 6 kHz beyond what the clicks themselves have,
    # and the background never dips further than it does in the file itself
    source = FileSoundTrack(clip, video).samples[:RATE, 0]
    steady = x[int(0.3 * RATE):]                         # after the delay line filled
    assert avsync.crackle(steady) <= 1.5 * avsync.crackle(np.tile(source, 2))
    assert avsync.envelope_dip(steady) >= 0.8 * avsync.envelope_dip(np.tile(source, 2))


def test_a_file_without_sound_says_so(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", [face_scene(64, 48)] * 5)
    with pytest.raises(AudioUnavailableError, match="has no sound track"):
        FileSoundTrack(silent, LoopingFileSource(silent))


def test_the_measures_catch_a_hard_switch_and_a_gap_through_aac(tmp_path, clip):
    """What the live tests measure in recordings does see what it is there to see: a delay
    change without the crossfade crackles, a hole in the sound dips, both after AAC."""
    from realtime.audio import AudioChunk, DelayLine
    from realtime.sinks import VideoFileSink
    from realtime.types import Frame

    sound = np.tile(FileSoundTrack(clip, LoopingFileSource(clip)).samples[:RATE, 0], 3)

    def record(fade_ms: float, hole: bool):
        line = DelayLine(delay_ms=100, fade_ms=fade_ms, hysteresis_ms=1)
        path = tmp_path / f"fade{fade_ms}_{hole}.mp4"
        sink = VideoFileSink(path, width=64, height=48, live=True, live_audio=True)
        sink.write(Frame(np.zeros((48, 64, 3), np.uint8), 0.0, 0))
        for k, i in enumerate(range(0, len(sound), 480)):
            line.set_delay_ms({100: 237.0, 200: 50.0}.get(k, line.delay_ms))
            line.push(sound[i:i + 480])
            block = line.pull(480)
            if not (hole and 150 <= k < 153):           # 30 ms never reach the file
                sink.write_audio(AudioChunk(block, sink.origin + i / RATE))
        sink.close()
        t, x = avsync.read_file(path).sound
        return x[int(0.5 * RATE):-RATE // 10]

    smooth, hard, holed = record(40.0, False), record(0.02, False), record(40.0, True)
    assert avsync.crackle(smooth) < avsync.CRACKLE_LIMIT < 2 * avsync.CRACKLE_LIMIT < avsync.crackle(hard)
    assert avsync.envelope_dip(smooth) > 0.3 > 0.1 > avsync.envelope_dip(holed)
