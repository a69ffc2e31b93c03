"""The composition root: order and completeness in file mode, bounded latency with drops in
live mode, errors from any stage stop every thread and reach the caller."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime.faces import Aligner, Compositor, FaceTracker, TrackerConfig
from realtime.pipeline import Pipeline
from realtime.types import Frame
from realtime.synthetic import face_scene


class Negate:
    """A stand-in 'model' with a visible effect: the colour negative of each crop."""
    max_batch = 3
    size = 256

    def __init__(self, delay_s: float = 0.0):
        self.calls, self.delay_s = [], delay_s

    def __call__(self, crops):
        self.calls.append(crops.shape[0])
        if self.delay_s:
            time.sleep(self.delay_s)
        return -crops


def _frames(n, w=320, h=240, fps=25.0, faces=1):
    for i in range(n):
        img = face_scene(w, h, dx=i * 0.5)
        if faces == 2:
            img = np.concatenate([img, img], axis=1)
        yield Frame(img, i / fps, i)


class ListSink:
    def __init__(self):
        self.frames, self.closed, self.aborted = [], False, False

    def write(self, f):
        self.frames.append(f)

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


def _stage(max_faces=1):
    return FaceTracker(TrackerConfig(max_faces=max_faces)), Aligner(), Compositor()


def test_file_mode_keeps_every_frame_in_order_and_batches_across_frames():
    tracker, aligner, comp = _stage(max_faces=2)
    sink, engine = ListSink(), Negate()
    p = Pipeline(_frames(12, faces=2), tracker, aligner, engine, comp, [sink], batch_frames=4)
    stats = p.run().summary()
    assert [f.index for f in sink.frames] == list(range(12)) and sink.closed
    assert stats["frames_out"] == 12 and stats["dropped_total"] == 0
    assert stats["faces"] == 24
    assert max(engine.calls) <= Negate.max_batch            # split to the engine's limit
    assert sum(engine.calls) == 24
    # the face changed, the background did not
    src = next(iter(_frames(1, faces=2))).image
    out = sink.frames[0].image
    assert np.abs(out.astype(int) - src.astype(int)).max() > 100
    assert np.array_equal(out[:5], src[:5])


def test_side_by_side_and_crop_outputs():
    tracker, aligner, comp = _stage()
    sink = ListSink()
    Pipeline(_frames(3), tracker, aligner, Negate(), comp, [sink], output="side-by-side").run()
    assert sink.frames[0].image.shape == (240, 640, 3)
    tracker, aligner, comp = _stage()
    sink = ListSink()
    Pipeline(_frames(3), tracker, aligner, Negate(), comp, [sink], output="crop").run()
    assert sink.frames[0].image.shape == (256, 256, 3)


def test_frames_without_faces_pass_through_unchanged():
    tracker, aligner, comp = _stage()
    sink = ListSink()
    blank = [Frame(np.full((120, 160, 3), 30, np.uint8), i / 25, i) for i in range(4)]
    stats = Pipeline(iter(blank), tracker, aligner, Negate(), comp, [sink]).run().summary()
    assert stats["frames_without_face"] == 4
    assert all(np.array_equal(a.image, b.image) for a, b in zip(blank, sink.frames))


def test_live_mode_drops_stale_frames_and_keeps_latency_bounded():
    # The source produces 60 frames as fast as it can; the engine takes 30 ms a batch.
    tracker, aligner, comp = _stage()
    sink = ListSink()
    p = Pipeline(_frames(60), tracker, aligner, Negate(delay_s=0.03), comp, [sink], live=True)
    stats = p.run().summary()
    assert stats["dropped_total"] > 0
    assert stats["frames_out"] + stats["dropped_total"] == stats["frames_in"] == 60
    idx = [f.index for f in sink.frames]
    assert idx == sorted(idx) and idx[-1] == 59              # the newest frame wins
    assert stats["latency"]["p95_ms"] < 1000


def test_stage_error_stops_everything_and_aborts_sinks():
    tracker, aligner, comp = _stage()
    sink = ListSink()

    def broken(crops):
        raise RuntimeError("engine exploded")

    p = Pipeline(_frames(50), tracker, aligner, broken, comp, [sink])
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="engine exploded"):
        p.run()
    assert time.monotonic() - t0 < 5 and sink.aborted and not sink.closed
    assert not [t for t in threading.enumerate() if t.name.startswith("gnr-")]


def test_stop_from_idle_ends_file_mode_as_interrupted():
    tracker, aligner, comp = _stage()
    sink = ListSink()
    p = Pipeline(_frames(500), tracker, aligner, Negate(), comp, [sink])
    calls = []

    def idle():
        calls.append(1)
        return False if len(calls) > 3 else None

    with pytest.raises(KeyboardInterrupt):
        p.run(idle=idle)
    assert sink.aborted and len(sink.frames) < 500
