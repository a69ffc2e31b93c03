"""Cost of the face stage on the CPU: ``FaceTracker.update`` per frame, and ``Aligner.crop`` +
``Compositor.paste`` for several faces (reported, never asserted)."""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from realtime.faces.align import Aligner
from realtime.faces.composite import Compositor
from realtime.faces.track import FaceTracker, TrackerConfig

from .clips import PhotoReference, photo_to_frame, render, synth_clip


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
