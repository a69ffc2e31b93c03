"""Long files in segments, without Ray: the plan covers every frame once, a segment's source
decodes exactly the frames a whole-file decode gives (after a real seek), the joined file keeps
every timestamp, the rotation and the audio of a single-machine conversion, and the face crop
is as steady across a segment boundary as inside a segment."""
from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest

from realtime.compose import FileOutput, ModelOptions, PipelineConfig, open_model
from realtime.convert import Job, convert_file
from realtime.segments import (Segment, SegmentSource, convert_segment, join_segments,
                               plan_segments)
from realtime.sources import VideoFileSource, probe
from realtime.synthetic import face_scene, read_back, write_video

from .conftest import FPS, decoded_frames, psnr


@pytest.fixture(scope="module")
def identity():
    return open_model(ModelOptions(model="identity")).engine


def _keyframes(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [float(p.pts * v.time_base) for p in c.demux(v) if p.is_keyframe and p.pts is not None]


def test_plan_cuts_between_frames_and_keeps_short_files_whole(library):
    info = probe(library / "long.mp4")
    segs = plan_segments(info, 1.0, warmup_s=0.5)
    assert [s.index for s in segs] == [0, 1, 2] and all(s.count == 3 for s in segs)
    assert segs[0].start_s == -math.inf and segs[-1].end_s == math.inf
    assert segs[0].warmup_s == 0 and segs[1].warmup_s == 0.5
    for a, b in zip(segs, segs[1:]):
        assert a.end_s == b.start_s
        assert abs((b.start_s * FPS) % 1 - 0.5) < 1e-6       # half way between two frames
    assert len(plan_segments(info, None)) == 1 and len(plan_segments(info, 0)) == 1
    assert len(plan_segments(info, 2.5)) == 1                # 3 s < 1.5 segments: whole
    with pytest.raises(ValueError):
        Segment(1, 2, 2.0, 1.0)


def test_segment_sources_give_exactly_the_whole_file_frames(library):
    path = library / "long.mp4"
    keys = _keyframes(path)
    assert len(keys) > 3                                      # a keyframe every 12 frames
    whole = list(VideoFileSource(path))
    info = probe(path)
    got = []
    for seg in plan_segments(info, 1.0, warmup_s=0.5):
        frames = list(SegmentSource(path, seg, info=info))
        assert [f.index for f in frames] == list(range(len(frames)))
        warm = [f.timestamp_s for f in frames if not seg.written(f.timestamp_s)]
        assert warm == [f.timestamp_s for f in whole
                        if seg.start_s - seg.warmup_s <= f.timestamp_s < seg.start_s]
        assert len(warm) == 0 if seg.first else 12 <= len(warm) <= 13   # 0.5 s at 25 fps
        got += [f for f in frames if seg.written(f.timestamp_s)]
    assert [f.timestamp_s for f in got] == [f.timestamp_s for f in whole]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, whole))


def test_joined_segments_keep_timestamps_rotation_and_audio(tmp_path, identity):
    # variable frame rate, stored sideways (rotation 90), H.264 with B-frames, AAC sound
    ts = [round(i * 0.04 + (0.02 if i % 7 == 3 else 0.0) + (0.1 if i >= 40 else 0.0), 3)
          for i in range(60)]
    src = write_video(tmp_path / "vfr.mp4",
                      [np.ascontiguousarray(np.rot90(face_scene(320, 240, dx=i), -1))
                       for i in range(60)],
                      timestamps_s=ts, rotation=90, audio_s=2.6)
    cfg, out = PipelineConfig(), FileOutput(tmp_path / "unused.mp4")
    plain = convert_file(Job(src, tmp_path / "plain.mp4"), identity, cfg, out)
    assert plain.status == "done", plain.reason
    info = probe(src)
    parts = []
    for seg in plan_segments(info, 0.8, warmup_s=0.4):
        r = convert_segment(src, seg, tmp_path / f"part{seg.index}.mp4", identity, cfg, out, info=info)
        parts.append(r.part)
    assert len(parts) == 3
    joined = tmp_path / "joined.mp4"
    assert join_segments(parts, joined) == 60
    a, b = read_back(tmp_path / "plain.mp4"), read_back(joined)
    assert b["frames"] == 60 and b["timestamps"] == a["timestamps"]
    np.testing.assert_allclose(b["timestamps"], ts, atol=1e-3)
    assert (b["rotation"], b["width"], b["height"]) == (a["rotation"], a["width"], a["height"])
    assert (b["rotation"], b["width"], b["height"]) == (90, 240, 320)
    assert b["audio_codec"] == "aac" and b["audio_s"] == a["audio_s"]
    pairs = zip(decoded_frames(tmp_path / "plain.mp4"), decoded_frames(joined))
    assert min(psnr(x, y) for x, y in pairs) > 35
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []   # no temp left


def test_crop_is_as_steady_across_a_boundary_as_inside(drift_clip, tmp_path, identity):
    """The crop centre's path (identity model, through each written frame's face track) while
    the head drifts smoothly: its frame-to-frame steps at the two boundaries are within the
    range of steps inside the segments, and a one-frame slip at a boundary would not be."""
    path = drift_clip
    info = probe(path)
    centres, bounds = [], []

    def record(frame, w):
        m = w.tracks[0].crop_to_frame
        centres.append(m[:, :2] @ np.array([127.5, 127.5]) + m[:, 2])

    for seg in plan_segments(info, 1.2, warmup_s=1.0):
        convert_segment(path, seg, tmp_path / f"p{seg.index}.mp4", identity,
                        PipelineConfig(output="crop"), FileOutput(tmp_path / "unused.mp4"),
                        info=info, on_output=record)
        bounds.append(len(centres))
    c = np.array(centres)
    assert len(c) == 90
    steps = np.linalg.norm(np.diff(c, axis=0), axis=1)        # the head moves 0.5 px a frame
    at = [b - 1 for b in bounds[:-1]]                         # step from a segment's last frame
    inside = np.delete(steps, at)
    lo, hi = inside.min(), inside.max()
    assert all(lo <= steps[k] <= hi for k in at), (steps[at], lo, hi, np.median(inside))
    slipped = [np.linalg.norm(c[k + 2] - c[k]) for k in at]   # a frame lost at the boundary
    assert min(slipped) > hi
