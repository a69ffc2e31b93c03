"""Paste masks: pure tensor math (no MediaPipe, no I/O).

A paste mask says, for every pixel of a face's square, how much of the stylised crop replaces
the frame there (1: all of it, 0: the frame pixel is kept exactly). The compositor warps it into
the frame with the face's own matrix. One mask per paste mode:

* ``face`` — the template's feathered inner-face ellipse (:meth:`CropTemplate.mask`);
* ``box`` — the whole square crop, faded to 0 over a band at its edges (:func:`border_ramp`);
* ``head`` — the person's head and hair: a person probability (selfie segmentation) times a head
  region derived from the face-mesh oval and widened to the hair (:func:`head_prior`), never
  less than the ``face`` ellipse (:func:`combine_head`), smoothed over time
  (:func:`motion_compensate` + :func:`temporal_filter`), faded at its square's edges.

The ``head`` mask lives on the *head square* (:func:`head_square_to_crop`): the crop square
widened and raised, so that hair above and beside the crop is seen too. Its resolution ``M`` is
its own (the segmentation's); the matrices say where it lies. Coordinates follow
:mod:`realtime.types`: pixel centres at integers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .align import affine_grid, compose_affine, invert_affine, pixel_to_normalized

__all__ = ["FACE_OVAL", "HeadMaskConfig", "smoothstep", "border_ramp", "ellipse_ramp",
           "head_square_to_crop", "head_prior", "person_ramp", "combine_head",
           "motion_compensate", "temporal_filter"]

# MediaPipe face-mesh landmarks of the face oval, in order around the face from the top of the
# forehead (mediapipe.solutions.face_mesh_connections.FACEMESH_FACE_OVAL as a loop).
FACE_OVAL: tuple[int, ...] = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365,
                              379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93,
                              234, 127, 162, 21, 54, 103, 67, 109)


@dataclass(frozen=True)
class HeadMaskConfig:
    """How the ``head`` mask is made. Widths are multiples of the face oval's half-size.

    The face oval of face mesh ends at the hairline; the head region reaches ``widen_up`` times
    its half-height above its centre, ``widen_side`` times its half-width to each side (where
    hair hangs beside the face) and ``widen_down`` below (the chin and a little neck)."""

    mask_size: int = 256            # pixels of the head square's mask and of the segmentation input
    model_selection: int = 0        # selfie segmentation: 0 general (square input), 1 landscape
    square_scale: float = 1.6       # head square side / crop side ...
    square_raise: float = 0.2       # ... its centre this many crop sides above the crop's
    widen_side: float = 2.0         # beside the face at eye height ...
    widen_side_low: float = 1.25    # ... narrowing to this at the chin (not the shoulders)
    widen_up: float = 2.3
    widen_down: float = 1.06
    head_feather: float = 0.15      # the head region falls from 1 to 0 over this much of its radius
    person_lo: float = 0.25         # segmentation probability ramp: 0 below lo, 1 above hi
    person_hi: float = 0.75
    edge_feather: float = 0.06      # the fade at the crop's edges, a fraction of its side
    smooth_base: float = 0.35       # temporal filter: weight of the new mask for small changes ...
    smooth_follow: float = 2.5      # ... rising by this times the change (large changes follow at once)

    def __post_init__(self) -> None:
        if not 32 <= int(self.mask_size) <= 1024:
            raise ValueError(f"mask_size must be within 32..1024, got {self.mask_size}")
        if self.model_selection not in (0, 1):
            raise ValueError(f"model_selection must be 0 or 1, got {self.model_selection}")
        if not 1.0 <= self.square_scale <= 3.0 or not 0.0 <= self.square_raise <= 0.5 * (self.square_scale - 1.0):
            raise ValueError("need 1 <= square_scale <= 3 and 0 <= square_raise <= (square_scale - 1) / 2 "
                             "(the head square holds the whole crop)")
        if min(self.widen_side, self.widen_side_low, self.widen_up, self.widen_down) < 1.0:
            raise ValueError("the head region must be at least the face oval (widen_* >= 1)")
        if not 0.0 < self.head_feather <= 1.0 or not 0.0 < self.edge_feather <= 0.5:
            raise ValueError("head_feather must be in (0, 1] and edge_feather in (0, 0.5]")
        if not 0.0 <= self.person_lo < self.person_hi <= 1.0:
            raise ValueError(f"need 0 <= person_lo < person_hi <= 1, got {self.person_lo}, {self.person_hi}")
        if not 0.0 < self.smooth_base <= 1.0 or self.smooth_follow < 0:
            raise ValueError("smooth_base must be in (0, 1] and smooth_follow >= 0")


def smoothstep(t):
    """C1 ramp: 0 for t <= 0, 1 for t >= 1 (exactly), 3t² - 2t³ between."""
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _grid(size: int, device):
    import torch

    v = torch.arange(size, dtype=torch.float32, device=device)
    return v.view(1, size), v.view(size, 1)          # xs (1×M), ys (M×1)


def border_ramp(size: int, feather: float, device=None):
    """M×M: 1 inside, falling smoothly to exactly 0 at the crop's outer pixel edges over
    ``feather`` × ``size`` pixels (the ``box`` mask, and the fade of every ``head`` mask)."""
    import torch

    xs, ys = _grid(size, device)
    band = max(float(feather) * size, 1.0)
    # distance from each pixel centre to the nearest outer edge (at -0.5 and size - 0.5)
    dx = torch.minimum(xs + 0.5, size - 0.5 - xs)
    dy = torch.minimum(ys + 0.5, size - 0.5 - ys)
    return smoothstep(dx / band) * smoothstep(dy / band)


def ellipse_ramp(size: int, center, radii, feather: float, device=None):
    """M×M: 1 inside the axis-aligned ellipse, a smoothstep rim over ``feather`` of its radius,
    exactly 0 outside (same shape as :meth:`CropTemplate.mask`, anywhere in any square)."""
    import torch

    xs, ys = _grid(size, device)
    r = torch.sqrt(((xs - center[0]) / radii[0]) ** 2 + ((ys - center[1]) / radii[1]) ** 2)
    return smoothstep((1.0 - r) / feather)


def head_square_to_crop(crop_size: int, mask_size: int, cfg: HeadMaskConfig) -> np.ndarray:
    """2×3 map from pixels of the ``mask_size`` head square to crop pixels: a square
    ``square_scale`` crop sides wide, centred ``square_raise`` crop sides above the crop's centre
    (pixel edges map to pixel edges)."""
    side = cfg.square_scale * crop_size
    k = side / mask_size
    left = 0.5 * crop_size - 0.5 * side                       # edge coordinates
    top = 0.5 * crop_size - cfg.square_raise * crop_size - 0.5 * side
    return np.array([[k, 0.0, left + 0.5 * k - 0.5], [0.0, k, top + 0.5 * k - 0.5]])


def head_prior(oval_mask_px: np.ndarray, size: int, cfg: HeadMaskConfig, device=None):
    """M×M soft head region from the face-oval landmarks (K×2, in mask pixels): an ellipse on
    the oval's bounding box widened by ``cfg.widen_*`` — taller above the centre than below,
    wide at eye height where hair hangs beside the face, narrowing towards the chin so that
    the shoulders stay out — 1 inside, a smoothstep rim of ``head_feather`` of its radius,
    exactly 0 outside. The crop is upright (rolled with the eyes), so the axes are too."""
    import torch

    p = np.asarray(oval_mask_px, dtype=np.float64)
    lo, hi = p.min(0), p.max(0)
    cx, cy = (lo + hi) / 2
    half_w = max((hi[0] - lo[0]) / 2, 1.0)
    half_h = max((hi[1] - lo[1]) / 2, 1.0)
    xs, ys = _grid(size, device)
    low = smoothstep((ys - cy) / (half_h * cfg.widen_down))          # 0 above the centre, 1 at the chin
    rx = half_w * (cfg.widen_side + (cfg.widen_side_low - cfg.widen_side) * low)
    ry = torch.where(ys < cy, torch.tensor(half_h * cfg.widen_up, device=device),
                     torch.tensor(half_h * cfg.widen_down, device=device))
    r = torch.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
    return smoothstep((1.0 - r) / cfg.head_feather)


def person_ramp(prob, cfg: HeadMaskConfig):
    """The segmentation's person probability made crisp but not binary (no stair-steps)."""
    return smoothstep((prob - cfg.person_lo) / (cfg.person_hi - cfg.person_lo))


def combine_head(person, prior, face):
    """The ``head`` mask before smoothing: person ∩ head region, never less than the face."""
    import torch

    return torch.maximum(face, person * prior)


def motion_compensate(prev_mask, prev_mask_to_frame: np.ndarray, mask_to_frame: np.ndarray):
    """Last frame's mask (M×M) re-expressed on this frame's square (its matrix may have moved
    with the face). Returns the warped mask and a validity map (0 where this square sees frame
    pixels the last one did not)."""
    import torch
    import torch.nn.functional as F

    m = prev_mask.shape[-1]
    norm = pixel_to_normalized(m, m)
    cur_to_prev = compose_affine(invert_affine(prev_mask_to_frame), mask_to_frame)
    theta = compose_affine(norm, compose_affine(cur_to_prev, invert_affine(norm)))
    theta_t = torch.as_tensor(theta[None], dtype=torch.float32, device=prev_mask.device)
    grid = affine_grid(theta_t, m, m)
    x = prev_mask.reshape(1, 1, m, m).float()
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (grid.abs() <= 1.0).all(-1).float()
    return warped.reshape(prev_mask.shape), inside.reshape(prev_mask.shape)


def temporal_filter(prev, raw, valid, cfg: HeadMaskConfig):
    """Adaptive exponential smoothing per pixel: small changes (a boiling edge) are averaged,
    large ones (the head really moved) are followed at once, so edges do not lag a frame.
    Where ``valid`` is 0 (no history), the new mask is taken as it is."""
    k = (cfg.smooth_base + cfg.smooth_follow * (raw - prev).abs()).clamp(max=1.0)
    k = 1.0 - valid * (1.0 - k)
    return prev + k * (raw - prev)
