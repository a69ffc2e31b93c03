"""realtime.faces.temporal.FlowBlend: less flicker on a still face, no lag or ghost when it moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.faces import DeflickerConfig, FlowBlend
from realtime.types import AlignedBatch

S = 64


def texture(shift_px: float = 0.0, seed: int = 0) -> torch.Tensor:
    """A smooth random RGB pattern (3×S×S in [-1, 1]) shifted right by ``shift_px``."""
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.resize(rng.uniform(-1, 1, (12, 24, 3)).astype(np.float32), (2 * S, S), interpolation=cv2.INTER_CUBIC)
    m = np.float32([[1, 0, 32 - shift_px], [0, 1, 0]])
    img = cv2.warpAffine(big, m, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return torch.from_numpy(np.clip(img, -1, 1)).permute(2, 0, 1)


def batch_of(crop: torch.Tensor, track_id: int = 0) -> AlignedBatch:
    return AlignedBatch(crop[None], np.array([[[1.0, 0, 0], [0, 1.0, 0]]]), (track_id,), (0,))


def test_flicker_on_a_still_face_is_averaged_away():
    blend = FlowBlend()
    face = texture()
    rng = np.random.default_rng(1)
    raw, out = [], []
    for _ in range(12):
        y = face + torch.from_numpy(rng.normal(0, 0.05, face.shape).astype(np.float32))  # invented detail
        raw.append(y)
        out.append(blend(batch_of(face), y[None])[0])
    change = lambda seq: np.mean([float((a - b).abs().mean()) for a, b in zip(seq[4:], seq[5:])])  # noqa: E731
    assert change(out) < 0.6 * change(raw)


def test_motion_passes_without_lag_and_jumps_without_ghosts():
    blend = FlowBlend(DeflickerConfig(alpha=0.5))
    errs = []
    for t in range(10):                       # the face and its drawing move 2 px a frame
        crop = texture(2.0 * t)
        y = blend(batch_of(crop), crop[None])[0]
        errs.append(float((y - crop)[:, 8:-8, 8:-8].abs().mean()))
    assert max(errs) < 0.02                   # the output is where the face is now
    other = texture(seed=5)                   # a different face in the same track: kept as is
    y = blend(batch_of(other), other[None])[0]
    assert float((y - other).abs().mean()) < 0.02


def test_tracks_are_kept_apart_and_forgotten():
    blend = FlowBlend()
    a, b = texture(seed=1), texture(seed=2)
    batch = AlignedBatch(torch.stack([a, b]), np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (2, 1, 1)), (3, 4), (0, 0))
    y = blend(batch, torch.stack([a, b]))
    y = blend(batch, torch.stack([a, b]))
    torch.testing.assert_close(y, torch.stack([a, b]), atol=1e-5, rtol=0)
    blend(batch_of(a, 3), a[None])
    assert set(blend._state) == {3}
    with pytest.raises(ValueError, match="alpha"):
        DeflickerConfig(alpha=1.0)
