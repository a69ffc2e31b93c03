"""Deflicker: each stylised crop blended with the previous one, carried to this frame by the
optical flow of the *input* crops.

A GAN stylises every frame on its own, so textures it invents (hair strands, shading, lines)
change a little from frame to frame even when the face does not: flicker. The input crops say
how the face really moved between two frames (OpenCV's DIS flow, the ``fast`` preset, at the
crop's size); the previous output warped by that flow is where this output "should" be, and
blending towards it averages the invented changes away while motion passes through: there is no
lag, since the previous output is moved to where the face is now. Where the flow fails the
forward-backward check (occlusions, the crop's border) or the warped output disagrees with the
new one by more than ``gate`` (fast or badly tracked motion), the new output is kept as it is,
so nothing ghosts. ``python -m benchmarks.quality`` measures it (Lai et al.'s warping error).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import AlignedBatch

__all__ = ["DeflickerConfig", "FlowBlend"]


@dataclass(frozen=True)
class DeflickerConfig:
    alpha: float = 0.5        # weight of the warped previous output where the flow is trusted,
    gate: float = 0.25        # falling to 0 where it differs from the new one by 2 × gate (outputs in [-1, 1])
    flow_size: int = 128      # the flow is computed on crops at most this large (and scaled up)

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {self.alpha}")
        if not self.gate > 0.0:
            raise ValueError(f"gate must be > 0, got {self.gate}")
        if self.flow_size < 32:
            raise ValueError(f"flow_size must be at least 32 pixels, got {self.flow_size}")


def _gray_uint8(crop, size: int) -> np.ndarray:
    """One C×S×S crop in [-1, 1] (tensor) → uint8 luma on the host, area-averaged down to at
    most ``size`` pixels."""
    import torch.nn.functional as F

    x = crop.detach().float().clamp(-1.0, 1.0).add(1.0).mul(127.5)
    y = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None, None]
    if y.shape[-1] > size:
        y = F.adaptive_avg_pool2d(y, size)
    return y[0, 0].round().to("cpu").numpy().astype(np.uint8)


def flow_to_previous(dis, cur: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DIS flow F with ``cur(x) ≈ prev(x + F(x))`` and where it passes Lai et al.'s
    forward-backward check ``|F(x) + B(x + F(x))|² < 0.01 (|F|² + |B|²) + 0.5`` (B: prev → cur)."""
    fwd = dis.calc(cur, prev, None)
    bwd = dis.calc(prev, cur, None)
    b_at = remap(bwd, fwd)
    fx, fy, bx, by = fwd[..., 0], fwd[..., 1], b_at[..., 0], b_at[..., 1]
    # (per-component arithmetic: numpy's reductions over a last axis of 2 are slow)
    ok = (fx + bx) ** 2 + (fy + by) ** 2 < 0.01 * (fx * fx + fy * fy + bx * bx + by * by) + 0.5
    return fwd, ok


def remap(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``img`` sampled at ``x + flow(x)`` (bilinear, edges repeated)."""
    import cv2

    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FlowBlend:
    """``deflicker(batch, stylized) -> stylized``: per track, the new output blended with the
    previous (already blended) output warped by the flow from this input crop to the last one.
    Call it once per frame, frames in order; tracks that are gone are forgotten."""

    def __init__(self, config: DeflickerConfig | None = None):
        import cv2  # ships with mediapipe

        self.config = config or DeflickerConfig()
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._state: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # id -> (input luma, output H×W×3)

    def __call__(self, batch: AlignedBatch, stylized):
        import cv2
        import torch

        cfg = self.config
        out = stylized.detach().float().to("cpu").clone()
        seen = set()
        s = int(out.shape[-1])
        for i, tid in enumerate(batch.track_ids):
            cur_in = _gray_uint8(batch.crops[i], cfg.flow_size)
            cur = out[i].permute(1, 2, 0).numpy().copy()
            prev = self._state.get(tid)
            if prev is not None and prev[0].shape == cur_in.shape:
                flow, ok = flow_to_previous(self._dis, cur_in, prev[0])
                if cur_in.shape[0] != s:                      # flow made smaller: scale it up
                    k = s / cur_in.shape[0]
                    flow = cv2.resize(flow, (s, s), interpolation=cv2.INTER_LINEAR) * k
                    ok = cv2.resize(ok.astype(np.uint8), (s, s), interpolation=cv2.INTER_NEAREST).astype(bool)
                warped = remap(prev[1], flow)
                d = np.abs(warped - cur)
                agree = np.clip(1.0 - (d[..., 0] + d[..., 1] + d[..., 2]) / (6.0 * cfg.gate), 0.0, 1.0)
                weight = (cfg.alpha * ok * agree)[..., None].astype(np.float32)
                cur += weight * (warped - cur)
                out[i] = torch.from_numpy(cur).permute(2, 0, 1)
            self._state[tid] = (cur_in, cur)
            seen.add(tid)
        for tid in [t for t in self._state if t not in seen]:
            del self._state[tid]
        return out.to(device=stylized.device, dtype=stylized.dtype)

    def reset(self) -> None:
        self._state.clear()
