"""realtime.faces tracking on a real face photo (MediaPipe runs for real, no mocks).

Clips are synthesized from ``skimage.data.astronaut()`` with known similarity transforms and
Gaussian sensor noise, so every number has a ground truth.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import faces as B
from realtime.faces import FaceTracker, TrackerConfig
from realtime.faces.align import apply_affine, invert_affine
from realtime.types import Frame, FrameFormatError


def run(frames, config=None, times=None):
    with FaceTracker(config) as tr:
        out = [tr.update(f, (i / 30.0) if times is None else times[i]) for i, f in enumerate(frames)]
        return out, tr.stats


def test_tracks_the_real_face_with_landmarks_in_frame_pixels(ref, still_clip):
    m, frames = still_clip
    tracks, stats = run(frames[:5])
    assert all(len(t) == 1 for t in tracks)
    t = tracks[-1][0]
    assert t.visible and t.track_id == 0 and t.landmarks_frame.shape == (468, 2)
    # the mesh's landmarks on the moved photo agree with the photo's own landmarks, moved
    truth = apply_affine(m, ref.landmarks_photo)
    assert np.median(np.linalg.norm(t.landmarks_frame - truth, axis=1)) < 2.0
    assert stats.tracks_started == 1 and stats.detector_runs <= 2


def test_small_face_in_720p_is_tracked(ref):
    """A 1280×720 frame with a face 5 % of its width: face mesh alone would miss it."""
    scale = 0.05 * 1280 / ref.face_px
    frames = B.synth_clip(ref, [B.photo_to_frame(ref, scale, 0, (700, 300))] * 6, (720, 1280), 3.0)
    tracks, _ = run(frames)
    assert all(len(t) == 1 and t[0].visible for t in tracks)


def test_still_face_crop_is_steady(ref):
    """σ=3 sensor noise, face still: the true eye centres move in the crop with std ≤ 0.25 px."""
    res = B.still_steadiness(ref, scale=1.0, n=30)
    assert res["found"] == 30
    assert res["std_px_smoothed"] <= 0.25
    assert res["std_px_smoothed"] < res["std_px_raw"]


def test_accuracy_under_known_similarity_transforms(ref):
    """Rotation ±25°, scale 0.7–1.4, translation: eye-centre RMS error ≤ 2 px at 256, both for
    independent frames (raw transform) and for one continuous move (smoothed transform)."""
    size = (480, 640)
    ind = B.accuracy(ref, B.random_similarities(ref, 16, size), size, independent=True)
    assert ind["found"] == 16 and ind["rms_px"] <= 2.0, ind
    cont = B.accuracy(ref, B.sweep_similarities(ref, 30, size), size, independent=False)
    assert cont["found"] == 30 and cont["rms_px_smoothed"] <= 2.0, cont


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_lag_during_constant_motion(ref, speed):
    res = B.lag(ref, speed, n=30, settle=12)
    assert res["found"] == 30
    assert res["lag_frames"] <= 1.0, res


def test_two_faces_get_distinct_stable_ids(two_faces):
    ms, frames = two_faces
    tracks, stats = run(frames, TrackerConfig(max_faces=4))
    ids = [tuple(t.track_id for t in ts) for ts in tracks]
    assert ids[0] == (0, 1) and all(i == ids[0] for i in ids)
    # each id stays on its own face (left or right half)
    side = {t.track_id: t.landmarks_frame[:, 0].mean() < 320 for t in tracks[0]}
    assert sorted(side.values()) == [False, True]
    assert all(side[t.track_id] == (t.landmarks_frame[:, 0].mean() < 320) for ts in tracks for t in ts)
    assert stats.tracks_started == 2
    one, s1 = run(frames[:3], TrackerConfig(max_faces=1))
    assert all(len(t) == 1 for t in one) and s1.faces_over_limit >= 1


def test_faces_crossing_keep_their_ids(ref):
    n, h, w = 24, 400, 640
    ts = [
        [B.photo_to_frame(ref, 0.9, 0, (120 + 400 * i / (n - 1), 130)), B.photo_to_frame(ref, 0.9, 0, (520 - 400 * i / (n - 1), 270))]
        for i in range(n)
    ]
    frames = B.synth_clip(ref, ts, (h, w), 3.0, patch_half_px=0.8 * ref.face_px)
    tracks, stats = run(frames, TrackerConfig(max_faces=2))
    assert all(len(t) == 2 for t in tracks)
    top_id = min(tracks[0], key=lambda t: t.landmarks_frame[:, 1].mean()).track_id
    for t_list in tracks:
        top = min(t_list, key=lambda t: t.landmarks_frame[:, 1].mean())
        assert top.track_id == top_id
    assert stats.tracks_started == 2


def test_missed_face_keeps_transform_then_returns_with_new_id(ref):
    """Gone for 8 frames: kept (same transform) for 5, dropped, and a new id when back."""
    here = B.photo_to_frame(ref, 1.0, 0, (320, 240))
    gone = np.array([[1.0, 0, -9000], [0, 1.0, 0]])
    frames = B.synth_clip(ref, [here] * 4 + [gone] * 8 + [here] * 3, (480, 640), 3.0)
    tracks, stats = run(frames)
    last = tracks[3][0]
    for k in range(1, 6):
        (t,) = tracks[3 + k]
        assert t.track_id == last.track_id and t.frames_since_seen == k and not t.visible
        np.testing.assert_array_equal(t.crop_to_frame, last.crop_to_frame)
    assert tracks[9] == [] and tracks[11] == []
    assert [t.track_id for t in tracks[12]] == [last.track_id + 1]
    assert stats.tracks_ended == 1 and stats.frames_without_face >= 8


def test_faces_below_min_size_are_skipped_and_counted(ref):
    scale = 30 / ref.face_px  # a 30 px face in a 320×240 frame: the detector finds it
    frames = B.synth_clip(ref, [B.photo_to_frame(ref, scale, 0, (160, 120))] * 4, (240, 320), 3.0)
    tracks, stats = run(frames)
    assert all(t == [] for t in tracks) and stats.faces_skipped_small >= 4
    tracks, stats = run(frames, TrackerConfig(min_face_px=15))  # configurable
    assert all(len(t) == 1 for t in tracks) and stats.faces_skipped_small == 0


def test_bad_input_frames(ref, still_clip):
    m, frames = still_clip
    base, _ = run(frames[:3])
    lm = base[-1][0].landmarks_frame
    # grayscale (H×W and H×W×1): converted, face still found
    gray = [f.mean(2).round().astype(np.uint8) for f in frames[:3]]
    for g in (gray, [x[..., None] for x in gray]):
        t, _ = run(g)
        assert len(t[-1]) == 1 and np.median(np.abs(t[-1][0].landmarks_frame - lm)) < 1.5
    # RGBA: alpha dropped, identical result
    rgba = [np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]) for f in frames[:3]]
    t, _ = run(rgba)
    np.testing.assert_array_equal(t[-1][0].landmarks_frame, lm)
    # a CPU tensor and a Frame give the same result as numpy
    t, _ = run([Frame(torch.from_numpy(f), i / 30, i) for i, f in enumerate(frames[:3])])
    np.testing.assert_array_equal(t[-1][0].landmarks_frame, lm)
    # odd size 641×479
    odd = B.synth_clip(ref, [B.photo_to_frame(ref, 1.0, 0, (320, 240))] * 3, (479, 641), 3.0)
    t, _ = run(odd)
    assert all(len(x) == 1 for x in t)
    # a 64×64 frame: no crash; its face (≈12 px) is below the minimum
    tiny = B.synth_clip(ref, [B.photo_to_frame(ref, 0.125, 0, (32, 32))] * 3, (64, 64), 3.0)
    t, s = run(tiny)
    assert all(x == [] for x in t) and s.frames_without_face == 3
    # 64×64 filled by a face: tracked
    t, _ = run(B.synth_clip(ref, [B.photo_to_frame(ref, 0.5, 0, (32, 40))] * 3, (64, 64), 3.0))
    assert len(t[-1]) == 1
    # all black
    t, s = run([np.zeros((480, 640, 3), np.uint8)] * 3)
    assert all(x == [] for x in t) and s.frames_without_face == 3 and s.faces_skipped_small == 0
    # not an image
    with FaceTracker() as tr, pytest.raises(FrameFormatError, match="uint8"):
        tr.update(np.zeros((48, 64, 3), np.float32), 0.0)


def test_face_partly_outside_the_frame(ref):
    """Face centre 30 % of a face width from the left edge: tracked, and its crop is exactly 0
    (mid-grey) where it reaches beyond the frame."""
    from realtime.faces import Aligner

    frames = B.synth_clip(ref, [B.photo_to_frame(ref, 1.5, 0, (0.3 * 1.5 * ref.face_px, 240))] * 5, (480, 640), 3.0)
    tracks, _ = run(frames)
    assert all(len(t) == 1 for t in tracks)
    batch = Aligner().crop(frames[-1], tracks[-1])
    m = batch.crop_to_frame[0]
    ys, xs = np.mgrid[0:256, 0:256]
    fx = apply_affine(m, np.stack([xs.ravel(), ys.ravel()], 1))[:, 0].reshape(256, 256)
    outside = torch.from_numpy(fx < -1.0)
    assert outside.any() and torch.all(batch.crops[0][:, outside] == 0)


def test_variable_frame_rate_timestamps(ref, still_clip):
    """Irregular timestamps (and a repeated one) are accepted; the crop stays steady."""
    m, frames = still_clip
    rng = np.random.default_rng(5)
    times = list(np.cumsum(rng.uniform(0.02, 0.06, len(frames))))
    times[10] = times[9]
    tracks, _ = run(frames, times=times)
    eyes = apply_affine(m, ref.eyes_photo)
    p = np.array([apply_affine(invert_affine(t[0].crop_to_frame), eyes) for t in tracks])[5:]
    assert p.std(0).max() <= 0.25


def test_detections_the_mesh_refuses_are_not_retried_every_frame(ref):
    """A 20 px face in 1280×720: the full-range detector may fire near it but the mesh cannot
    confirm a face of that size. No track, no crash, and the mesh is not re-run on the same
    spot every frame."""
    frames = B.synth_clip(ref, [B.photo_to_frame(ref, 0.2, 0, (640, 360))] * 12, (720, 1280), 3.0)
    tracks, stats = run(frames, TrackerConfig(detect_interval=10))
    assert all(t == [] for t in tracks)
    assert stats.detector_runs == 12 and stats.mesh_failures <= 2


def test_two_tracks_landing_on_one_face_keep_the_right_id(two_faces):
    """White-box: if face 1's mesh jumps onto face 0 (as can happen while faces cross), the
    track that jumped loses the frame; face 0's track keeps its id and landmarks."""
    _, frames = two_faces
    with FaceTracker(TrackerConfig(max_faces=2)) as tr:
        a, b = tr.update(frames[0], 0.0)
        left, right = (a, b) if a.landmarks_frame[:, 0].mean() < b.landmarks_frame[:, 0].mean() else (b, a)
        candidates = {left.track_id: left.landmarks_frame + 0.5, right.track_id: left.landmarks_frame + 0.7}
        tr._resolve_duplicates(candidates)
        assert list(candidates) == [left.track_id] and tr.stats.duplicates_resolved == 1
