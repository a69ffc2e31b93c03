"""Video sources and sinks on real encoded files: timestamps (incl. variable frame rate),
rotation, audio copied, atomic output, and clear errors for bad files."""
from __future__ import annotations


import numpy as np
import pytest

from realtime.sinks import OutputError, VideoFileSink
from realtime.sources import MediaError, VideoFileSource, probe
from realtime.synthetic import face_scene, read_back, write_audio_only, write_video


def _frames(n, w=96, h=64):
    return [face_scene(w, h, dx=i) for i in range(n)]


def _copy(src_path, dst_path, **kw):
    src = VideoFileSource(src_path)
    w, h = src.info.display_size
    with VideoFileSink(dst_path, width=w, height=h, info=src.info, audio_from=src_path, **kw) as sink:
        for f in src:
            sink.write(f)
    return src


def test_round_trip_keeps_timestamps_audio_and_duration(tmp_path):
    src_path = write_video(tmp_path / "in.mp4", _frames(20), fps=20, audio_s=1.0)
    info = probe(src_path)
    assert info.has_audio and info.audio_codec == "aac" and (info.width, info.height) == (96, 64)
    frames = list(VideoFileSource(src_path))
    assert [f.index for f in frames] == list(range(20))
    np.testing.assert_allclose([f.timestamp_s for f in frames], np.arange(20) / 20, atol=1e-6)
    out = tmp_path / "out.mp4"
    _copy(src_path, out)
    a, b = read_back(src_path), read_back(out)
    assert out.stat().st_mode & 0o777 == 0o644                 # not mkstemp's private 0600
    assert b["frames"] == 20
    np.testing.assert_allclose(b["timestamps"], a["timestamps"], atol=1e-3)
    assert b["audio_codec"] == "aac" and abs(b["audio_s"] - a["audio_s"]) < 0.03
    assert np.abs(b["first"].astype(int) - a["first"].astype(int)).mean() < 4   # re-encoded


def test_variable_frame_rate_stays_variable(tmp_path):
    ts = [0.0, 0.04, 0.08, 0.2, 0.24, 0.5, 0.52, 0.56]
    src_path = write_video(tmp_path / "vfr.mp4", _frames(len(ts)), fps=25, timestamps_s=ts)
    out = tmp_path / "vfr_out.mp4"
    _copy(src_path, out)
    np.testing.assert_allclose(read_back(out)["timestamps"], ts, atol=1e-3)


def test_rotation_is_applied_for_processing_and_kept_in_output(tmp_path):
    stored_frames = _frames(5, w=96, h=64)
    src_path = write_video(tmp_path / "rot.mp4", stored_frames, rotation=90)
    src = VideoFileSource(src_path)
    assert src.info.rotation == 90 and src.info.display_size == (64, 96)
    first = next(iter(src))
    assert first.image.shape == (96, 64, 3)                 # upright for the tracker
    out = tmp_path / "rot_out.mp4"
    _copy(src_path, out)
    back = read_back(out)
    assert back["rotation"] == 90 and (back["width"], back["height"]) == (96, 64)
    assert np.abs(back["first"].astype(int) - read_back(src_path)["first"].astype(int)).mean() < 4


def test_odd_size_is_padded_to_even(tmp_path):
    src_path = write_video(tmp_path / "even.mp4", _frames(3, w=96, h=64))
    src = VideoFileSource(src_path)
    with VideoFileSink(tmp_path / "odd.mp4", width=95, height=63, info=src.info) as sink:
        for f in src:
            sink.write(type(f)(np.ascontiguousarray(f.image[:63, :95]), f.timestamp_s, f.index))
    back = read_back(tmp_path / "odd.mp4")
    assert (back["width"], back["height"]) == (96, 64) and back["frames"] == 3


@pytest.mark.parametrize("make,match", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"this is not a video" * 100), "not a readable video"),
])
def test_bad_files_give_one_line_errors(tmp_path, make, match):
    p = tmp_path / "bad.mp4"
    make(p)
    with pytest.raises(MediaError, match=match):
        probe(p)


def test_missing_file_and_audio_only(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    p = write_audio_only(tmp_path / "audio.m4a")
    with pytest.raises(MediaError, match="no video stream"):
        probe(p)


def test_truncated_file(tmp_path):
    # moov at the end (the default): cutting the file in the middle of mdat loses the index.
    full = write_video(tmp_path / "full.mp4", _frames(30), audio_s=1.0)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        list(VideoFileSource(cut))
    # moov first (faststart): the index survives and FFmpeg plays up to the cut without an
    # error; the file is still called truncated, before a frame is decoded.
    fs = write_video(tmp_path / "fs.mp4", _frames(30), audio_s=1.0, faststart=True)
    cut2 = tmp_path / "cut2.mp4"
    data = fs.read_bytes()
    cut2.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError, match="truncated"):
        probe(cut2)


def test_output_errors_and_atomicity(tmp_path):
    src_path = write_video(tmp_path / "in.mp4", _frames(4))
    src = VideoFileSource(src_path)
    with pytest.raises(OutputError, match="does not exist"):
        VideoFileSink(tmp_path / "nope" / "out.mp4", width=96, height=64, info=src.info)
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous result")
    with pytest.raises(KeyboardInterrupt):
        with VideoFileSink(target, width=96, height=64, info=src.info, audio_from=src_path) as sink:
            for f in src:
                sink.write(f)
                raise KeyboardInterrupt
    assert target.read_bytes() == b"previous result"          # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]   # no temp left
