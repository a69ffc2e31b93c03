"""Flicker and seams of the stylised video, per paste mode: ``python -m benchmarks.quality``.

    python -m benchmarks.quality                          # synthesized clips + the shipped demo
    python -m benchmarks.quality --frames 40 --out results/quality.json
    python -m benchmarks.quality --images docs/images     # only the README's comparison images

**Flicker** is the warping error of Lai et al. (ECCV 2018, "Learning Blind Video Temporal
Consistency"): optical flow on the *input* (OpenCV's DIS, the opencv that mediapipe installs),
the previous *output* warped to the current frame with it, and the mean absolute difference
(0..1) over the pixels that pass the forward-backward consistency check (their eq. 7) inside the
face. Divided by the same error of the input itself (same flow, same pixels), it is the
**flicker ratio**: 1.0 means the stylisation adds no flicker. It is measured for the stylised
*crop* (inside the template's face ellipse) and for the *composite* (inside the pasted region
of either frame, so the seam's flicker counts).

**Seam**: along the middle of the paste's feathered edge (coverage 0.5), the difference between
the composite on either side of the edge, across the feather (``|C(x + r n) - C(x - r n)|``, n
the edge normal, r half the feather's width + 1 px), against the same difference between pixel
pairs as far apart inside the pasted region. ``seam_input`` is the same on the input frame along
the same edge: the scene's own contrast there (the head's silhouette against the background is
a real edge); a seam near ``seam_input`` is no harsher than the scene.

Clips: synthesized with :func:`realtime.synthetic.face_scene` (the astronaut's head on a plain
background, known motion, σ=2 sensor noise): ``still``, ``drift`` (a slow sway) and ``fast``
(up to 21 px a frame); and the shipped ``demo.mp4``. The model is the shipped demo model with
its default style. For the synthesized clips the crop's flicker is also measured with the
*true* flow (known from the motion and the crop matrices), which no filter here has seen.

Flicker filters tried (see :data:`FILTERS`): a temporal blend of outputs warped by the input
crops' flow (the product's ``--deflicker``, :class:`realtime.faces.temporal.FlowBlend`),
content-code smoothing (the generator split into encode and decode, motion-gated), a plain blend
of outputs (the reference that must lag and ghost), the head mask with and without its temporal
smoothing, and ``--match-colour``. Lag is the least-squares time shift of a filtered output
behind the unfiltered one, ghosting the share of the last frame left at its old place, both on
clips whose face moves inside a fixed crop.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from benchmarks.common import machine_info, write_json
from benchmarks.faces import time_shift
from realtime.faces.temporal import DeflickerConfig, FlowBlend, flow_to_previous
from realtime.faces.temporal import remap as warp

MODES = ("face", "head", "box")
WORK = 256                       # crops are measured at this size (the demo model's are 64)


# =============================================================================================
# The measures (array math)
# =============================================================================================
class FlowField:
    """DIS optical flow (OpenCV) between two uint8 images, with Lai et al.'s forward-backward
    consistency check (:func:`realtime.faces.temporal.flow_to_previous`)."""

    def __init__(self, preset: str = "medium"):
        import cv2

        self.cv2 = cv2
        p = {"fast": cv2.DISOPTICAL_FLOW_PRESET_FAST, "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset]
        self.dis = cv2.DISOpticalFlow_create(p)

    def to_previous(self, cur: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flow F with ``cur(x) ≈ prev(x + F(x))`` and the map of pixels passing the check."""
        def gray(im):
            return im if im.ndim == 2 else self.cv2.cvtColor(im, self.cv2.COLOR_RGB2GRAY)

        return flow_to_previous(self.dis, gray(cur), gray(prev))


def warping_errors(seqs: dict[str, Sequence[np.ndarray]], flows: Sequence, regions: Sequence[np.ndarray]) -> dict:
    """Lai et al.'s warping error of each sequence in ``seqs`` (uint8 H×W×3 frames) with the
    given flows (``flows[t]``: (F, ok) from frame t to t-1, None where there is none) over
    ``regions[t]`` (bool): the mean over frames of the masked mean |O_t - W(O_{t-1})| in 0..1."""
    out = {k: [] for k in seqs}
    for t in range(1, len(regions)):
        if flows[t] is None:
            continue
        f, ok = flows[t]
        m = ok & regions[t]
        if m.sum() < 16:
            continue
        for k, seq in seqs.items():
            a = seq[t].astype(np.float32)
            b = warp(seq[t - 1], f).astype(np.float32)
            out[k].append(float(np.abs(a - b).mean(-1)[m].mean()) / 255.0)
    return {k: float(np.mean(v)) if v else float("nan") for k, v in out.items()}


def seam(composite: np.ndarray, coverage: np.ndarray, reference: np.ndarray | None = None) -> dict:
    """Difference across the paste's edge against the same difference inside the pasted region
    (see the module docstring); with ``reference`` (the input frame), its value on the same
    edge too. NaN where the edge or the inside is too small to measure."""
    import cv2

    cov = cv2.GaussianBlur(coverage.astype(np.float32), (0, 0), 0.7)
    gy, gx = np.gradient(cov)
    g = np.hypot(gx, gy)
    edge = (cov > 0.4) & (cov < 0.6) & (g > 1e-3)
    nan = {"seam": float("nan"), "seam_input": float("nan"), "edge_px": int(edge.sum())}
    if edge.sum() < 8:
        return nan
    ys, xs = np.nonzero(edge)
    nx, ny = -gx[edge] / g[edge], -gy[edge] / g[edge]           # outward normal
    r = np.clip(0.5 / g[edge] + 1.0, 1.0, 40.0)
    rad = float(np.median(r))
    inside = cv2.erode((coverage >= 0.98).astype(np.uint8), np.ones((3, 3), np.uint8),
                       iterations=int(math.ceil(rad)) + 1).astype(bool)
    if inside.sum() < 8:
        return nan

    def across(img):
        f = img.astype(np.float32)
        sides = []
        for sgn in (1.0, -1.0):
            mx = (xs + sgn * r * nx).astype(np.float32)[None]
            my = (ys + sgn * r * ny).astype(np.float32)[None]
            sides.append(cv2.remap(f, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0])
        return float(np.abs(sides[0] - sides[1]).mean())

    def within(img):
        f = img.astype(np.float32)
        iy, ix = np.nonzero(inside)
        d = int(round(rad))
        h, w = f.shape[:2]
        diffs = []
        for dx, dy in ((d, 0), (0, d)):
            a = f[np.clip(iy + dy, 0, h - 1), np.clip(ix + dx, 0, w - 1)]
            b = f[np.clip(iy - dy, 0, h - 1), np.clip(ix - dx, 0, w - 1)]
            diffs.append(np.abs(a - b).mean())
        return float(np.mean(diffs))

    res = {"seam": across(composite) / max(within(composite), 1e-6), "edge_px": int(edge.sum()),
           "feather_px": 2 * rad}
    res["seam_input"] = across(reference) / max(within(reference), 1e-6) if reference is not None else float("nan")
    return res


# =============================================================================================
# Clips
# =============================================================================================
@dataclass
class Clip:
    """Frames (uint8 RGB) and, for synthesized clips, the head's known top-left corner per
    frame (frame pixels): the head moves rigidly, so the true motion is known."""
    name: str
    frames: list
    times: list
    head_xy: list | None = None


def synthesized_clips(n: int, size_wh=(640, 480), sigma: float = 2.0, seed: int = 0) -> list[Clip]:
    """``still``, ``drift`` (±30 px / ±10 px over 3 s / 2.2 s) and ``fast`` (±120 px every 1.2 s:
    up to 21 px a frame), 30 fps, made with :func:`realtime.synthetic.face_scene`."""
    from realtime.synthetic import astronaut, face_scene

    w, h = size_wh
    photo = astronaut()
    rng = np.random.default_rng(seed)
    side = max(8, int(round(h * 0.45 * 1.6)))
    motions = {
        "still": lambda t: (0.0, 0.0),
        "drift": lambda t: (30 * math.sin(2 * math.pi * t / 3.0), 10 * math.sin(2 * math.pi * t / 2.2)),
        "fast": lambda t: (120 * math.sin(2 * math.pi * t / 1.2), 0.0),
    }
    clips = []
    for name, motion in motions.items():
        frames, times, xy = [], [], []
        for i in range(n):
            t = i / 30.0
            dx, dy = motion(t)
            img = face_scene(w, h, 0.45, dx=dx, dy=dy, photo=photo).astype(np.float32)
            img += rng.normal(0.0, sigma, img.shape).astype(np.float32)
            frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
            times.append(t)
            xy.append((int(round((w - side) / 2 + dx)), int(round((h - side) / 2 + dy))))
        clips.append(Clip(name, frames, times, xy))
    return clips


def demo_clip(n: int | None = None) -> Clip:
    from benchmarks.faces import read_video
    from realtime.compose import DEMO_VIDEO

    frames, times = read_video(str(DEMO_VIDEO), n)
    return Clip("demo.mp4", frames, times)


# =============================================================================================
# The model and the filters tried against flicker
# =============================================================================================
class DemoModel:
    """The shipped demo model (its EMA face→anime generator) with the default style, split into
    encode and decode: ``decode(encode(x))`` is what the engines compute."""

    def __init__(self):
        import torch

        from realtime.compose import DEMO_CHECKPOINT
        from training.checkpoint import load_generator
        from training.style import StyleCode

        self.torch = torch
        self.G = load_generator(DEMO_CHECKPOINT, which="G_A2B_ema")
        self.style = StyleCode.default(self.G.latent_dim).tensor().reshape(1, -1)
        self.size = self.G.size

    def encode(self, crops):
        with self.torch.no_grad():
            return self.G.encode(crops).content

    def decode(self, content):
        with self.torch.no_grad():
            return self.G.decode(content, self.style)


class Plain:
    """No filter: every frame stylised on its own."""

    def __init__(self, model: DemoModel):
        self.model = model

    def __call__(self, batch):
        return self.model.decode(self.model.encode(batch.crops))


class ContentSmoothing(Plain):
    """The content code smoothed per track with a motion-gated exponential filter: the new
    code's weight is ``base`` for small changes and rises with the change (relative to the
    code's own scale) to 1, so motion passes at once and jitter is averaged."""

    def __init__(self, model: DemoModel, base: float = 0.5, follow: float = 4.0):
        super().__init__(model)
        self.base, self.follow = base, follow
        self.state: dict[int, object] = {}

    def __call__(self, batch):
        c = self.model.encode(batch.crops)
        out = c.clone()
        for i, tid in enumerate(batch.track_ids):
            prev = self.state.get(tid)
            if prev is not None:
                change = (c[i] - prev).abs().mean() / c[i].abs().mean().clamp(min=1e-6)
                k = min(1.0, self.base + self.follow * float(change))
                out[i] = prev + k * (c[i] - prev)
            self.state[tid] = out[i]
        return self.model.decode(out)


class OutputBlend(Plain):
    """A plain exponential blend of outputs, nothing moved by the flow (the reference: it must
    lag and ghost when the face moves)."""

    def __init__(self, model: DemoModel, alpha: float = 0.5):
        super().__init__(model)
        self.alpha = alpha
        self.state: dict[int, object] = {}

    def __call__(self, batch):
        y = super().__call__(batch)
        for i, tid in enumerate(batch.track_ids):
            prev = self.state.get(tid)
            if prev is not None:
                y[i] = y[i] + self.alpha * (prev - y[i])
            self.state[tid] = y[i].clone()
        return y


class Deflickered(Plain):
    """The product's deflicker (:class:`realtime.faces.temporal.FlowBlend`) after the model."""

    def __init__(self, model: DemoModel, alpha: float = 0.5):
        super().__init__(model)
        self.blend = FlowBlend(DeflickerConfig(alpha=alpha))

    def __call__(self, batch):
        return self.blend(batch, super().__call__(batch))


FILTERS: dict[str, Callable] = {
    "none": Plain,
    "flow_blend_0.5": lambda m: Deflickered(m, 0.5),
    "flow_blend_0.3": lambda m: Deflickered(m, 0.3),
    "content_ema_0.5": lambda m: ContentSmoothing(m, 0.5),
    "content_ema_0.3": lambda m: ContentSmoothing(m, 0.3),
    "output_ema_0.5": lambda m: OutputBlend(m, 0.5),
}


def to_uint8(x) -> np.ndarray:
    """C×S×S in [-1, 1] (tensor) → S×S×3 uint8."""
    return x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def at_work(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.shape[0] == WORK:
        return img
    return cv2.resize(img, (WORK, WORK), interpolation=cv2.INTER_CUBIC if img.shape[0] < WORK else cv2.INTER_AREA)


# =============================================================================================
# Running a clip
# =============================================================================================
@dataclass
class Run:
    """What one clip gave, frame by frame (None where no face was tracked)."""
    mats: list = field(default_factory=list)             # crop→frame (model crop pixels)
    crops_in: list = field(default_factory=list)         # WORK×WORK uint8
    crops_out: list = field(default_factory=list)
    raw_out: list = field(default_factory=list)          # model crop size, float (for lag)
    composites: dict = field(default_factory=dict)       # mode -> frames
    coverage: dict = field(default_factory=dict)         # mode -> H×W float


def run_clip(clip: Clip, stylize, modes: Sequence[str] = MODES, mask_config=None,
             fixed_crop: np.ndarray | None = None, match_colour: bool = False) -> Run:
    """Track, align, mask, stylise and paste every frame with the product's own classes.
    ``fixed_crop``: cut every crop with this one crop→frame matrix instead (the face then
    moves inside the crop: how lag is measured)."""
    from realtime.faces import Aligner, Compositor, CropTemplate, FaceTracker, HeadMasker

    s = stylize.model.size
    template = CropTemplate.default(s)
    aligner = Aligner(template)
    masker = HeadMasker(template, mask_config) if "head" in modes else None
    comps = {m: Compositor(template, mode=m, match_colour=match_colour) for m in modes}
    run = Run(composites={m: [] for m in modes}, coverage={m: [] for m in modes})
    with FaceTracker(template=template) as tracker:
        for f, t in zip(clip.frames, clip.times):
            tracks = tracker.update(f, t)[:1]
            if fixed_crop is not None and tracks:
                batch = aligner.crop_matrices(f, fixed_crop[None], [tracks[0].track_id])
            else:
                batch = aligner.crop(f, tracks)
            if not len(batch):
                for lst in (run.mats, run.crops_in, run.crops_out, run.raw_out):
                    lst.append(None)
                for m in modes:
                    run.composites[m].append(f)
                    run.coverage[m].append(np.zeros(f.shape[:2], np.float32))
                continue
            if masker is not None:
                batch = masker(f, tracks, batch)
            y = stylize(batch)
            run.mats.append(batch.crop_to_frame[0])
            run.crops_in.append(at_work(to_uint8(batch.crops[0])))
            run.crops_out.append(at_work(to_uint8(y[0])))
            run.raw_out.append(y[0].float().numpy())
            for m, comp in comps.items():
                masks = batch.masks if m == "head" else None
                run.composites[m].append(comp.paste(f, batch, y))
                run.coverage[m].append(comp.coverage(f.shape[:2], batch.crop_to_frame, s, masks=masks,
                                                     mask_to_crop=batch.mask_to_crop))
    if masker is not None:
        masker.close()
    return run


# =============================================================================================
# Measuring a run
# =============================================================================================
def crop_flows(run: Run, flow: FlowField) -> list:
    """Flow between consecutive input crops (t → t-1), at WORK size."""
    out = [None]
    for t in range(1, len(run.crops_in)):
        a, b = run.crops_in[t], run.crops_in[t - 1]
        out.append(None if a is None or b is None else flow.to_previous(a, b))
    return out


def true_crop_flows(run: Run, clip: Clip, crop_size: int) -> list:
    """The exact crop-to-crop flow of the head (it moves rigidly by the known offset), at WORK
    size; ``ok`` is where the point was inside the previous crop."""
    from realtime.faces.align import apply_affine, invert_affine, rescale_crop_to_frame

    ys, xs = np.mgrid[0:WORK, 0:WORK].astype(np.float64)
    pts = np.stack([xs.ravel(), ys.ravel()], 1)
    out = [None]
    for t in range(1, len(run.mats)):
        if run.mats[t] is None or run.mats[t - 1] is None:
            out.append(None)
            continue
        cur = rescale_crop_to_frame(run.mats[t], crop_size, WORK)
        prev = rescale_crop_to_frame(run.mats[t - 1], crop_size, WORK)
        shift = np.subtract(clip.head_xy[t - 1], clip.head_xy[t])
        q = apply_affine(invert_affine(prev), apply_affine(cur, pts) + shift)
        f = (q - pts).reshape(WORK, WORK, 2).astype(np.float32)
        ok = ((q >= -0.5) & (q <= WORK - 0.5)).all(1).reshape(WORK, WORK)
        out.append((f, ok))
    return out


def paste_box(run: Run, margin: int = 8) -> tuple[slice, slice]:
    """The frame rows and columns any paste of the clip touched (plus a margin): the composite
    measures look only there."""
    h, w = run.coverage[next(iter(run.coverage))][0].shape
    touched = np.zeros((h, w), bool)
    for covs in run.coverage.values():
        for c in covs:
            touched |= c > 0
    if not touched.any():
        return slice(0, h), slice(0, w)
    ys, xs = np.nonzero(touched)
    return (slice(max(0, ys.min() - margin), min(h, ys.max() + margin + 1)),
            slice(max(0, xs.min() - margin), min(w, xs.max() + margin + 1)))


def cut(images: Sequence[np.ndarray], box: tuple[slice, slice]) -> list:
    return [np.ascontiguousarray(im[box]) for im in images]


def frame_flows(frames: Sequence[np.ndarray], flow: FlowField) -> list:
    return [None] + [flow.to_previous(frames[t], frames[t - 1]) for t in range(1, len(frames))]


def paste_regions(cov: list, flows: list) -> list:
    """Where the composite may differ from the input, at t or (carried by the flow) at t-1:
    the region whose flicker the composite's ratio measures."""
    import cv2

    out = [cov[0] > 0.01]
    for t in range(1, len(cov)):
        now = cov[t] > 0.01
        before = warp(cov[t - 1], flows[t][0]) > 0.01 if flows[t] is not None else np.zeros_like(now)
        out.append(cv2.dilate((now | before).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool))
    return out


def measure(run: Run, clip: Clip, cflows: list, fflows: list, box, true_flows=None) -> dict:
    """Flicker ratios of the crop and of each mode's composite, and each mode's seam; the
    composite is measured inside ``box`` (:func:`paste_box`), ``fflows`` are the flows of the
    input frames cut to it."""
    from realtime.faces import CropTemplate

    face = CropTemplate.default(WORK).mask().numpy() > 0
    valid = [c is not None for c in run.crops_in]
    regions = [face if v else np.zeros_like(face) for v in valid]
    ins = [c if c is not None else np.zeros((WORK, WORK, 3), np.uint8) for c in run.crops_in]
    outs = [c if c is not None else np.zeros((WORK, WORK, 3), np.uint8) for c in run.crops_out]
    e = warping_errors({"in": ins, "out": outs}, cflows, regions)
    res = {"crop": {"error_in": e["in"], "error_out": e["out"], "ratio": e["out"] / e["in"]}}
    if true_flows is not None:
        t = warping_errors({"in": ins, "out": outs}, true_flows, regions)
        res["crop"].update(error_in_true_flow=t["in"], error_out_true_flow=t["out"],
                           ratio_true_flow=t["out"] / t["in"])
    res["composite"] = {}
    frames = cut(clip.frames, box)
    for mode in run.composites:
        comps, covs = cut(run.composites[mode], box), cut(run.coverage[mode], box)
        reg = paste_regions(covs, fflows)
        e = warping_errors({"in": frames, "out": comps}, fflows, reg)
        seams = [seam(c, cov, f) for c, cov, f in zip(comps, covs, frames)]
        res["composite"][mode] = {
            "error_in": e["in"], "error_out": e["out"], "ratio": e["out"] / e["in"],
            "seam": float(np.nanmean([s["seam"] for s in seams])),
            "seam_input": float(np.nanmean([s["seam_input"] for s in seams])),
        }
    return res


def mask_boil(run: Run, mode: str = "head") -> float:
    """Mean |change| of the paste coverage between consecutive frames over its soft edge (on
    a still face: how much the edge boils)."""
    cov = run.coverage[mode]
    vals = []
    for t in range(1, len(cov)):
        band = ((cov[t] > 0.02) & (cov[t] < 0.98)) | ((cov[t - 1] > 0.02) & (cov[t - 1] < 0.98))
        if band.sum() >= 16:
            vals.append(float(np.abs(cov[t] - cov[t - 1])[band].mean()))
    return float(np.mean(vals)) if vals else float("nan")


def _features(outs: list) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.stack(outs)).float()
    return F.adaptive_avg_pool2d(x, 8).reshape(len(outs), -1).numpy()


def lag_and_ghost(clip: Clip, model: DemoModel, name: str, plain: Run | None = None) -> tuple[dict, Run]:
    """The face moves inside one fixed crop (the first frame's): lag (frames, least-squares time
    shift of the filtered output behind the unfiltered one, after 5 frames) and ghosting: how
    much of the last frame shows at its old place, the projection of (filtered - unfiltered)
    on (last unfiltered - unfiltered) — 0 for none, ``a`` for a plain blend of weight ``a``."""
    first = run_clip(Clip(clip.name, clip.frames[:1], clip.times[:1]), Plain(model), modes=())
    fixed = first.mats[0]
    if plain is None:
        plain = run_clip(clip, Plain(model), modes=(), fixed_crop=fixed)
    filt = run_clip(clip, FILTERS[name](model), modes=(), fixed_crop=fixed)
    a = [o for o in plain.raw_out if o is not None]
    b = [o for o in filt.raw_out if o is not None]
    n = min(len(a), len(b))
    lag = time_shift(_features(a[:n]), _features(b[:n]), start=5) if n > 8 else float("nan")
    num = sum(float(((b[t] - a[t]) * (a[t - 1] - a[t])).sum()) for t in range(1, n))
    den = sum(float(((a[t - 1] - a[t]) ** 2).sum()) for t in range(1, n))
    ghost = num / max(den, 1e-9)
    return {"lag_frames": float(lag), "ghost": float(ghost)}, plain


# =============================================================================================
# Comparison images (README)
# =============================================================================================
def _label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_images(out_dir: Path, frame_index: int = 30) -> list[Path]:
    """``paste_modes.png``: input / face / head / box on frame ``frame_index`` of the demo video
    with the demo model; ``hair_options.png``: what was tried where the real hair reaches
    beyond the anime crop (kept; the anime colours extended — the head paste's choice; the
    background inpainted by OpenCV's Telea; the background seen in earlier frames, Telea where
    never seen), zoomed on the head."""
    import cv2
    import torch

    from realtime.faces import Aligner, Compositor, CropTemplate, FaceTracker, HeadMasker
    from training.fileio import write_bytes_atomic

    torch.set_num_threads(1)
    model = DemoModel()
    clip = demo_clip(frame_index + 1)
    s = model.size
    template = CropTemplate.default(s)
    aligner, masker = Aligner(template), HeadMasker(template)
    comps = {name: Compositor(template, mode=mode, extend_hair=ext) for name, mode, ext in
             (("face", "face", True), ("head", "head", True), ("box", "box", True), ("kept", "head", False))}
    plate = seen = None
    with FaceTracker(template=template) as tracker:
        for i, (f, t) in enumerate(zip(clip.frames, clip.times)):
            tracks = tracker.update(f, t)
            batch = masker(f, tracks, aligner.crop(f, tracks))
            cov = {k: c.coverage(f.shape[:2], batch.crop_to_frame, s, batch.masks, batch.mask_to_crop)
                   for k, c in comps.items() if k in ("head", "kept")}
            square = compose_square(batch, f.shape[:2])
            background = (cov["head"] < 0.02) & square                  # seen behind the person
            if plate is None:
                plate, seen = f.copy(), np.zeros(f.shape[:2], bool)
            plate[background], seen = f[background], seen | background
    masker.close()
    y = Plain(model)(batch)
    out = {k: c.paste(f, batch, y) for k, c in comps.items()}
    hole = cv2.dilate((cov["head"] > 0.05).astype(np.uint8), np.ones((9, 9), np.uint8))
    soft = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), 2.0)
    beyond = np.clip(soft - cov["kept"], 0.0, 1.0)[..., None]        # the real head the crop misses
    telea = cv2.inpaint(f, hole, 5, cv2.INPAINT_TELEA)
    fill = np.where(seen[..., None], plate, telea)
    inpainted = {k: comps["kept"].paste(np.rint(f * (1 - beyond) + src * beyond).astype(np.uint8), batch, y)
                 for k, src in (("telea", telea), ("plate", fill))}
    out_dir.mkdir(parents=True, exist_ok=True)
    modes = np.concatenate([_label(f, "input"), _label(out["face"], "--paste face"),
                            _label(out["head"], "--paste head (default)"), _label(out["box"], "--paste box")], 1)
    c = np.round(apply_crop_point(batch, (s - 1) / 2, (s - 1) / 2)).astype(int)
    half = int(round(1.1 * s * batch_scale(batch)))
    y0, x0 = max(0, c[1] - half), max(0, c[0] - half)
    zoom = [cv2.resize(im[y0:c[1] + half // 2, x0:c[0] + half], None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
            for im in (out["kept"], out["head"], inpainted["telea"], inpainted["plate"])]
    names = ("hair kept beyond the crop", "anime colours extended (chosen)", "inpainted (Telea)",
             "earlier background (+Telea)")
    hair = np.concatenate([_label(z, n) for z, n in zip(zoom, names)], 1)
    paths = []
    for name, img in (("paste_modes.png", modes), ("hair_options.png", hair)):
        ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(write_bytes_atomic(out_dir / name, png.tobytes()))
    return paths


def compose_square(batch, hw) -> np.ndarray:
    """H×W bool: the frame pixels inside the first face's head square."""
    import cv2

    from realtime.faces.align import compose_affine

    m = compose_affine(batch.crop_to_frame[0], batch.mask_to_crop)
    n = int(batch.masks.shape[-1])
    return cv2.warpAffine(np.ones((n, n), np.float32), m, (hw[1], hw[0])) > 0.5


def apply_crop_point(batch, x: float, y: float) -> np.ndarray:
    from realtime.faces.align import apply_affine

    return apply_affine(batch.crop_to_frame[0], [[x, y]])[0]


def batch_scale(batch) -> float:
    m = batch.crop_to_frame[0]
    return float(np.hypot(m[0, 0], m[1, 0]))


# =============================================================================================
# The report
# =============================================================================================
def run(frames: int = 60, filters: Sequence[str] = tuple(FILTERS), demo: bool = True,
        log: Callable[[str], None] = print) -> dict:
    """Every clip × filter (all three paste modes), the head mask with and without its temporal
    smoothing, and each filter's lag and ghosting."""
    import torch

    from realtime.faces import HeadMaskConfig

    torch.set_num_threads(1)
    model = DemoModel()
    clips = synthesized_clips(frames) + ([demo_clip(min(frames, 100) if frames else None)] if demo else [])
    flow = FlowField("medium")
    res: dict = {"machine": machine_info(threads=1), "settings": {
        "frames": frames, "work_size": WORK, "model": "demo (realtime/assets/demo_model.pt, default style)",
        "flow": "OpenCV DIS, medium preset", "filters": list(filters), "modes": list(MODES)},
        "clips": {}, "mask": {}, "colour": {}, "lag": {}}
    unsmoothed = HeadMaskConfig(smooth_base=1.0, smooth_follow=0.0)
    for clip in clips:
        log(f"{clip.name}: {len(clip.frames)} frames")
        base = run_clip(clip, Plain(model))
        box = paste_box(base)
        fflows = frame_flows(cut(clip.frames, box), flow)
        cflows = crop_flows(base, flow)            # the same crops whatever the filter
        true = true_crop_flows(base, clip, model.size) if clip.head_xy is not None else None
        entry: dict = {}
        for name in filters:
            r = base if name == "none" else run_clip(clip, FILTERS[name](model))
            entry[name] = measure(r, clip, cflows, fflows, box, true)
        res["mask"][clip.name] = {"smoothed": {"edge_change": mask_boil(base),
                                               **entry["none"]["composite"]["head"]}}
        raw = run_clip(clip, Plain(model), modes=("head",), mask_config=unsmoothed)
        m = measure(raw, clip, cflows, fflows, box)["composite"]["head"]
        res["mask"][clip.name]["unsmoothed"] = {"edge_change": mask_boil(raw), **m}
        res["clips"][clip.name] = entry
        matched = measure(run_clip(clip, Plain(model), match_colour=True), clip, cflows, fflows, box)
        res["colour"][clip.name] = {m: {"ratio": v["ratio"], "seam": v["seam"]}
                                    for m, v in matched["composite"].items()}
    moving = {c.name: c for c in clips}
    for name in filters:
        if name == "none":
            continue
        res["lag"][name] = {}
        for cname in ("drift", "fast"):
            plain = res["lag"].get("_plain_" + cname)
            value, plain = lag_and_ghost(moving[cname], model, name, plain)
            res["lag"][name][cname] = value
            res["lag"]["_plain_" + cname] = plain
    for k in [k for k in res["lag"] if k.startswith("_plain_")]:
        del res["lag"][k]
    return res


def print_report(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title="Flicker ratio (warping error of the output / of the input; 1.0 = no added flicker) "
                    "and seam, demo model, no filter")
    for c in ("clip", "crop", "crop (true flow)", *(f"{m} composite" for m in MODES),
              *(f"{m} seam (input)" for m in MODES)):
        t.add_column(c)
    for clip, entry in res["clips"].items():
        e = entry.get("none")
        if e is None:
            continue
        comp = e["composite"]
        t.add_row(clip, f"{e['crop']['ratio']:.2f}", f"{e['crop'].get('ratio_true_flow', float('nan')):.2f}",
                  *(f"{comp[m]['ratio']:.2f}" for m in MODES),
                  *(f"{comp[m]['seam']:.2f} ({comp[m]['seam_input']:.2f})" for m in MODES))
    con.print(t)
    clips = list(res["clips"])
    t = Table(title="Flicker filters: crop ratio (DIS) / crop ratio (true flow) / head composite ratio")
    for c in ("filter", *clips, "crop vs none (mean)"):
        t.add_column(c)
    names = list(next(iter(res["clips"].values())))
    for name in names:
        cells, gains = [], []
        for clip in clips:
            e, base = res["clips"][clip][name], res["clips"][clip]["none"]
            cells.append(f"{e['crop']['ratio']:.2f} / {e['crop'].get('ratio_true_flow', float('nan')):.2f} / "
                         f"{e['composite']['head']['ratio']:.2f}")
            gains.append(e["crop"]["ratio"] / base["crop"]["ratio"] - 1)
        t.add_row(name, *cells, f"{np.mean(gains):+.0%}")
    con.print(t)
    t = Table(title="Lag (frames) and ghosting (share of the last frame left at its old place), "
                    "the face moving inside a fixed crop")
    for c in ("filter", "lag drift", "lag fast", "ghost drift", "ghost fast"):
        t.add_column(c)
    for name, v in res["lag"].items():
        t.add_row(name, *(f"{v[c]['lag_frames']:.2f}" for c in ("drift", "fast")),
                  *(f"{v[c]['ghost']:.2f}" for c in ("drift", "fast")))
    con.print(t)
    t = Table(title="--match-colour: flicker ratio and seam of each composite, off -> on")
    for c in ("clip", *(f"{m} ratio" for m in MODES), *(f"{m} seam" for m in MODES)):
        t.add_column(c)
    for clip, m in res["colour"].items():
        off = res["clips"][clip]["none"]["composite"]
        t.add_row(clip, *(f"{off[k]['ratio']:.2f} -> {m[k]['ratio']:.2f}" for k in MODES),
                  *(f"{off[k]['seam']:.2f} -> {m[k]['seam']:.2f}" for k in MODES))
    con.print(t)
    t = Table(title="Head mask: temporal smoothing on / off (edge change per frame: on the still clip, the boil)")
    for c in ("clip", "edge change on", "off", "head composite ratio on", "off", "seam on", "off"):
        t.add_column(c)
    for clip, m in res["mask"].items():
        a, b = m["smoothed"], m["unsmoothed"]
        t.add_row(clip, f"{a['edge_change']:.4f}", f"{b['edge_change']:.4f}", f"{a['ratio']:.2f}", f"{b['ratio']:.2f}",
                  f"{a['seam']:.2f}", f"{b['seam']:.2f}")
    con.print(t)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=60, help="frames per clip (default 60; the demo has 100)")
    p.add_argument("--filters", nargs="*", default=list(FILTERS), choices=list(FILTERS),
                   help="flicker filters to try (default: all)")
    p.add_argument("--no-demo", action="store_true", help="synthesized clips only")
    p.add_argument("--out", default="results/quality.json", help="JSON output (default results/quality.json)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="only write the comparison images paste_modes.png and hair_options.png "
                        "into DIR (no measurements)")
    args = p.parse_args(argv)
    if args.frames < 8:
        p.error("--frames must be at least 8")
    if "none" not in args.filters:
        args.filters = ["none", *args.filters]
    if args.images:
        for path in write_images(Path(args.images)):
            print(f"wrote {path}")
        return 0
    res = run(args.frames, args.filters, demo=not args.no_demo)
    print_report(res)
    if args.out:
        print(f"wrote {write_json(args.out, res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
