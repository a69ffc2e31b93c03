"""Face clips with known motion: the astronaut photo's ground truth (MediaPipe landmarks, the
template crop), similarity transforms that place it in a frame, frames rendered from them with
sensor noise, and video files written and read back with PyAV."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from realtime.faces.align import (CropTemplate, apply_affine, crop_to_frame_from_landmarks,
                                  invert_affine, keypoints_from_landmarks)
from realtime.synthetic import astronaut


@dataclass(frozen=True)
class PhotoReference:
    """Ground truth for a photo: its landmarks and the template crop made from them."""

    photo: np.ndarray
    landmarks_photo: np.ndarray  # 468×2
    eyes_photo: np.ndarray  # 2×2 eye centres (corner midpoints), photo pixels
    crop_to_photo: np.ndarray  # 2×3 template fit on the clean photo
    template: CropTemplate

    @property
    def anchor_photo(self) -> np.ndarray:
        """Midpoint between the eyes and the mouth: the point synthetic motion rotates about."""
        kp = keypoints_from_landmarks(self.landmarks_photo)
        return 0.5 * (kp[:2].mean(0) + kp[3:].mean(0))

    @property
    def face_px(self) -> float:
        """Face width in photo pixels (landmark box)."""
        return float(np.ptp(self.landmarks_photo[:, 0]))

    @property
    def crop_px_per_photo_px(self) -> float:
        return 1.0 / float(np.hypot(self.crop_to_photo[0, 0], self.crop_to_photo[1, 0]))

    def eyes_in_crop(self) -> np.ndarray:
        """Where the eyes sit in the reference crop (2×2)."""
        return apply_affine(invert_affine(self.crop_to_photo), self.eyes_photo)


def photo_reference(photo: np.ndarray | None = None, template: CropTemplate | None = None) -> PhotoReference:
    """Landmarks of the clean photo (MediaPipe face mesh, static mode, full photo)."""
    from mediapipe.python.solutions import face_mesh

    photo = astronaut() if photo is None else photo
    template = template or CropTemplate.default()
    h, w = photo.shape[:2]
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as fm:
        res = fm.process(photo)
    if not res.multi_face_landmarks:
        raise RuntimeError("face mesh found no face in the reference photo")
    lm = np.array([(p.x * w - 0.5, p.y * h - 0.5) for p in res.multi_face_landmarks[0].landmark])[:468]
    return PhotoReference(
        photo=photo,
        landmarks_photo=lm,
        eyes_photo=keypoints_from_landmarks(lm)[:2],
        crop_to_photo=crop_to_frame_from_landmarks(lm, template),
        template=template,
    )


def photo_to_frame(ref: PhotoReference, scale: float, angle_deg: float, center_frame: Sequence[float]) -> np.ndarray:
    """2×3 similarity placing the photo so that its face anchor lands on ``center_frame``,
    scaled by ``scale`` and rotated by ``angle_deg`` (counter-clockwise on screen) about it."""
    a = math.radians(-angle_deg)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    t = np.asarray(center_frame, dtype=np.float64) - r @ ref.anchor_photo
    return np.concatenate([r, t[:, None]], axis=1)


def render(
    ref: PhotoReference,
    transforms: Sequence[np.ndarray],
    size_hw: tuple[int, int],
    sigma: float = 3.0,
    rng: np.random.Generator | None = None,
    background: int = 40,
    patch_half_px: float | None = None,
) -> np.ndarray:
    """One frame: the photo placed by each transform (later ones on top), plus sensor noise.

    ``patch_half_px``: place only a square of the photo around the face (half-side in photo
    pixels), so that several faces fit side by side."""
    import cv2

    h, w = size_hw
    canvas = np.full((h, w, 3), background, np.uint8)
    src, offset = ref.photo, np.eye(3)
    if patch_half_px is not None:
        cx, cy = ref.anchor_photo
        x0, y0 = int(max(0, cx - patch_half_px)), int(max(0, cy - patch_half_px))
        x1, y1 = int(min(ref.photo.shape[1], cx + patch_half_px)), int(min(ref.photo.shape[0], cy + patch_half_px))
        src = np.ascontiguousarray(ref.photo[y0:y1, x0:x1])
        offset = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    for m in transforms:
        m_src = (np.vstack([m, [0, 0, 1]]) @ offset)[:2]
        cv2.warpAffine(src, m_src, (w, h), dst=canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    if sigma > 0:
        rng = rng or np.random.default_rng(0)
        noisy = canvas.astype(np.float32) + rng.normal(0.0, sigma, canvas.shape).astype(np.float32)
        canvas = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return canvas


def synth_clip(
    ref: PhotoReference,
    transforms: Sequence[np.ndarray] | Sequence[Sequence[np.ndarray]],
    size_hw: tuple[int, int],
    sigma: float = 3.0,
    seed: int = 0,
    patch_half_px: float | None = None,
) -> list[np.ndarray]:
    """Frames of a clip; ``transforms[i]`` is one 2×3 matrix or a list of them (several faces)."""
    rng = np.random.default_rng(seed)
    frames = []
    for m in transforms:
        ms = [m] if np.ndim(m) == 2 else list(m)
        frames.append(render(ref, ms, size_hw, sigma, rng, patch_half_px=patch_half_px))
    return frames


def write_video(path: str, frames: Sequence[np.ndarray], fps: int = 30, crf: int = 18) -> None:
    """H.264 (yuv420p, x264 veryfast at ``crf``) with PyAV. Sizes must be even."""
    from realtime.synthetic import write_video as encode
    encode(path, frames, fps=fps, crf=crf, preset="veryfast")


def read_video(path: str, max_frames: int | None = None) -> tuple[list[np.ndarray], list[float]]:
    """RGB frames and their timestamps in seconds (PyAV)."""
    import av

    frames, times = [], []
    with av.open(path) as f:
        stream = f.streams.video[0]
        rate = float(stream.average_rate or 30)
        for i, fr in enumerate(f.decode(stream)):
            frames.append(fr.to_ndarray(format="rgb24"))
            times.append(float(fr.time) if fr.time is not None else i / rate)
            if max_frames and len(frames) >= max_frames:
                break
    return frames, times


def random_similarities(ref: PhotoReference, n: int, size_hw, seed: int = 1, scale_base: float = 1.0) -> list[np.ndarray]:
    """Independent transforms: rotation ±25°, scale 0.7–1.4, translation ±10 % of the frame."""
    h, w = size_hw
    rng = np.random.default_rng(seed)
    return [
        photo_to_frame(
            ref,
            scale_base * rng.uniform(0.7, 1.4),
            rng.uniform(-25, 25),
            (w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h),
        )
        for _ in range(n)
    ]


def sweep_similarities(ref: PhotoReference, n: int, size_hw, scale_base: float = 1.0) -> list[np.ndarray]:
    """A continuous move through the whole range: rotation −25°→+25°, scale 0.7→1.4, translation."""
    h, w = size_hw
    out = []
    for i in range(n):
        u = i / max(n - 1, 1)
        out.append(photo_to_frame(ref, scale_base * (0.7 + 0.7 * u), -25 + 50 * u, (w * (0.4 + 0.2 * u), h * (0.55 - 0.1 * u))))
    return out


def synthesized_transforms(ref: PhotoReference, n: int = 60) -> dict[str, tuple[tuple[int, int], list[np.ndarray]]]:
    """Named synthetic motions (frame size, photo→frame transform per frame)."""
    h, w = 480, 640
    still = [photo_to_frame(ref, 1.0, 0.0, (w / 2, h / 2))] * n
    # a talking head: slow drift and nodding, a little roll and zoom
    talk = [
        photo_to_frame(
            ref,
            1.0 + 0.02 * math.sin(i / 23),
            1.5 * math.sin(i / 17),
            (w / 2 + 6 * math.sin(i / 19) + 1.5 * math.sin(i / 5), h / 2 + 3 * math.sin(i / 13)),
        )
        for i in range(n)
    ]
    # a strong sway: ±12 px, ±4°, ±5 % every couple of seconds
    sway = [
        photo_to_frame(ref, 1.0 + 0.05 * math.sin(i / 11), 4 * math.sin(i / 7), (w / 2 + 12 * math.sin(i / 9), h / 2 + 5 * math.sin(i / 6)))
        for i in range(n)
    ]
    small = [photo_to_frame(ref, 0.45, 0.0, (w / 2 + 3 * math.sin(i / 8), h / 2)) for i in range(n)]
    return {
        "still_noise3": ((h, w), still),
        "talk_noise3": ((h, w), talk),
        "sway_noise3": ((h, w), sway),
        "small_face_noise3": ((h, w), small),
    }


def synthesized_clips(ref: PhotoReference, n: int = 60) -> dict[str, tuple[list[np.ndarray], list[float]]]:
    """Named clips (frames, timestamps) for the re-detection and paste metrics, σ=3 noise."""
    t = [i / 30.0 for i in range(n)]
    return {
        name: (synth_clip(ref, ms, size, 3.0, 11 + k), t)
        for k, (name, (size, ms)) in enumerate(synthesized_transforms(ref, n).items())
    }
