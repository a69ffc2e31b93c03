"""realtime.faces.composite: paste-back with an identity "model", batched paste, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks import faces as B
from realtime.faces import Aligner, CompositeError, Compositor, CropTemplate, FaceTracker, TrackerConfig
from realtime.faces.align import invert_affine
from realtime.types import AlignedBatch, Frame


def similarity(scale, angle_deg, tx, ty):
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def colour_crops(colours, size=256):
    """Flat stylised crops, one RGB colour (in [-1, 1]) each."""
    return torch.tensor(colours, dtype=torch.float32)[:, :, None, None].expand(-1, 3, size, size).contiguous()


def test_identity_paste_on_a_video_file(ref, tmp_path):
    """A clip synthesized with known motion, written with PyAV and read back: crop → paste
    unchanged gives PSNR ≥ 35 dB over the pasted region and not one changed pixel outside it."""
    size, ms = B.synthesized_transforms(ref, 20)["talk_noise3"]
    path = tmp_path / "talk.mp4"
    B.write_video(str(path), B.synth_clip(ref, ms, size, 3.0, seed=2), fps=30)
    frames, times = B.read_video(str(path))
    assert len(frames) == 20 and times[1] == pytest.approx(1 / 30, abs=1e-3)
    res = B.identity_paste(frames, times)
    assert res["faces"] == 20
    assert res["psnr_db_min"] >= 35.0, res
    assert res["changed_px_outside_mask"] == 0


def test_identity_paste_still_and_small_faces(ref, still_clip):
    _, frames = still_clip
    res = B.identity_paste(frames[:8])
    assert res["psnr_db_min"] >= 35.0 and res["changed_px_outside_mask"] == 0
    small = B.synth_clip(ref, [B.photo_to_frame(ref, 0.5, 10, (300, 200))] * 6, (479, 641), 3.0)
    res = B.identity_paste(small)
    assert res["faces"] == 6 and res["psnr_db_min"] >= 35.0 and res["changed_px_outside_mask"] == 0


def test_two_faces_pasted_in_one_batched_warp(two_faces, monkeypatch):
    _, frames = two_faces
    frame = frames[0]
    with FaceTracker(TrackerConfig(max_faces=2)) as tr:
        tracks = tr.update(frame, 0.0)
    assert len(tracks) == 2
    batch = Aligner().crop(frame, tracks)
    calls = []
    real = torch.nn.functional.grid_sample
    monkeypatch.setattr(torch.nn.functional, "grid_sample", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    comp = Compositor()
    out = comp.paste(frame, batch, colour_crops([[1, -1, -1], [-1, -1, 1]]))
    # both faces in each call: one warp for the colour, one for the mask — not one per face
    assert len(calls) == 2 and all(c[0] == 2 for c in calls)
    # each face's centre took its colour; everything outside the masks is untouched
    for t, colour in zip(tracks, ([255, 0, 0], [0, 0, 255])):
        cx, cy = np.round(B.apply_affine(t.crop_to_frame, [[127.5, 127.5]])[0]).astype(int)
        np.testing.assert_array_equal(out[cy, cx], colour)
    outside = B.analytic_outside_mask(frame.shape[:2], batch.crop_to_frame, comp.template)
    np.testing.assert_array_equal(out[outside], frame[outside])
    assert comp.stats.faces_pasted == 2


def test_overlapping_faces_composite_in_stable_id_order():
    frame = np.full((200, 300, 3), 90, np.uint8)
    m1, m2 = similarity(0.5, 0, 60, 30), similarity(0.5, 10, 90, 40)
    crops = colour_crops([[1, -1, -1], [-1, 1, -1]])
    comp = Compositor()
    a = AlignedBatch(crops, np.stack([m1, m2]), (7, 3), (0, 0))
    b = AlignedBatch(crops.flip(0), np.stack([m2, m1]), (3, 7), (0, 0))
    out_a, out_b = comp.paste(frame, a, a.crops), comp.paste(frame, b, b.crops)
    np.testing.assert_array_equal(out_a, out_b)  # batch order does not matter
    # in the overlap, the higher id (7, red) is on top
    p = np.round(B.apply_affine(m1, [[127.5, 127.5]])[0] * 0.5 + B.apply_affine(m2, [[127.5, 127.5]])[0] * 0.5).astype(int)
    np.testing.assert_array_equal(out_a[p[1], p[0]], [255, 0, 0])


def test_no_face_passes_through_unchanged_and_is_counted():
    comp = Compositor()
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    empty = Aligner().crop_matrices(img, np.zeros((0, 2, 3)), [])
    assert comp.paste(img, empty, empty.crops) is img
    frame = Frame(img, 1.0, 5)
    other = AlignedBatch(colour_crops([[1, 1, 1]]), similarity(0.1, 0, 10, 10)[None], (0,), (4,))
    assert comp.paste(frame, other, other.crops) is frame  # entries of another frame only
    assert comp.stats.frames_passed_through == 2 and comp.stats.frames == 2
    gray = img[..., 0].copy()
    out = comp.paste(gray, empty, empty.crops)  # a bare grayscale frame comes back as RGB
    assert out.shape == (48, 64, 3) and (out == gray[..., None]).all()


def test_frame_pastes_only_its_own_entries_of_a_multi_frame_batch():
    img = np.zeros((100, 100, 3), np.uint8)
    m = similarity(0.3, 0, 10, 10)
    batch = AlignedBatch(colour_crops([[1, 1, 1], [1, -1, -1]]), np.stack([m, m]), (0, 0), (4, 5))
    out = Compositor().paste(Frame(img, 0.2, 5), batch, batch.crops)
    assert isinstance(out, Frame) and out.index == 5
    c = np.round(B.apply_affine(m, [[127.5, 127.5]])[0]).astype(int)
    np.testing.assert_array_equal(out.image[c[1], c[0]], [255, 0, 0])  # frame 5's crop, not frame 4's


def test_tensor_frames_give_the_same_result(rng):
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    m = np.stack([similarity(0.35, 15, 20, 10)])
    stylized = torch.rand(1, 3, 256, 256) * 2 - 1
    batch = AlignedBatch(stylized, m, (0,), (0,))
    a = Compositor().paste(img, batch, stylized)
    b = Compositor().paste(torch.from_numpy(img), batch, stylized)
    assert isinstance(b, torch.Tensor) and b.dtype == torch.uint8
    np.testing.assert_array_equal(a, b.numpy())


def test_out_of_range_model_output_is_clamped_not_wrapped():
    img = np.full((100, 100, 3), 200, np.uint8)
    m = similarity(0.3, 0, 10, 10)[None]
    batch = AlignedBatch(colour_crops([[5.0, -5.0, 1.0]]), m, (0,), (0,))
    out = Compositor().paste(img, batch, batch.crops)
    c = np.round(B.apply_affine(m[0], [[127.5, 127.5]])[0]).astype(int)
    np.testing.assert_array_equal(out[c[1], c[0]], [255, 0, 255])
    assert out.min() >= 0 and (out[..., 1] <= 200).all()


def test_bad_stylized_shape_and_partly_outside_face():
    img = np.zeros((60, 80, 3), np.uint8)
    m = similarity(0.5, 0, -60, -40)[None]  # mostly outside the frame
    batch = AlignedBatch(colour_crops([[1, 1, 1]]), m, (0,), (0,))
    with pytest.raises(CompositeError, match="same size"):
        Compositor().paste(img, batch, torch.zeros(1, 3, 128, 128))
    out = Compositor().paste(img, batch, batch.crops)
    assert out.shape == img.shape and out.any()
    far = AlignedBatch(colour_crops([[1, 1, 1]]), similarity(0.5, 0, 5000, 0)[None], (0,), (0,))
    comp = Compositor()
    assert comp.paste(img, far, far.crops) is img and comp.stats.faces_outside_frame == 1


def test_mask_is_exactly_zero_outside_the_ellipse_and_scales():
    t = CropTemplate.default()
    m = t.mask()
    assert m.shape == (256, 256) and float(m.max()) == 1.0
    assert float(m[0, 0]) == 0.0 and float(m[128, 0]) == 0.0  # crop border never pasted
    assert float(m[0, :].max()) == 0.0 and float(m[-1, :].max()) == 0.0
    assert CropTemplate.default(512).mask().shape == (512, 512)


def test_real_footage_metric_on_a_video_file(ref, tmp_path):
    """The benchmark's real-footage metric (eye corners re-found by MediaPipe in every crop) on
    a clip written with PyAV and read back: the smoothed crops beat raw per-frame alignment on
    both std and mean |second difference|."""
    size, ms = B.synthesized_transforms(ref, 30)["still_noise3"]
    path = tmp_path / "still.mp4"
    B.write_video(str(path), B.synth_clip(ref, ms, size, 3.0, seed=4), fps=30)
    frames, times = B.read_video(str(path))
    res = B.redetect_steadiness(frames, times)
    assert res["measured"] == 30
    assert res["smoothed_beats_raw"], res


def test_box_paste_covers_the_whole_crop_and_nothing_outside_it():
    img = np.random.default_rng(3).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    m = similarity(0.5, 20, 80, 20)
    batch = AlignedBatch(colour_crops([[1, -1, -1]]), m[None], (0,), (0,))
    comp = Compositor(mode="box")
    out = comp.paste(img, batch, batch.crops)
    cov = comp.coverage(img.shape[:2], m[None], 256)
    # every pixel whose centre maps outside the crop square (+ the bilinear footprint) is exact
    ys, xs = np.mgrid[0:200, 0:300]
    c = B.apply_affine(invert_affine(m), np.stack([xs.ravel(), ys.ravel()], 1)).reshape(200, 300, 2)
    outside = ((c < -0.5 - 2.0) | (c > 255.5 + 2.0)).any(-1)
    np.testing.assert_array_equal(out[outside], img[outside])
    assert (cov[outside] == 0).all()
    # the corners of the crop are pasted too (unlike the face ellipse), its very edge faded
    corner = np.round(B.apply_affine(m, [[20.0, 20.0]])[0]).astype(int)
    np.testing.assert_array_equal(out[corner[1], corner[0]], [255, 0, 0])
    assert Compositor(mode="face").coverage(img.shape[:2], m[None], 256)[corner[1], corner[0]] == 0
    edge = np.round(B.apply_affine(m, [[0.0, 128.0]])[0]).astype(int)
    assert 0 < cov[edge[1], edge[0]] < 0.2


def test_head_paste_needs_masks_and_bad_modes_are_refused():
    img = np.zeros((100, 100, 3), np.uint8)
    batch = AlignedBatch(colour_crops([[1, 1, 1]]), similarity(0.3, 0, 10, 10)[None], (0,), (0,))
    with pytest.raises(CompositeError, match="HeadMasker"):
        Compositor(mode="head").paste(img, batch, batch.crops)
    with pytest.raises(ValueError, match="paste mode"):
        Compositor(mode="hat")


def test_head_paste_extends_the_crop_colours_only_where_the_mask_says():
    """Masks on a head square twice the crop: with extend_hair the paste reaches beyond the
    crop (its edge colours carried outward); without, it stops at the crop's edge."""
    img = np.full((300, 300, 3), 50, np.uint8)
    m = similarity(0.5, 0, 86, 86)                       # the crop covers frame 86..214
    crop = torch.full((1, 3, 256, 256), -1.0)
    crop[:, 1] = 1.0                                      # green
    square = np.array([[2.0, 0.0, -128.0], [0.0, 2.0, -128.0]])   # 256 mask px over 2 crops
    masks = torch.ones(1, 1, 256, 256)
    masks[..., :8, :] = masks[..., -8:, :] = masks[..., :, :8] = masks[..., :, -8:] = 0.0
    batch = AlignedBatch(crop, m[None], (0,), (0,), masks=masks, mask_to_crop=square)
    out = Compositor(mode="head", extend_hair=True).paste(img, batch, crop)
    np.testing.assert_array_equal(out[150, 150], [0, 255, 0])
    np.testing.assert_array_equal(out[150, 60], [0, 255, 0])       # beyond the crop: extended
    np.testing.assert_array_equal(out[5, 5], [50, 50, 50])         # beyond the mask: untouched
    out = Compositor(mode="head", extend_hair=False).paste(img, batch, crop)
    np.testing.assert_array_equal(out[150, 150], [0, 255, 0])
    np.testing.assert_array_equal(out[150, 60], [50, 50, 50])      # stops at the crop


def test_match_colour_moves_the_face_towards_the_real_mean():
    img = np.full((120, 120, 3), 90, np.uint8)
    m = similarity(0.4, 0, 10, 10)
    real = torch.full((1, 3, 256, 256), -0.2)             # the real face: grey 102
    real[:, 0] = 0.4                                       # reddish
    anime = torch.zeros(1, 3, 256, 256)                    # the anime face: grey 127.5
    batch = AlignedBatch(real, m[None], (0,), (0,))
    c = np.round(B.apply_affine(m, [[127.5, 127.5]])[0]).astype(int)
    plain = Compositor().paste(img, batch, anime)[c[1], c[0]].astype(int)
    matched = Compositor(match_colour=True).paste(img, batch, anime)[c[1], c[0]].astype(int)
    target = ((real[0, :, 0, 0] + 1) * 127.5).numpy()
    assert np.abs(matched - target).max() <= 2 < np.abs(plain - target).max()


def test_head_paste_of_tensor_frames_matches_numpy(rng):
    img = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    m = np.stack([similarity(0.4, 10, 40, 20)])
    stylized = torch.rand(1, 3, 256, 256) * 2 - 1
    masks = torch.rand(1, 1, 128, 128)
    square = np.array([[3.2, 0.0, -76.9], [0.0, 3.2, -128.1]])
    batch = AlignedBatch(stylized, m, (0,), (0,), masks=masks, mask_to_crop=square)
    for extend in (True, False):
        a = Compositor(mode="head", extend_hair=extend).paste(img, batch, stylized)
        b = Compositor(mode="head", extend_hair=extend).paste(torch.from_numpy(img), batch, stylized)
        np.testing.assert_array_equal(a, b.numpy())
