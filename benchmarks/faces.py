"""Benchmark of the face stage: tracking cost, align+paste cost, steadiness, accuracy, lag.

    python -m benchmarks.faces                       # synthesized clips only
    python -m benchmarks.faces --video a.mp4 b.mp4   # plus real clips
    python -m benchmarks.faces --out results/faces.json

Every clip is synthesized in code from ``skimage.data.astronaut()`` (a real, public-domain face
photo) moved by known similarity transforms, with Gaussian sensor noise; nothing is downloaded.
The measurement functions here are also what ``tests/realtime/test_faces*.py`` assert on, so the
numbers in the report and the thresholds in the tests come from the same code. Timing is
reported here and never asserted in tests.

Metrics (all in pixels of the 256 crop unless stated):

* still steadiness: std over frames of the *true* eye centres (known from the transform) mapped
  into the crop by the tracker's smoothed transform — the crop's own jitter, no detector noise.
* accuracy: RMS distance between the true eye centres in the recovered crop and in the crop
  made from the known transform.
* re-detected steadiness (the real-footage metric): MediaPipe face mesh run again on each
  output crop; std over time and mean |second difference| of its four eye-corner coordinates,
  for the smoothed transform and for raw per-frame alignment without smoothing.
* lag: during constant motion, the time shift (frames, least squares, sub-frame) that best maps
  the raw keypoint trajectory onto the smoothed one.
* identity paste: crop → paste unchanged; PSNR over the pasted region, and the count of pixels
  outside the mask that changed (must be 0).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from realtime.faces.align import (
    Aligner,
    CropTemplate,
    apply_affine,
    crop_to_frame_from_landmarks,
    invert_affine,
    keypoints_from_landmarks,
)
from realtime.faces.composite import Compositor
from realtime.faces.smooth import OneEuroConfig
from realtime.faces.track import FaceTracker, TrackerConfig

EYE_CORNERS = (33, 133, 362, 263)


# ============================================================================ synthesized media
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


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
    """H.264 (yuv420p) with PyAV. Sizes must be even."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(path, "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            for pkt in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)


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


# ============================================================================ measurements
def track_clip(frames: Sequence[np.ndarray], times: Sequence[float] | None = None, config: TrackerConfig | None = None, template=None):
    """Run a fresh tracker over a clip: list (per frame) of lists of FaceTrack."""
    times = times if times is not None else [i / 30.0 for i in range(len(frames))]
    with FaceTracker(config, template) as tr:
        out = [tr.update(f, t) for f, t in zip(frames, times)]
        stats = tr.stats.as_dict()
    return out, stats


def _eyes_crop(m: np.ndarray, eyes_frame: np.ndarray) -> np.ndarray:
    return apply_affine(invert_affine(m), eyes_frame)


def still_steadiness(ref: PhotoReference, size_hw=(480, 640), scale: float = 1.0, n: int = 30, sigma: float = 3.0, seed: int = 0, config=None) -> dict:
    """Still face + sensor noise: std of the true eye centres in the crop (smoothed and raw)."""
    h, w = size_hw
    m = photo_to_frame(ref, scale, 0.0, (w / 2, h / 2))
    frames = synth_clip(ref, [m] * n, size_hw, sigma, seed)
    tracks, stats = track_clip(frames, config=config)
    eyes = apply_affine(m, ref.eyes_photo)
    found = [t[0] for t in tracks if t]
    skip = min(5, len(found) // 4)  # the filter starts from the first raw fit: let it settle
    sm = np.array([_eyes_crop(t.crop_to_frame, eyes) for t in found])[skip:]
    raw = np.array([_eyes_crop(t.crop_to_frame_raw, eyes) for t in found])[skip:]
    return {
        "frames": n,
        "found": len(found),
        "face_px": ref.face_px * scale,
        "std_px_smoothed": float(sm.std(0).max()) if len(sm) > 1 else float("nan"),
        "std_px_raw": float(raw.std(0).max()) if len(raw) > 1 else float("nan"),
    }


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


def accuracy(ref: PhotoReference, transforms: Sequence[np.ndarray], size_hw, independent: bool, sigma: float = 3.0, seed: int = 0) -> dict:
    """Eye-centre RMS error (crop px) of the recovered crop vs the crop made from the known
    transform. ``independent``: every frame is a new scene (tracker reset, raw transform);
    otherwise one continuous clip and the smoothed transform (raw reported too)."""
    frames = synth_clip(ref, transforms, size_hw, sigma, seed)
    truth = ref.eyes_in_crop()
    err_s, err_r, found = [], [], 0
    with FaceTracker() as tr:
        for i, (f, m) in enumerate(zip(frames, transforms)):
            if independent:
                tr.reset()
            tracks = tr.update(f, i / 30.0)
            if not tracks:
                continue
            found += 1
            eyes = apply_affine(m, ref.eyes_photo)
            t = tracks[0]
            err_s.append(np.sum((_eyes_crop(t.crop_to_frame, eyes) - truth) ** 2, 1).mean())
            err_r.append(np.sum((_eyes_crop(t.crop_to_frame_raw, eyes) - truth) ** 2, 1).mean())
    key = "raw" if independent else "smoothed"
    res = {
        "frames": len(frames),
        "found": found,
        "rms_px_raw": float(np.sqrt(np.mean(err_r))) if err_r else float("nan"),
        "max_px_raw": float(np.sqrt(np.max(err_r))) if err_r else float("nan"),
    }
    if not independent:
        res["rms_px_smoothed"] = float(np.sqrt(np.mean(err_s))) if err_s else float("nan")
        res["max_px_smoothed"] = float(np.sqrt(np.max(err_s))) if err_s else float("nan")
    res["rms_px"] = res[f"rms_px_{key}"]
    return res


def lag(ref: PhotoReference, speed_crop_px_per_frame: float, size_hw=(480, 640), n: int = 36, settle: int = 14, fps: float = 30.0, sigma: float = 3.0, rotate_deg_per_frame: float = 0.0, config=None) -> dict:
    """Constant motion (translation at the given speed in crop pixels per frame, optional
    rotation). Returns the least-squares time shift between raw and smoothed trajectories of
    the template keypoints in frame pixels (frames), measured after ``settle`` frames."""
    h, w = size_hw
    scale = 1.0
    v_frame = speed_crop_px_per_frame / ref.crop_px_per_photo_px * scale  # frame px per frame
    x0 = w / 2 - v_frame * (n - 1) / 2
    ts = [photo_to_frame(ref, scale, rotate_deg_per_frame * (i - n / 2), (x0 + v_frame * i, h / 2)) for i in range(n)]
    frames = synth_clip(ref, ts, size_hw, sigma, seed=3)
    tracks, _ = track_clip(frames, [i / fps for i in range(n)], config=config)
    if not all(tracks):
        return {"speed_crop_px_per_frame": speed_crop_px_per_frame, "found": sum(bool(t) for t in tracks), "lag_frames": float("nan")}
    pts = ref.template.points_array()
    sm = np.array([apply_affine(t[0].crop_to_frame, pts) for t in tracks])
    raw = np.array([apply_affine(t[0].crop_to_frame_raw, pts) for t in tracks])
    lag_ls = time_shift(raw, sm, settle)
    # mean along-track difference in frames (same as the shift for constant velocity)
    vel = np.gradient(raw, axis=0)[settle:]
    diff = (raw - sm)[settle:]
    along = float(np.sum(diff * vel) / max(np.sum(vel * vel), 1e-9))
    return {
        "speed_crop_px_per_frame": speed_crop_px_per_frame,
        "speed_crop_px_per_s": speed_crop_px_per_frame * fps,
        "found": len(tracks),
        "lag_frames": lag_ls,
        "lag_frames_along_track": along,
        "lag_px_crop": float(lag_ls * speed_crop_px_per_frame),
    }


def time_shift(reference: np.ndarray, delayed: np.ndarray, start: int, max_shift: float = 6.0) -> float:
    """Sub-frame τ minimising Σ_t |delayed(t) − reference(t − τ)|² for t ≥ start."""
    n = len(reference)
    t = np.arange(start, n, dtype=np.float64)
    idx = np.arange(n, dtype=np.float64)
    flat = reference.reshape(n, -1)
    target = delayed.reshape(n, -1)[start:]

    def cost(tau: float) -> float:
        shifted = np.stack([np.interp(t - tau, idx, flat[:, k]) for k in range(flat.shape[1])], 1)
        return float(np.mean((shifted - target) ** 2))

    taus = np.arange(-2.0, max_shift + 1e-9, 0.02)
    return float(taus[int(np.argmin([cost(x) for x in taus]))])


class _CropLandmarks:
    """A separate face mesh that re-finds the eye corners inside output crops.

    It runs in static mode and with the attention model (``refine_landmarks=True``) — a
    different network from the tracker's plain mesh. With the same network, its errors
    correlate with the tracker's (same pixels, same model), which makes a crop that copies the
    tracker's per-frame errors (raw alignment) look steadier than it is."""

    def __init__(self):
        from mediapipe.python.solutions import face_mesh

        self.fm = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)

    def eye_corners(self, crop_uint8: np.ndarray) -> np.ndarray | None:
        res = self.fm.process(crop_uint8)
        if not res.multi_face_landmarks:
            return None
        s = crop_uint8.shape[0]
        lm = res.multi_face_landmarks[0].landmark
        return np.array([(lm[i].x * s - 0.5, lm[i].y * s - 0.5) for i in EYE_CORNERS])

    def close(self):
        self.fm.close()


def _crops_uint8(batch) -> list[np.ndarray]:
    c = batch.crops.detach().cpu().float().add(1.0).mul(127.5).round().clamp(0, 255).byte()
    return [np.ascontiguousarray(x.permute(1, 2, 0).numpy()) for x in c]


def redetect_steadiness(frames: Sequence[np.ndarray], times: Sequence[float] | None = None, config: TrackerConfig | None = None) -> dict:
    """Real-footage metric: eye corners re-found by MediaPipe in every crop; std over time and
    mean |second difference| (crop px), smoothed transform vs raw per-frame alignment.

    Uses the first track of each frame; the tracker runs once and both crops of a frame come
    from the same landmarks, so the only difference between the two arms is the smoothing."""
    times = times if times is not None else [i / 30.0 for i in range(len(frames))]
    aligner = Aligner()
    det = _CropLandmarks()
    arms: dict[str, list] = {"smoothed": [], "raw": []}
    with FaceTracker(config) as tr:
        for f, t in zip(frames, times):
            tracks = tr.update(f, t)
            if not tracks or not tracks[0].visible:
                arms["smoothed"].append(None)
                arms["raw"].append(None)
                continue
            tk = tracks[0]
            batch = aligner.crop_matrices(f, np.stack([tk.crop_to_frame, tk.crop_to_frame_raw]), [tk.track_id] * 2)
            cs = _crops_uint8(batch)
            arms["smoothed"].append(det.eye_corners(cs[0]))
            arms["raw"].append(det.eye_corners(cs[1]))
    det.close()
    ok = [i for i in range(len(frames)) if arms["smoothed"][i] is not None and arms["raw"][i] is not None]
    res = {"frames": len(frames), "measured": len(ok)}
    for arm, pts in arms.items():
        if len(ok) < 3:
            res[arm] = {"std_px": float("nan"), "mean_abs_d2_px": float("nan")}
            continue
        p = np.array([pts[i] for i in ok])  # T×4×2
        d2 = [np.abs(pts[i + 1] * 2 - pts[i] - pts[i + 2]).mean() for i in ok if i + 2 in ok and i + 1 in ok]
        res[arm] = {
            "std_px": float(p.std(0).mean()),
            "mean_abs_d2_px": float(np.mean(d2)) if d2 else float("nan"),
        }
    s, r = res["smoothed"], res["raw"]
    res["smoothed_beats_raw"] = bool(s["std_px"] < r["std_px"] and s["mean_abs_d2_px"] < r["mean_abs_d2_px"])
    return res


def analytic_outside_mask(frame_hw, crop_to_frame: np.ndarray, template: CropTemplate, margin_crop_px: float = 1.5) -> np.ndarray:
    """H×W bool: pixels whose crop position lies outside every face's mask ellipse by more than
    the bilinear footprint — independent of the compositor's code."""
    h, w = frame_hw
    ys, xs = np.mgrid[0:h, 0:w]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    outside = np.ones(h * w, bool)
    cx, cy = template.mask_center_crop
    rx, ry = template.mask_radii_crop
    for m in np.asarray(crop_to_frame).reshape(-1, 2, 3):
        c = apply_affine(invert_affine(m), pts)
        r = np.hypot((c[:, 0] - cx) / (rx + margin_crop_px), (c[:, 1] - cy) / (ry + margin_crop_px))
        outside &= r > 1.0
    return outside.reshape(h, w)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def identity_paste(frames: Sequence[np.ndarray], times: Sequence[float] | None = None, config: TrackerConfig | None = None) -> dict:
    """Crop → paste unchanged on every frame: PSNR over the pasted region (coverage > 0) and the
    number of pixels outside the mask that changed."""
    times = times if times is not None else [i / 30.0 for i in range(len(frames))]
    aligner, comp = Aligner(), Compositor()
    psnrs, changed_outside, faces = [], 0, 0
    with FaceTracker(config) as tr:
        for f, t in zip(frames, times):
            tracks = tr.update(f, t)
            batch = aligner.crop(f, tracks)
            out = comp.paste(f, batch, batch.crops)
            if not len(batch):
                changed_outside += int((out != f).any(-1).sum())
                continue
            faces += len(batch)
            cov = comp.coverage(f.shape[:2], batch.crop_to_frame, batch.crop_size)
            region = cov > 0
            if region.any():
                psnrs.append(psnr(out[region], f[region]))
            outside = analytic_outside_mask(f.shape[:2], batch.crop_to_frame, comp.template.scaled(batch.crop_size))
            changed_outside += int(((out != f).any(-1) & (outside | ~region)).sum())
    return {
        "frames": len(frames),
        "faces": faces,
        "psnr_db_min": float(min(psnrs)) if psnrs else float("nan"),
        "psnr_db_mean": float(np.mean(psnrs)) if psnrs else float("nan"),
        "changed_px_outside_mask": changed_outside,
        "passed_through": comp.stats.frames_passed_through,
    }


# ============================================================================ timing
def _percentiles(ms: Sequence[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "n": int(len(a))}


def time_tracking(ref: PhotoReference, face_frac: float, n_faces: int = 1, frames: int = 90, warmup: int = 10, size_hw=(720, 1280)) -> dict:
    """Per-frame cost of ``FaceTracker.update`` (detection + mesh + fit + smoothing) at 1280×720
    with ``n_faces`` faces, each ``face_frac`` of the frame width, moving slowly."""
    h, w = size_hw
    scale = face_frac * w / ref.face_px
    xs = np.linspace(0.5 / n_faces, 1 - 0.5 / n_faces, n_faces) * w
    ts = []
    for i in range(frames + warmup):
        dx = 6.0 * math.sin(i / 9.0)
        ts.append([photo_to_frame(ref, scale, 3.0 * math.sin(i / 13.0), (x + dx, h / 2)) for x in xs])
    clip = synth_clip(ref, ts, size_hw, 3.0, seed=5, patch_half_px=1.1 * ref.face_px if n_faces > 1 else None)
    times = []
    with FaceTracker(TrackerConfig(max_faces=max(1, n_faces))) as tr:
        found = 0
        for i, f in enumerate(clip):
            t0 = time.perf_counter()
            tracks = tr.update(f, i / 30.0)
            dt = (time.perf_counter() - t0) * 1000
            if i >= warmup:
                times.append(dt)
                found += len(tracks)
        res = _percentiles(times)
        res.update({"faces": n_faces, "face_frac": face_frac, "mean_faces_found": found / frames, "detector_runs": tr.stats.detector_runs})
    return res


def time_align_paste(ref: PhotoReference, n_faces: int = 4, face_frac: float = 0.12, frames: int = 60, warmup: int = 10, size_hw=(720, 1280), device=None) -> dict:
    """Cost of ``Aligner.crop`` + ``Compositor.paste`` (identity model) for ``n_faces`` faces."""
    import torch

    h, w = size_hw
    scale = face_frac * w / ref.face_px
    xs = np.linspace(0.5 / n_faces, 1 - 0.5 / n_faces, n_faces) * w
    frame = render(ref, [photo_to_frame(ref, scale, 0.0, (x, h / 2)) for x in xs], size_hw, 3.0, patch_half_px=1.1 * ref.face_px)
    with FaceTracker(TrackerConfig(max_faces=n_faces)) as tr:
        tracks = tr.update(frame, 0.0)
    aligner, comp = Aligner(device=device), Compositor()
    ta, tp, tt = [], [], []
    for i in range(frames + warmup):
        t0 = time.perf_counter()
        batch = aligner.crop(frame, tracks)
        if batch.crops.is_cuda:
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        comp.paste(frame, batch, batch.crops)
        t2 = time.perf_counter()
        if i >= warmup:
            ta.append((t1 - t0) * 1000)
            tp.append((t2 - t1) * 1000)
            tt.append((t2 - t0) * 1000)
    res = _percentiles(tt)
    res.update({"faces": len(tracks), "face_frac": face_frac, "align": _percentiles(ta), "paste": _percentiles(tp), "torch_threads": torch.get_num_threads()})
    return res


# ============================================================================ report
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


def true_steadiness(ref: PhotoReference, size_hw, transforms: Sequence[np.ndarray], sigma: float = 3.0, seed: int = 0, config=None) -> dict:
    """Synthetic clips only: std over time of the TRUE eye centres mapped into the crop (no
    re-detection noise), smoothed vs raw — the crop's own unsteadiness against the face."""
    frames = synth_clip(ref, transforms, size_hw, sigma, seed)
    tracks, _ = track_clip(frames, config=config)
    res = {}
    for arm, attr in (("smoothed", "crop_to_frame"), ("raw", "crop_to_frame_raw")):
        p = np.array([_eyes_crop(getattr(t[0], attr), apply_affine(m, ref.eyes_photo)) for t, m in zip(tracks, transforms) if t])
        d2 = np.abs(p[2:] - 2 * p[1:-1] + p[:-2]).mean() if len(p) > 2 else float("nan")
        res[arm] = {"std_px": float(p.std(0).mean()) if len(p) > 1 else float("nan"), "mean_abs_d2_px": float(d2)}
    return res


def run(videos: Sequence[str] = (), max_video_frames: int = 300, quick: bool = False) -> dict:
    import torch

    ref = photo_reference()
    n = 30 if quick else 60
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out: dict = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "loadavg_at_start": load},
        "defaults": {"tracker": {k: v for k, v in TrackerConfig().__dict__.items() if k != "smoothing"}, "one_euro": OneEuroConfig().__dict__},
    }
    out["timing"] = {
        "track_1face_15pct_1280x720": time_tracking(ref, 0.15, 1, frames=2 * n),
        "track_1face_5pct_1280x720": time_tracking(ref, 0.05, 1, frames=2 * n),
        "track_4faces_12pct_1280x720": time_tracking(ref, 0.12, 4, frames=n),
        "align_paste_4faces_12pct_1280x720": time_align_paste(ref, 4, 0.12, frames=2 * n),
        "align_paste_4faces_20pct_1280x720": time_align_paste(ref, 4, 0.2, frames=2 * n),
    }
    out["still"] = {f"scale_{s}": still_steadiness(ref, scale=s, n=40) for s in (0.5, 1.0, 2.0)}
    out["still"]["1280x720_face_5pct"] = still_steadiness(ref, (720, 1280), 0.05 * 1280 / ref.face_px, n=40)
    out["accuracy"] = {
        "independent_frames": accuracy(ref, random_similarities(ref, 30, (480, 640)), (480, 640), True),
        "continuous_sweep": accuracy(ref, sweep_similarities(ref, 40, (480, 640)), (480, 640), False),
    }
    out["lag"] = {f"{v}_crop_px_per_frame": lag(ref, v) for v in (0.5, 1.0, 2.0, 4.0, 8.0)}
    out["lag"]["2_crop_px_per_frame_plus_1deg"] = lag(ref, 2.0, rotate_deg_per_frame=1.0)
    out["steadiness_true"] = {
        name: true_steadiness(ref, size, ms, seed=21 + k) for k, (name, (size, ms)) in enumerate(synthesized_transforms(ref, n).items())
    }
    clips = synthesized_clips(ref, n)
    for path in videos:
        frames, times = read_video(path, max_video_frames)
        clips[os.path.basename(path)] = (frames, times)
    out["steadiness_redetected"] = {name: redetect_steadiness(f, t) for name, (f, t) in clips.items()}
    out["identity_paste"] = {name: identity_paste(f, t) for name, (f, t) in clips.items()}
    return out


def print_report(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title="Face stage timing (CPU, ms per frame)")
    for c in ("case", "p50", "p95", "notes"):
        t.add_column(c)
    for k, v in res["timing"].items():
        note = f"faces found {v.get('mean_faces_found', v.get('faces'))}"
        if "align" in v:
            note += f"; align p50 {v['align']['p50_ms']:.2f}, paste p50 {v['paste']['p50_ms']:.2f}"
        t.add_row(k, f"{v['p50_ms']:.2f}", f"{v['p95_ms']:.2f}", note)
    con.print(t)
    t = Table(title="Still face, σ=3 sensor noise: eye-centre std in the crop (px, max over axes)")
    for c in ("case", "face px", "smoothed", "raw (no smoothing)"):
        t.add_column(c)
    for k, v in res["still"].items():
        t.add_row(k, f"{v['face_px']:.0f}", f"{v['std_px_smoothed']:.3f}", f"{v['std_px_raw']:.3f}")
    con.print(t)
    t = Table(title="Accuracy vs known similarity transforms (eye-centre RMS, crop px)")
    for c in ("case", "RMS", "max", "found"):
        t.add_column(c)
    for k, v in res["accuracy"].items():
        key = "smoothed" if "rms_px_smoothed" in v else "raw"
        t.add_row(f"{k} ({key})", f"{v['rms_px']:.2f}", f"{v[f'max_px_{key}']:.2f}", f"{v['found']}/{v['frames']}")
    con.print(t)
    t = Table(title="Lag of the smoothed transform during constant motion")
    for c in ("case", "crop px/s", "lag (frames, LS shift)", "lag along track", "lag (crop px)"):
        t.add_column(c)
    for k, v in res["lag"].items():
        t.add_row(k, f"{v.get('speed_crop_px_per_s', float('nan')):.0f}", f"{v['lag_frames']:.2f}", f"{v.get('lag_frames_along_track', float('nan')):.2f}", f"{v.get('lag_px_crop', float('nan')):.2f}")
    con.print(t)
    t = Table(title="Synthetic clips, true eye centres in the crop (px): smoothed vs raw per-frame alignment")
    for c in ("clip", "std smoothed", "std raw", "|d2| smoothed", "|d2| raw"):
        t.add_column(c)
    for k, v in res["steadiness_true"].items():
        s, r = v["smoothed"], v["raw"]
        t.add_row(k, f"{s['std_px']:.3f}", f"{r['std_px']:.3f}", f"{s['mean_abs_d2_px']:.3f}", f"{r['mean_abs_d2_px']:.3f}")
    con.print(t)
    t = Table(title="Eye corners re-detected in the crops (px): smoothed vs raw per-frame alignment")
    for c in ("clip", "frames", "std smoothed", "std raw", "|d2| smoothed", "|d2| raw", "beats raw"):
        t.add_column(c)
    for k, v in res["steadiness_redetected"].items():
        s, r = v["smoothed"], v["raw"]
        t.add_row(k, f"{v['measured']}/{v['frames']}", f"{s['std_px']:.3f}", f"{r['std_px']:.3f}", f"{s['mean_abs_d2_px']:.3f}", f"{r['mean_abs_d2_px']:.3f}", str(v["smoothed_beats_raw"]))
    con.print(t)
    t = Table(title="Identity paste (crop → paste unchanged)")
    for c in ("clip", "faces", "PSNR min (dB)", "PSNR mean (dB)", "changed px outside mask"):
        t.add_column(c)
    for k, v in res["identity_paste"].items():
        t.add_row(k, str(v["faces"]), f"{v['psnr_db_min']:.1f}", f"{v['psnr_db_mean']:.1f}", str(v["changed_px_outside_mask"]))
    con.print(t)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faces", description=__doc__.split("\n\n")[0])
    p.add_argument("--video", nargs="*", default=[], metavar="FILE", help="real clips to measure steadiness / paste on")
    p.add_argument("--max-video-frames", type=int, default=300, help="frames read from each video (default 300)")
    p.add_argument("--out", default="results/faces.json", help="JSON output path (default results/faces.json)")
    p.add_argument("--quick", action="store_true", help="shorter clips")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the face stage's tensor ops are small, and beside MediaPipe's threads more is slower)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be at least 1")
    for v in args.video:
        if not os.path.isfile(v):
            p.error(f"--video: no such file: {v}")
    if args.max_video_frames < 3:
        p.error("--max-video-frames must be at least 3")
    import torch

    torch.set_num_threads(args.threads)
    res = run(args.video, args.max_video_frames, args.quick)
    print_report(res)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2, default=float)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
