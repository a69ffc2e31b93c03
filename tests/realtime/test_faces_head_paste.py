"""The head paste end to end with MediaPipe: HeadMasker (selfie segmentation ∩ the head region
from the landmarks, smoothed in time) + Compositor(mode="head"), on clips made from the
astronaut photo with known motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from realtime.faces import (Aligner, Compositor, CropTemplate, FaceTracker, HeadMaskConfig, HeadMasker,
                            TrackerConfig)
from realtime.faces.align import apply_affine, compose_affine, invert_affine
from realtime.faces.masks import FACE_OVAL

pytest.importorskip("mediapipe")
pytest.importorskip("skimage")

W, H = 480, 360
SIDE = int(round(H * 0.45 * 1.6))           # face_scene's head square


def scene(dx=0.0, dy=0.0, width=W, height=H, sigma=2.0, seed=0):
    from realtime.synthetic import face_scene

    img = face_scene(width, height, 0.45, dx=dx, dy=dy).astype(np.float32)
    img += np.random.default_rng(seed).normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def head_square_box(dx, dy=0.0, width=W, height=H):
    """Where face_scene put the photo (x0, y0, x1, y1): the person is inside it."""
    x0 = int(round((width - SIDE) / 2 + dx))
    y0 = int(round((height - SIDE) / 2 + dy))
    return x0, y0, x0 + SIDE, y0 + SIDE


def psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def run_head(frames, model=lambda crops: crops, extend_hair=False, config=None, max_faces=1):
    """Track, align, mask and paste every frame; (outputs, batches, compositor)."""
    aligner, masker = Aligner(), HeadMasker(config=config)
    comp = Compositor(mode="head", extend_hair=extend_hair)
    outs, batches = [], []
    with FaceTracker(TrackerConfig(max_faces=max_faces)) as tracker:
        for i, f in enumerate(frames):
            tracks = tracker.update(f, i / 30.0)
            batch = masker(f, tracks, aligner.crop(f, tracks))
            outs.append(comp.paste(f, batch, model(batch.crops)))
            batches.append(batch)
    masker.close()
    return outs, batches, comp


def test_identity_model_in_head_mode_leaves_a_video_nearly_unchanged(tmp_path):
    """A moving face, encoded with PyAV and read back: crop -> paste unchanged in head mode
    gives >= 35 dB over the frame and over the pasted region."""
    from realtime.synthetic import read_back, write_video
    from benchmarks.faces import read_video

    path = write_video(tmp_path / "move.mp4", [scene(12 * math.sin(i / 4), seed=i) for i in range(10)], fps=30)
    assert read_back(path)["frames"] == 10
    frames, _ = read_video(str(path))
    outs, batches, comp = run_head(frames)
    for f, out, b in zip(frames, outs, batches):
        assert len(b) == 1 and b.masks.shape == (1, 1, 256, 256)
        cov = comp.coverage(f.shape[:2], b.crop_to_frame, b.crop_size, b.masks, b.mask_to_crop)
        region = cov > 0
        face = Compositor(mode="face").coverage(f.shape[:2], b.crop_to_frame, b.crop_size)
        assert region.sum() > 1.2 * (face > 0).sum()                   # the head, not just the face,
        assert (cov[face > 0.6] > 0.5).all()                           # and the face in it
        assert psnr(out, f) >= 35.0 and psnr(out[region], f[region]) >= 35.0
        assert np.array_equal(out[~region], f[~region])


def test_pixels_outside_the_person_and_the_widened_head_are_bit_exact():
    """A visible 'model' (colour negative) and the hair extended beyond the crop: every pixel of
    the plain background away from the photo, and every pixel outside the widest head region
    the landmarks allow, comes back exactly as it went in."""
    frames = [scene(0.0, seed=i) for i in range(4)]
    cfg = HeadMaskConfig()
    outs, batches, _ = run_head(frames, model=lambda c: -c, extend_hair=True, config=cfg)
    with FaceTracker() as tracker:
        tracks = [tracker.update(f, i / 30.0) for i, f in enumerate(frames)]
    for f, out, b, tk in zip(frames, outs, batches, tracks):
        changed = (out != f).any(-1)
        assert changed.sum() > 5000                                   # the head was replaced
        # 1. outside the person: plain background more than 6 px from the photo
        x0, y0, x1, y1 = head_square_box(0.0)
        background = np.ones(f.shape[:2], bool)
        background[max(0, y0 - 6):y1 + 6, max(0, x0 - 6):x1 + 6] = False
        assert not changed[background].any()
        # 2. outside the widest head region: an ellipse on the oval's box with the largest
        #    widening in every direction (+5 % margin), in head-square pixels; and not the face
        to_frame = compose_affine(b.crop_to_frame[0], b.mask_to_crop)
        oval = apply_affine(invert_affine(to_frame), tk[0].landmarks_frame[list(FACE_OVAL)])
        lo, hi = oval.min(0), oval.max(0)
        c, half = (lo + hi) / 2, (hi - lo) / 2
        ys, xs = np.mgrid[0:f.shape[0], 0:f.shape[1]]
        sq = apply_affine(invert_affine(to_frame), np.stack([xs.ravel(), ys.ravel()], 1))
        rx, ry = half[0] * cfg.widen_side * 1.05, half[1] * cfg.widen_up * 1.05
        far = (((sq[:, 0] - c[0]) / rx) ** 2 + ((sq[:, 1] - c[1]) / ry) ** 2 > 1.0).reshape(f.shape[:2])
        t = CropTemplate.default(256)
        crop_pts = apply_affine(invert_affine(b.crop_to_frame[0]), np.stack([xs.ravel(), ys.ravel()], 1))
        (fx, fy), (frx, fry) = t.mask_center_crop, t.mask_radii_crop
        off_face = ((((crop_pts[:, 0] - fx) / (frx + 2)) ** 2 + ((crop_pts[:, 1] - fy) / (fry + 2)) ** 2) > 1.0)
        outside = far & off_face.reshape(f.shape[:2])
        assert outside.sum() > 0.3 * outside.size
        assert not changed[outside].any()


def test_two_overlapping_faces_keep_their_own_masks():
    """Two heads close together, their head squares overlapping: each mask covers its own face
    and not the other's; each face takes its own colour."""
    tile_w = 150
    left = scene(0, width=tile_w, height=H, seed=1)
    right = scene(0, width=tile_w, height=H, seed=2)
    frame = np.concatenate([left, right], axis=1)              # 300 x 360, faces 150 px apart
    aligner, masker = Aligner(), HeadMasker()
    with FaceTracker(TrackerConfig(max_faces=2)) as tracker:
        tracks = tracker.update(frame, 0.0)
        assert len(tracks) == 2
        batch = masker(frame, tracks, aligner.crop(frame, tracks))
    masker.close()
    comp = Compositor(mode="head", extend_hair=False)
    centres = [apply_affine(m, [[127.5, 140.0]])[0] for m in batch.crop_to_frame]
    squares = [compose_affine(m, batch.mask_to_crop) for m in batch.crop_to_frame]
    # the two head squares overlap ...
    a0, a1 = apply_affine(squares[0], [[0, 0], [255, 255]])
    b0, b1 = apply_affine(squares[1], [[0, 0], [255, 255]])
    assert min(a1[0], b1[0]) > max(a0[0], b0[0])
    for i in range(2):
        cov = comp.coverage(frame.shape[:2], batch.crop_to_frame[i:i + 1], 256, batch.masks[i:i + 1],
                            batch.mask_to_crop)
        own = np.round(centres[i]).astype(int)
        other = np.round(centres[1 - i]).astype(int)
        assert cov[own[1], own[0]] == pytest.approx(1.0)
        assert cov[other[1], other[0]] == 0.0                      # ... but never the other face
    colours = torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])[:, :, None, None].expand(2, 3, 256, 256)
    out = comp.paste(frame, batch, colours.contiguous())
    order = np.argsort(batch.track_ids)
    for k, i in enumerate(order):
        x, y = np.round(centres[i]).astype(int)
        np.testing.assert_array_equal(out[y, x], [[255, 0, 0], [0, 0, 255]][k])


def test_a_face_leaving_the_frame():
    """The head slides out through the right edge: masks are made while it is partly outside,
    nothing outside the frame is touched, and once the track ends the frames pass unchanged and
    the masker forgets it."""
    frames = [scene(40.0 * i, seed=i) for i in range(12)]
    aligner, masker = Aligner(), HeadMasker()
    comp = Compositor(mode="head")
    partly = 0
    with FaceTracker() as tracker:
        for i, f in enumerate(frames + [scene(1000.0, seed=99)] * 7):
            tracks = tracker.update(f, i / 30.0)
            batch = masker(f, tracks, aligner.crop(f, tracks))
            out = comp.paste(f, batch, -batch.crops)
            assert out.shape == f.shape
            if len(batch):
                corners = apply_affine(compose_affine(batch.crop_to_frame[0], batch.mask_to_crop),
                                       [[0, 0], [255, 255]])
                partly += bool(corners[1, 0] > W)
                assert torch.isfinite(batch.masks).all()
            else:
                assert out is f and not masker._history
    masker.close()
    assert partly >= 2                          # it was tracked while leaving


def test_mask_is_steady_on_a_still_face():
    """A still face under σ=3 sensor noise: the head mask's edge barely moves from frame to
    frame, and its temporal smoothing makes it steadier than the per-frame segmentation."""
    frames = [scene(0.0, sigma=3.0, seed=i) for i in range(16)]

    def edge_change(cfg):
        _, batches, comp = run_head(frames, config=cfg)
        covs = [comp.coverage((H, W), b.crop_to_frame, 256, b.masks, b.mask_to_crop) for b in batches]
        vals = []
        for a, b in zip(covs[3:], covs[4:]):
            band = ((a > 0.02) & (a < 0.98)) | ((b > 0.02) & (b < 0.98))
            vals.append(np.abs(a - b)[band].mean())
        return float(np.mean(vals))

    smoothed = edge_change(HeadMaskConfig())
    raw = edge_change(HeadMaskConfig(smooth_base=1.0, smooth_follow=0.0))
    assert smoothed < 0.01
    assert smoothed < 0.7 * raw
