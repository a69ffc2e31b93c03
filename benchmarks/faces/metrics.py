"""What the face benchmark measures on a clip: steadiness of the crop (true and re-detected),
accuracy against known transforms, lag of the smoothing, and identity paste-back."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from realtime.faces.align import Aligner, CropTemplate, apply_affine, invert_affine
from realtime.faces.composite import Compositor
from realtime.faces.track import FaceTracker, TrackerConfig

from .clips import PhotoReference, photo_to_frame, synth_clip

EYE_CORNERS = (33, 133, 362, 263)


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
