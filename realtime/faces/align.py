"""Alignment: the crop template, the weighted similarity fit, and the batched crop warp.

The template — where five stable points of a face sit in the model's 256×256 training crops —
lives in ONE place, :data:`TEMPLATE_256` below (measured with MediaPipe face mesh on the
selfie2anime test images the authors ship, see shared/FACTS.md, averaged over the two samples and
mirrored to be left-right symmetric about the crop centre). :meth:`CropTemplate.scaled` makes it
for other model sizes and :meth:`CropTemplate.widened` shows more (``factor > 1``) or less
(``factor < 1``) context around the face.

The fit (:func:`fit_similarity`) is a weighted least-squares similarity (Umeyama, no reflection).
The eyes carry most of the weight: mouth corners move with expression and would drag an
equal-weight fit (the crop would breathe when the person smiles or talks); the nose tip moves
sideways when the head turns. Eye centres are the midpoints of the eye *corners*, which move
neither with gaze (unlike the iris) nor with blinks (unlike the eyelid contour).

The crop warp (:func:`warp_crops`, :class:`Aligner`) is pure tensor math: one batched
``grid_sample`` call for all faces, bilinear, on the frame's device, ``padding_mode="zeros"`` on
an image already mapped to [-1, 1], so parts of the crop outside the frame are 0 = mid-grey.
Why not the alternatives: ``"border"`` replicates the edge row/column into long streaks that the
generator stylises as structure; ``"reflection"`` puts a mirrored second copy of the chin, ear or
hair into the crop, which the generator happily turns into a second face part. A flat neutral
grey carries no structure, is what the stylised output is least sensitive to, and never reaches
the screen because the compositor only writes pixels inside the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..types import AlignedBatch, FaceTrack, Frame, ImageLike, as_rgb_uint8, is_tensor

__all__ = [
    "TEMPLATE_256",
    "KEYPOINT_LANDMARKS",
    "CropTemplate",
    "Aligner",
    "AlignmentError",
    "fit_similarity",
    "keypoints_from_landmarks",
    "invert_affine",
    "compose_affine",
    "rescale_crop_to_frame",
    "pixel_to_normalized",
    "warp_crops",
    "affine_grid",
]


class AlignmentError(ValueError):
    """Landmarks or matrices that cannot define a face crop (degenerate, wrong shape)."""


# --------------------------------------------------------------------------------------------
# The template: the single source of truth for where a face sits in the model's crop.
# Pixel coordinates of a 256×256 crop (pixel centres at integers). Weights are relative.
# --------------------------------------------------------------------------------------------
TEMPLATE_256: dict = {
    "size": 256,
    # FACTS.md positions (MediaPipe, x * 256, i.e. pixel edges) averaged over the two samples,
    # shifted by -0.5 to pixel centres and mirrored about the crop centre x = 127.5.
    "points": {
        # name: (x, y, weight). "image_left" = left side of the picture (the subject's right).
        "eye_image_left": (92.0, 92.0, 1.0),
        "eye_image_right": (163.0, 92.0, 1.0),
        "nose_tip": (127.5, 143.0, 0.3),
        "mouth_image_left": (104.25, 169.25, 0.15),
        "mouth_image_right": (150.75, 169.25, 0.15),
    },
    # Paste-back mask: an ellipse in crop coordinates (covers face, brows and hairline; the face
    # mesh box spans about x 43-216, y 22-220 in the training crops) with a feathered rim.
    "mask": {"center": (127.5, 125.5), "radii": (104.0, 118.0), "feather": 0.22},
}

# MediaPipe face-mesh landmark indices averaged into each template point (same order as above).
KEYPOINT_LANDMARKS: tuple[tuple[int, ...], ...] = (
    (33, 133),  # eye on the image left: outer + inner corner
    (362, 263),  # eye on the image right: inner + outer corner
    (1,),  # nose tip
    (61,),  # mouth corner, image left
    (291,),  # mouth corner, image right
)


@dataclass(frozen=True)
class CropTemplate:
    """Where the five keypoints sit in a ``size``×``size`` crop, their fit weights, and the mask.

    Build with :meth:`default`; derive other sizes with :meth:`scaled` and more / less context
    with :meth:`widened`.
    """

    size: int
    points_crop: tuple[tuple[float, float], ...]
    weights: tuple[float, ...]
    names: tuple[str, ...]
    mask_center_crop: tuple[float, float]
    mask_radii_crop: tuple[float, float]
    mask_feather: float  # fraction of the ellipse radius over which the mask falls from 1 to 0

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"crop size must be at least 8 pixels, got {self.size}")
        if len(self.points_crop) != len(KEYPOINT_LANDMARKS) or len(self.weights) != len(self.points_crop):
            raise ValueError("template needs one point and one weight per keypoint")
        if min(self.weights) < 0 or self.weights[0] <= 0 or self.weights[1] <= 0:
            raise ValueError(f"template weights must be >= 0 with positive eye weights, got {self.weights}")
        if not 0.0 < self.mask_feather <= 1.0:
            raise ValueError(f"mask_feather must be in (0, 1], got {self.mask_feather}")

    @classmethod
    def default(cls, size: int = 256, widen: float = 1.0) -> "CropTemplate":
        """The measured template (:data:`TEMPLATE_256`), scaled to ``size`` and widened."""
        pts = TEMPLATE_256["points"]
        mask = TEMPLATE_256["mask"]
        base = cls(
            size=int(TEMPLATE_256["size"]),
            points_crop=tuple((float(x), float(y)) for x, y, _ in pts.values()),
            weights=tuple(float(w) for _, _, w in pts.values()),
            names=tuple(pts.keys()),
            mask_center_crop=tuple(float(v) for v in mask["center"]),
            mask_radii_crop=tuple(float(v) for v in mask["radii"]),
            mask_feather=float(mask["feather"]),
        )
        return base.scaled(size).widened(widen)

    def scaled(self, size: int) -> "CropTemplate":
        """The same framing for a ``size``×``size`` model (pixel-centre exact: edges map to edges)."""
        size = int(size)
        if size == self.size:
            return self
        k = size / self.size

        def s(p):  # pixel centres at integers: edge coordinate (p + 0.5) scales
            return (p[0] + 0.5) * k - 0.5, (p[1] + 0.5) * k - 0.5

        return replace(
            self,
            size=size,
            points_crop=tuple(s(p) for p in self.points_crop),
            mask_center_crop=s(self.mask_center_crop),
            mask_radii_crop=(self.mask_radii_crop[0] * k, self.mask_radii_crop[1] * k),
        )

    def widened(self, factor: float) -> "CropTemplate":
        """``factor > 1`` shows more around the face (the face gets smaller in the crop);
        ``factor < 1`` zooms in. The paste mask keeps its place in the crop."""
        factor = float(factor)
        if not 0.25 <= factor <= 4.0:
            raise ValueError(f"widen factor must be within [0.25, 4], got {factor}")
        if factor == 1.0:
            return self
        c = (self.size - 1) / 2.0
        return replace(
            self, points_crop=tuple((c + (x - c) / factor, c + (y - c) / factor) for x, y in self.points_crop)
        )

    def points_array(self) -> np.ndarray:
        return np.asarray(self.points_crop, dtype=np.float64)

    def weights_array(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)

    @property
    def eye_distance_crop(self) -> float:
        p = self.points_array()
        return float(np.linalg.norm(p[1] - p[0]))

    def mask(self, device=None, dtype=None):
        """S×S float tensor: 1 inside the face ellipse, smooth fall-off, exactly 0 outside it."""
        import torch

        s = self.size
        ys = torch.arange(s, dtype=torch.float32, device=device).view(s, 1)
        xs = torch.arange(s, dtype=torch.float32, device=device).view(1, s)
        cx, cy = self.mask_center_crop
        rx, ry = self.mask_radii_crop
        r = torch.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
        t = ((1.0 - r) / self.mask_feather).clamp(0.0, 1.0)  # 0 at the rim, 1 inside the feather band
        m = t * t * (3.0 - 2.0 * t)  # smoothstep: C1-continuous, no visible ring
        return m if dtype is None else m.to(dtype)

    def mask_extent_crop(self) -> np.ndarray:
        """4×2 corners of the ellipse's bounding box (the mask is exactly 0 outside it)."""
        cx, cy = self.mask_center_crop
        rx, ry = self.mask_radii_crop
        return np.array([[cx - rx, cy - ry], [cx + rx, cy - ry], [cx + rx, cy + ry], [cx - rx, cy + ry]])


# --------------------------------------------------------------------------------------------
# Matrix helpers (numpy, float64)
# --------------------------------------------------------------------------------------------
def _to3(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    out = np.zeros(m.shape[:-2] + (3, 3))
    out[..., :2, :] = m
    out[..., 2, 2] = 1.0
    return out


def compose_affine(a_to_b: np.ndarray, x_to_a: np.ndarray) -> np.ndarray:
    """``x_to_b = a_to_b ∘ x_to_a`` for 2×3 (or batched N×2×3) matrices."""
    return (_to3(a_to_b) @ _to3(x_to_a))[..., :2, :]


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 (or N×2×3) affine matrix."""
    m3 = _to3(m)
    det = np.linalg.det(m3[..., :2, :2])
    if np.any(np.abs(det) < 1e-12):
        raise AlignmentError("cannot invert a degenerate (zero-scale) crop matrix")
    return np.linalg.inv(m3)[..., :2, :]


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def rescale_crop_to_frame(crop_to_frame: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """Re-express a crop-to-frame matrix made for ``from_size`` crops for ``to_size`` crops
    (same framing, pixel-centre exact)."""
    if from_size == to_size:
        return np.asarray(crop_to_frame, dtype=np.float64)
    k = from_size / to_size  # to-crop pixel -> from-crop pixel
    to_from = np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])
    return compose_affine(crop_to_frame, to_from)


def pixel_to_normalized(width: int, height: int) -> np.ndarray:
    """2×3 map from pixel coordinates to ``grid_sample``'s [-1, 1] (``align_corners=False``)."""
    return np.array([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0]])


# --------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------
def keypoints_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The template's five keypoints (5×2) from face-mesh landmarks (K×2, K >= 468)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 468:
        raise AlignmentError(f"expected ≥468×2 face-mesh landmarks, got shape {lm.shape}")
    return np.stack([lm[list(ids)].mean(axis=0) for ids in KEYPOINT_LANDMARKS])


def fit_similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares similarity ``M`` (2×3) minimising ``Σ w_i |M(src_i) - dst_i|²``.

    Closed form (weighted Umeyama restricted to 2-D rotations: never a reflection, never shear).
    Raises :class:`AlignmentError` when the source points collapse to one point.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise AlignmentError(f"need matching N×2 point sets (N ≥ 2), got {src.shape} and {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(src)) or not np.all(np.isfinite(dst)):
        raise AlignmentError("landmarks contain NaN or inf")
    w = w / w.sum()
    mu_s = w @ src
    mu_d = w @ dst
    s = src - mu_s
    d = dst - mu_d
    var_s = float(w @ (s * s).sum(1))
    if var_s < 1e-12:
        raise AlignmentError("landmarks collapse to a single point; cannot fit a crop")
    # For the complex-number form z_d = c * z_s: c = Σ w conj(z_s) z_d / Σ w |z_s|²
    a = float(w @ (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1])) / var_s
    b = float(w @ (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0])) / var_s
    r = np.array([[a, -b], [b, a]])
    t = mu_d - r @ mu_s
    return np.concatenate([r, t[:, None]], axis=1)


def crop_to_frame_from_landmarks(landmarks_frame: np.ndarray, template: CropTemplate) -> np.ndarray:
    """The raw (unsmoothed) crop→frame similarity for one face's landmarks."""
    kp = keypoints_from_landmarks(landmarks_frame)
    return fit_similarity(template.points_array(), kp, template.weights_array())


# --------------------------------------------------------------------------------------------
# The warp: pure tensor math
# --------------------------------------------------------------------------------------------
def affine_grid(theta, height: int, width: int):
    """``F.affine_grid(theta, [N, C, height, width], align_corners=False)`` computed as two
    broadcast multiply-adds (about 8x faster on CPU than the batched matmul it replaces)."""
    import torch

    n = theta.shape[0]
    dev, dt = theta.device, theta.dtype
    xs = torch.arange(width, dtype=dt, device=dev).mul_(2.0 / width).add_(1.0 / width - 1.0)
    ys = torch.arange(height, dtype=dt, device=dev).mul_(2.0 / height).add_(1.0 / height - 1.0)
    grid = torch.empty(n, height, width, 2, dtype=dt, device=dev)
    for k in range(2):
        row = theta[:, k, 1, None] * ys[None, :] + theta[:, k, 2, None]  # N×H
        torch.add(row[:, :, None], theta[:, k, 0, None, None] * xs[None, None, :], out=grid[..., k])
    return grid


def warp_crops(image_chw, crop_to_image: np.ndarray, size: int, mode: str = "bilinear"):
    """Sample N crops of ``size``×``size`` from one C×H×W float image in a single ``grid_sample``.

    ``crop_to_image``: N×2×3 maps crop pixels to pixels of ``image_chw``. Samples outside the
    image are 0 (``padding_mode="zeros"``). Returns N×C×size×size on the image's device.
    """
    import torch
    import torch.nn.functional as F

    c, h, w = image_chw.shape
    n = len(crop_to_image)
    # theta: normalized crop coords -> normalized image coords
    norm_img = pixel_to_normalized(w, h)
    crop_from_norm = invert_affine(pixel_to_normalized(size, size))
    theta = compose_affine(norm_img, compose_affine(np.asarray(crop_to_image), crop_from_norm))
    theta_t = torch.as_tensor(theta, dtype=torch.float32, device=image_chw.device)
    grid = affine_grid(theta_t, size, size)
    return F.grid_sample(
        image_chw.unsqueeze(0).expand(n, c, h, w), grid, mode=mode, padding_mode="zeros", align_corners=False
    )


def _frame_image(frame) -> tuple[ImageLike, int]:
    if isinstance(frame, Frame):
        return frame.image, frame.index
    return as_rgb_uint8(frame), -1


class Aligner:
    """Cuts each tracked face out of a frame, aligned to the model's template.

    ``crop(frame, tracks)`` returns an :class:`AlignedBatch` whose crops live on the frame's
    device (a CUDA uint8 tensor frame gives CUDA crops; a numpy frame gives CPU crops, or crops on
    ``device`` if one is given — the upload then happens once per frame, region only).

    Only the region of the frame the crops cover is converted to float (cheap for small faces).
    When every face in the batch is at least twice as large in the frame as in the crop, that
    region is first box-filtered by the integer factor, so large faces are not aliased by
    bilinear down-sampling.
    """

    def __init__(self, template: CropTemplate | None = None, device=None, antialias: bool = True):
        self.template = template or CropTemplate.default()
        self.device = device
        self.antialias = antialias

    @property
    def crop_size(self) -> int:
        return self.template.size

    def crop(self, frame: Frame | ImageLike, tracks: Sequence[FaceTrack]) -> AlignedBatch:
        image, index = _frame_image(frame)
        mats = []
        for t in tracks:
            mats.append(rescale_crop_to_frame(t.crop_to_frame, t.crop_size, self.crop_size))
        frame_indices = [t.frame_index if index < 0 else index for t in tracks]
        return self.crop_matrices(image, np.asarray(mats).reshape(-1, 2, 3), [t.track_id for t in tracks], frame_indices)

    def crop_matrices(
        self,
        image: ImageLike,
        crop_to_frame: np.ndarray,
        track_ids: Sequence[int],
        frame_indices: Sequence[int] | int = -1,
    ) -> AlignedBatch:
        """Like :meth:`crop` but from explicit N×2×3 crop→frame matrices."""
        import torch
        import torch.nn.functional as F

        image = as_rgb_uint8(image)
        mats = np.asarray(crop_to_frame, dtype=np.float64).reshape(-1, 2, 3)
        n = len(mats)
        if isinstance(frame_indices, int):
            frame_indices = [frame_indices] * n
        h, w = int(image.shape[0]), int(image.shape[1])
        s = self.crop_size
        if is_tensor(image):
            device = image.device
        else:
            device = torch.device(self.device) if self.device is not None else torch.device("cpu")
        if n == 0:
            return AlignedBatch(
                crops=torch.zeros(0, 3, s, s, device=device),
                crop_to_frame=np.zeros((0, 2, 3)),
                track_ids=(),
                frame_indices=(),
                frame_sizes=(),
            )
        # Region of the frame the crops read from (+2 px for the bilinear footprint).
        corners = np.array([[-0.5, -0.5], [s - 0.5, -0.5], [s - 0.5, s - 0.5], [-0.5, s - 0.5]])
        pts = np.concatenate([apply_affine(m, corners) for m in mats])
        x0 = int(np.clip(math.floor(pts[:, 0].min()) - 2, 0, w))
        y0 = int(np.clip(math.floor(pts[:, 1].min()) - 2, 0, h))
        x1 = int(np.clip(math.ceil(pts[:, 0].max()) + 3, 0, w))
        y1 = int(np.clip(math.ceil(pts[:, 1].max()) + 3, 0, h))
        if x1 - x0 < 1 or y1 - y0 < 1:  # every crop entirely outside the frame
            x0, y0, x1, y1 = 0, 0, 1, 1
            region_blank = True
        else:
            region_blank = False
        region = image[y0:y1, x0:x1]
        region_t = region if is_tensor(region) else torch.from_numpy(np.ascontiguousarray(region))
        region_t = region_t.to(device=device, non_blocking=True).permute(2, 0, 1).float()
        region_t = region_t.mul_(1.0 / 127.5).sub_(1.0)
        if region_blank:
            region_t.zero_()
        # Pre-filter for big faces: box filter by k, k = floor(smallest scale)
        scales = np.hypot(mats[:, 0, 0], mats[:, 1, 0])
        k = int(max(1, min(8, math.floor(float(scales.min()))))) if self.antialias else 1
        offset = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
        frame_to_region = offset
        if k > 1 and region_t.shape[1] >= k and region_t.shape[2] >= k:
            region_t = F.avg_pool2d(region_t.unsqueeze(0), k, k, ceil_mode=True, count_include_pad=False)[0]
            frame_to_region = compose_affine(
                np.array([[1.0 / k, 0.0, -(k - 1) / (2.0 * k)], [0.0, 1.0 / k, -(k - 1) / (2.0 * k)]]), offset
            )
        crop_to_region = compose_affine(frame_to_region, mats)
        crops = warp_crops(region_t, crop_to_region, s)
        return AlignedBatch(
            crops=crops,
            crop_to_frame=mats,
            track_ids=tuple(track_ids),
            frame_indices=tuple(frame_indices),
            frame_sizes=((h, w),) * n,
        )
