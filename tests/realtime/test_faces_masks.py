"""realtime.faces.masks: the paste masks' tensor math (no MediaPipe needed except for the oval)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.faces import CropTemplate
from realtime.faces.align import apply_affine, compose_affine
from realtime.faces.masks import (FACE_OVAL, HeadMaskConfig, border_ramp, combine_head,
                                  ellipse_ramp, head_prior, head_square_to_crop, motion_compensate,
                                  person_ramp, smoothstep, temporal_filter)


def test_smoothstep_is_exact_at_its_ends():
    t = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0])
    assert smoothstep(t).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_border_ramp_is_one_inside_and_fades_to_the_edges():
    m = border_ramp(64, 0.1)
    assert m.shape == (64, 64) and float(m[32, 32]) == 1.0
    assert float(m[0].max()) < 0.05 and float(m[:, -1].max()) < 0.05     # outermost pixels ~0
    assert torch.equal(m, m.flip(0)) and torch.equal(m, m.t())          # symmetric
    assert float(m[7, 32]) == 1.0 and float(m[5, 32]) < 1.0              # band of 6.4 px


def test_ellipse_ramp_draws_the_template_mask():
    t = CropTemplate.default(128)
    ours = ellipse_ramp(128, t.mask_center_crop, t.mask_radii_crop, t.mask_feather)
    torch.testing.assert_close(ours, t.mask(), atol=1e-6, rtol=0)


def test_head_square_holds_the_crop_and_reaches_above_it():
    cfg = HeadMaskConfig()
    m = head_square_to_crop(64, 256, cfg)
    corners = apply_affine(m, [[-0.5, -0.5], [255.5, 255.5]])
    side = cfg.square_scale * 64
    np.testing.assert_allclose(corners[1] - corners[0], [side, side])
    # centred horizontally on the crop, raised by square_raise crop sides, bottom at the crop's
    np.testing.assert_allclose(corners[:, 0].mean(), 31.5)
    np.testing.assert_allclose(corners[:, 1].mean(), 31.5 - cfg.square_raise * 64)
    assert corners[0, 0] <= -0.5 and corners[0, 1] <= -0.5 and corners[1, 0] >= 63.5 and corners[1, 1] >= 63.5
    with pytest.raises(ValueError, match="holds the whole crop"):
        HeadMaskConfig(square_scale=1.2, square_raise=0.3)


def _oval(cx=128.0, cy=140.0, rx=40.0, ry=50.0, n=36):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.sin(a), cy - ry * np.cos(a)], 1)


def test_head_prior_covers_the_oval_and_widens_up_and_sideways():
    cfg = HeadMaskConfig(head_feather=0.1)
    p = head_prior(_oval(), 256, cfg)
    assert float(p[140, 128]) == 1.0
    # the face oval is inside (its lower end in the rim: there the face ellipse takes over)
    for x, y in _oval(rx=38, ry=48):
        v = float(p[int(round(y)), int(round(x))])
        assert v == 1.0 if y <= 140 else v > 0.2
    # hair above the forehead and beside the temples is in; far away is exactly out
    assert float(p[140 - int(50 * 1.8), 128]) == 1.0 and float(p[140, 128 + int(40 * 1.7)]) == 1.0
    assert float(p[140 - int(50 * 2.4), 128]) == 0.0 and float(p[0, 0]) == 0.0
    # narrow below: the shoulders beside the chin stay out
    assert float(p[140 + 45, 128 + int(40 * 1.6)]) == 0.0
    assert float(p[140 + int(50 * 1.2), 128]) == 0.0


def test_person_ramp_and_combine():
    cfg = HeadMaskConfig()
    prob = torch.tensor([0.0, 0.2, 0.5, 0.8, 1.0])
    assert person_ramp(prob, cfg).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    face = torch.tensor([1.0, 0.0, 0.3, 0.0])
    person = torch.tensor([0.0, 1.0, 1.0, 1.0])
    prior = torch.tensor([1.0, 1.0, 0.1, 0.0])
    assert combine_head(person, prior, face).tolist() == pytest.approx([1.0, 1.0, 0.3, 0.0])


def test_motion_compensation_follows_the_square():
    m0 = np.array([[2.0, 0.0, 100.0], [0.0, 2.0, 50.0]])          # mask px -> frame px
    mask = torch.zeros(64, 64)
    mask[20:40, 20:40] = 1.0
    same, valid = motion_compensate(mask, m0, m0)
    torch.testing.assert_close(same, mask, atol=1e-5, rtol=0)
    assert float(valid.min()) == 1.0
    # the square moved 10 frame px (5 mask px) right: the content sits 5 px further left in it
    m1 = compose_affine(m0, np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 0.0]]))
    moved, valid = motion_compensate(mask, m0, m1)
    torch.testing.assert_close(moved[:, :59], mask[:, 5:], atol=1e-5, rtol=0)
    assert float(valid[:, -4:].max()) == 0.0 and float(valid[:, :58].min()) == 1.0


def test_temporal_filter_averages_small_changes_and_follows_large_ones():
    cfg = HeadMaskConfig(smooth_base=0.4, smooth_follow=2.0)
    prev = torch.tensor([0.5, 0.0, 0.3])
    raw = torch.tensor([0.55, 1.0, 0.9])
    valid = torch.tensor([1.0, 1.0, 0.0])
    out = temporal_filter(prev, raw, valid, cfg)
    assert float(out[0]) == pytest.approx(0.5 + (0.4 + 2.0 * 0.05) * 0.05)    # jitter damped
    assert float(out[1]) == pytest.approx(1.0)                                # a real edge: at once
    assert float(out[2]) == pytest.approx(0.9)                                # no history: as is
    # a still input converges to itself: no drift
    x = torch.rand(100)
    y = x.clone()
    for _ in range(3):
        y = temporal_filter(y, x, torch.ones(100), cfg)
    torch.testing.assert_close(y, x)


def test_face_oval_is_mediapipes():
    pytest.importorskip("mediapipe")
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    loop = set(zip(FACE_OVAL, FACE_OVAL[1:] + FACE_OVAL[:1]))
    assert loop == set(FACEMESH_FACE_OVAL)


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="mask_size"):
        HeadMaskConfig(mask_size=8)
    with pytest.raises(ValueError, match="widen"):
        HeadMaskConfig(widen_up=0.5)
    with pytest.raises(ValueError, match="person_lo"):
        HeadMaskConfig(person_lo=0.8, person_hi=0.2)
