"""realtime.faces.align: template, weighted similarity fit, batched crop warp (no MediaPipe)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from realtime.faces.align import (
    TEMPLATE_256,
    Aligner,
    AlignmentError,
    CropTemplate,
    apply_affine,
    fit_similarity,
    invert_affine,
    rescale_crop_to_frame,
)


def similarity(scale, angle_deg, tx, ty):
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


@pytest.mark.parametrize("scale,angle", [(0.7, -25), (1.0, 0), (1.4, 25), (3.0, 170)])
def test_fit_recovers_known_similarity(scale, angle):
    t = CropTemplate.default()
    m = similarity(scale, angle, 321.5, -40.25)
    got = fit_similarity(t.points_array(), apply_affine(m, t.points_array()), t.weights_array())
    np.testing.assert_allclose(got, m, atol=1e-9)


def test_fit_never_reflects_or_shears():
    p = CropTemplate.default().points_array()
    mirrored = p * [-1, 1]
    m = fit_similarity(p, mirrored)
    assert np.linalg.det(m[:, :2]) > 0
    assert m[0, 0] == pytest.approx(m[1, 1]) and m[0, 1] == pytest.approx(-m[1, 0])


def test_eye_weighting_resists_mouth_motion():
    """A smile moves the mouth corners; with the template's weights the eyes barely move."""
    t = CropTemplate.default()
    m = similarity(1.3, 5, 200, 150)
    kp = apply_affine(m, t.points_array())
    kp[3] += [-6, -5]  # mouth corners up and out (a smile), frame px
    kp[4] += [6, -5]
    eyes_true = kp[:2]

    def eye_error(weights):
        fit = fit_similarity(t.points_array(), kp, weights)
        return np.abs(apply_affine(fit, t.points_array()[:2]) - eyes_true).max()

    assert eye_error(t.weights_array()) < 0.35 * eye_error(np.ones(5))


def test_degenerate_landmarks_raise():
    with pytest.raises(AlignmentError, match="single point"):
        fit_similarity(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(AlignmentError, match="NaN"):
        fit_similarity(np.ones((5, 2)), np.full((5, 2), np.nan))


def test_template_is_data_in_one_place_and_scales():
    t = CropTemplate.default()
    assert t.size == TEMPLATE_256["size"] == 256
    assert t.points_crop[0] == TEMPLATE_256["points"]["eye_image_left"][:2]
    # eyes near y = 0.36 H, mouth near 0.66 H (FACTS.md), left-right symmetric
    p = t.points_array() / 256
    assert p[0, 1] == pytest.approx(0.36, abs=0.01) and p[3, 1] == pytest.approx(0.66, abs=0.01)
    assert p[0, 0] + p[1, 0] == pytest.approx(255 / 256)
    t512 = CropTemplate.default(512)
    # same framing: pixel-centre coordinates map (p + 0.5) * 2 - 0.5
    np.testing.assert_allclose(t512.points_array(), (t.points_array() + 0.5) * 2 - 0.5)
    wide = t.widened(1.25)
    c = 127.5
    np.testing.assert_allclose(wide.points_array() - c, (t.points_array() - c) / 1.25)
    assert wide.eye_distance_crop < t.eye_distance_crop
    with pytest.raises(ValueError, match="widen"):
        t.widened(10)


def test_rescale_crop_to_frame_keeps_framing():
    m256 = similarity(0.8, 12, 100, 50)
    m128 = rescale_crop_to_frame(m256, 256, 128)
    p256 = np.array([[0.0, 0.0], [255.0, 255.0], [100.0, 30.0]])
    p128 = (p256 + 0.5) / 2 - 0.5
    np.testing.assert_allclose(apply_affine(m128, p128), apply_affine(m256, p256), atol=1e-9)


def reference_crop(img: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Exact bilinear sampling with zeros outside (scipy), in [-1, 1]: the ground truth."""
    from scipy.ndimage import map_coordinates

    ys, xs = np.mgrid[0:size, 0:size]
    pts = apply_affine(m, np.stack([xs.ravel(), ys.ravel()], 1))
    x = img.astype(np.float64) / 127.5 - 1.0
    out = np.stack(
        [map_coordinates(x[..., c], [pts[:, 1], pts[:, 0]], order=1, mode="grid-constant", cval=0.0) for c in range(3)]
    )
    return out.reshape(3, size, size)


def test_crop_matches_exact_bilinear_and_keeps_border_clean(rng):
    img = rng.integers(0, 256, (479, 641, 3), dtype=np.uint8)  # odd size on purpose
    img[:, -1] = 255  # a bright last column: must not be smeared into the crop
    mats = np.stack([similarity(0.9, 20, 150, 40), similarity(1.7, -25, 540, 300), similarity(0.5, 0, 600, 100)])
    batch = Aligner(antialias=False).crop_matrices(img, mats, [3, 1, 2], frame_indices=7)
    assert batch.crops.shape == (3, 3, 256, 256) and batch.crops.dtype == torch.float32
    assert batch.track_ids == (3, 1, 2) and batch.frame_indices == (7, 7, 7)
    for i, m in enumerate(mats):
        ref = reference_crop(img, m, 256)
        np.testing.assert_allclose(batch.crops[i].numpy(), ref, atol=2e-4)
    # the third crop runs off the right edge: beyond the last column it is exactly 0 (mid-grey),
    # not a streak of the bright edge column
    ys, xs = np.mgrid[0:256, 0:256]
    fx = apply_affine(mats[2], np.stack([xs.ravel(), ys.ravel()], 1))[:, 0].reshape(256, 256)
    outside = fx > 641
    assert outside.any()
    assert torch.all(batch.crops[2][:, torch.from_numpy(outside)] == 0)


def test_batched_crop_equals_single_crops(rng):
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    mats = np.stack([similarity(0.4, 10, 30, 20), similarity(0.6, -5, 150, 90)])
    al = Aligner()
    both = al.crop_matrices(img, mats, [0, 1]).crops
    for i in range(2):
        one = al.crop_matrices(img, mats[i : i + 1], [i]).crops[0]
        torch.testing.assert_close(both[i], one, atol=1e-4, rtol=0)


def test_crop_accepts_grayscale_rgba_and_tensors(rng):
    gray = rng.integers(0, 256, (100, 120), dtype=np.uint8)
    m = similarity(0.3, 0, 20, 20)[None]
    al = Aligner()
    a = al.crop_matrices(gray, m, [0]).crops
    b = al.crop_matrices(np.repeat(gray[..., None], 4, 2), m, [0]).crops
    c = al.crop_matrices(torch.from_numpy(gray), m, [0]).crops
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    assert torch.equal(a[:, 0], a[:, 1])


def test_large_faces_are_antialiased():
    """A face 4× larger in the frame than in the crop: a fine checkerboard must average to grey
    instead of aliasing into a coarse pattern."""
    yy, xx = np.mgrid[0:1200, 0:1200]
    img = np.repeat((((xx + yy) % 2) * 255).astype(np.uint8)[..., None], 3, 2)
    m = similarity(4.0, 7, 50, 50)[None]
    aa = Aligner(antialias=True).crop_matrices(img, m, [0]).crops
    plain = Aligner(antialias=False).crop_matrices(img, m, [0]).crops
    assert float(aa.std()) < 0.2 * float(plain.std())


def test_empty_and_off_frame_batches():
    img = np.zeros((50, 60, 3), np.uint8)
    al = Aligner()
    empty = al.crop_matrices(img, np.zeros((0, 2, 3)), [])
    assert len(empty) == 0 and empty.crops.shape == (0, 3, 256, 256)
    off = al.crop_matrices(img, similarity(0.2, 0, 5000, 5000)[None], [0])
    assert torch.all(off.crops == 0)


def test_invert_affine_round_trip():
    m = similarity(1.3, 33, 4, 5)
    p = np.array([[1.0, 2.0], [-3.0, 7.0]])
    np.testing.assert_allclose(apply_affine(invert_affine(m), apply_affine(m, p)), p, atol=1e-12)
    with pytest.raises(AlignmentError):
        invert_affine(np.zeros((2, 3)))
