"""Time-based One-Euro smoothing of a face's crop-to-frame similarity.

A similarity ``[[a, -b, tx], [b, a, ty]]`` is linear in ``x = (a, b, tx, ty)``, and the set of
such matrices is closed under averaging, so the One-Euro low-pass runs on ``x`` directly with ONE
cutoff shared by all four components: every point of the crop is then filtered identically
(filtering ``x`` with a common coefficient is the same as filtering the frame position of any
crop point), and the result is always a similarity — no shear, no drift between rotation and
translation, no angle wrap-around.

The adaptive cutoff follows Casiez et al. (CHI 2012): ``cutoff = min_cutoff + beta * speed``.
Speed is measured in **crop pixels per second** at the eye centres (the velocity of their frame
positions divided by the frame-per-crop scale), so the same parameters behave the same for a
face that fills the frame and one that is 50 px wide, and the jitter they trade against is the
jitter the model actually sees.

* ``min_cutoff`` (Hz): cutoff while still. Lower = steadier still face, more lag on slow drifts.
* ``beta`` (Hz per crop px/s): how fast the cutoff opens with speed. Higher = less lag.

Two additions to the textbook filter; without them it loses to no smoothing at all on moving
heads, or barely smooths a still one (numbers from the simulations behind these defaults, with
white landmark jitter of 0.15–1 crop px, see benchmarks/faces.py for the tracker-level ones):

* **Lag compensation (``trend``).** A first-order low-pass lags a moving input by
  ``(1 - a) / a * dt`` seconds. While the face moves faster than the deadband, the output adds
  that lag times the filtered velocity back (faded in between 1× and 2× the deadband). Constant
  motion is then followed with no steady-state lag (measured: ≤ 0.05 frame at 15–240 crop px/s,
  against 0.1–0.9 frame for the textbook filter), and a still face still gets the full low-pass.
* **Noise-adaptive deadband.** The speed estimate is itself noisy: landmark jitter of σ crop px
  reads as a speed of about ``2 σ fps sqrt(a_d / (2 - a_d))``, which keeps the cutoff open, so a
  still face is smoothed least exactly when its landmarks are noisiest (with a fixed deadband:
  still-face jitter 0.32× raw at σ = 0.15 px but 0.87× at σ = 1 px). The filter measures the
  jitter of the raw transform (median distance of each sample from the straight line through
  its neighbours, over the last ``noise_window_s``) and ignores speeds below ``noise_deadband``
  × that jitter speed (and below ``speed_deadband``): still-face jitter is then 0.25–0.33× raw
  at every noise level. The price: a slow, wavering drift that hides inside the jitter band is
  followed late — in simulation up to 1.4× the raw jitter at σ = 0.15 px, ≈ 1.0–1.1× at
  σ ≥ 0.5 px; steady motion and sways stay at 0.9–1.06×.

Lag never misplaces the stylised face: the compositor pastes each crop back with the very
matrix it was cut with. Lag only shifts the face inside the model's crop.

The filter is time-based (uses the frames' timestamps, so variable frame rates behave;
a repeated timestamp returns the previous output, a timestamp that goes backwards restarts the
filter). A raw transform that differs from the output
by more than ``jump_fraction`` of the template eye distance at an eye resets the filter to the
raw transform instead of sliding across the frame.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["OneEuroConfig", "OneEuroFilter", "SimilaritySmoother", "similarity_to_params", "params_to_similarity"]


@dataclass(frozen=True)
class OneEuroConfig:
    """Parameters of the One-Euro filter (see the module docstring).

    ``min_cutoff`` and ``beta`` are the two classic knobs; the rest rarely need changing.
    ``enabled=False`` passes the raw transform through (for comparisons).
    """

    min_cutoff: float = 0.5  # Hz: cutoff while still (lower = steadier, more lag on slow drifts)
    beta: float = 1.0  # Hz per (crop px / s): how fast the cutoff opens with speed
    d_cutoff: float = 2.0  # Hz: low-pass of the speed estimate
    speed_deadband: float = 2.0  # crop px / s: speed always treated as jitter, not motion
    noise_deadband: float = 1.0  # ... or this many times the speed jitter alone reads as (0: off)
    noise_window_s: float = 1.0  # how much history the jitter estimate uses
    trend: bool = True  # add back the filter's own steady-state lag while moving
    jump_fraction: float = 0.5  # reset when a keypoint jumps by this × template eye distance
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0:
            raise ValueError(f"min_cutoff and d_cutoff must be > 0 Hz, got {self.min_cutoff}, {self.d_cutoff}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.speed_deadband < 0:
            raise ValueError(f"speed_deadband must be >= 0 crop px/s, got {self.speed_deadband}")
        if self.noise_deadband < 0 or self.noise_window_s <= 0:
            raise ValueError("noise_deadband must be >= 0 and noise_window_s > 0")
        if self.jump_fraction <= 0:
            raise ValueError(f"jump_fraction must be > 0, got {self.jump_fraction}")


def _alpha(cutoff_hz: float, dt_s: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """Vector One-Euro filter (Casiez et al. 2012) with one shared cutoff.

    ``speed_fn(dx, x)`` turns the filtered derivative into the scalar speed that opens the
    cutoff (default: Euclidean norm). ``deadband``: speed below it does not open the cutoff.
    ``trend``: while moving faster than the deadband, the output adds back the low-pass's
    steady-state lag ``dx * (1 - a) / a * dt`` (faded in between 1× and 2× the deadband), so
    constant motion is followed without lag while a still signal gets the full smoothing.
    The derivative is taken between consecutive *raw* samples, as in the authors' reference.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0, speed_fn=None, deadband: float = 0.0, trend: bool = False):
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.deadband = float(deadband)
        self.trend = bool(trend)
        self.speed_fn = speed_fn or (lambda dx, x: float(np.linalg.norm(dx)))
        self.x: np.ndarray | None = None  # low-passed state
        self.dx: np.ndarray | None = None  # low-passed derivative
        self.raw: np.ndarray | None = None  # previous raw sample
        self.out: np.ndarray | None = None  # last output (state + lag compensation)
        self.t: float | None = None
        self.last_cutoff: float = self.min_cutoff

    def reset(self, x: np.ndarray | None = None, t: float | None = None) -> None:
        if x is None:
            self.x = self.dx = self.raw = self.out = None
        else:
            self.x = np.array(x, dtype=np.float64)
            self.dx = np.zeros_like(self.x)
            self.raw = self.x.copy()
            self.out = self.x.copy()
        self.t = t

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None or self.t is None:
            self.reset(x, t)
            return self.out.copy()
        dt = float(t) - self.t
        if not dt > 0.0:  # repeated or out-of-order timestamp: keep the state, return it
            return self.out.copy()
        dx_raw = (x - self.raw) / dt
        self.raw = x.copy()
        self.dx = self.dx + _alpha(self.d_cutoff, dt) * (dx_raw - self.dx)
        speed = self.speed_fn(self.dx, self.x)
        cutoff = self.min_cutoff + self.beta * max(0.0, speed - self.deadband)
        self.last_cutoff = cutoff
        a = _alpha(cutoff, dt)
        self.x = self.x + a * (x - self.x)
        self.t = float(t)
        out = self.x
        if self.trend and speed > self.deadband:
            gate = min(1.0, (speed - self.deadband) / max(self.deadband, 1e-9))
            out = self.x + gate * (1.0 - a) / a * dt * self.dx
        self.out = out.copy()
        return self.out.copy()


def similarity_to_params(m: np.ndarray) -> np.ndarray:
    """2×3 similarity → ``(a, b, tx, ty)``."""
    m = np.asarray(m, dtype=np.float64)
    return np.array([0.5 * (m[0, 0] + m[1, 1]), 0.5 * (m[1, 0] - m[0, 1]), m[0, 2], m[1, 2]])


def params_to_similarity(p: np.ndarray) -> np.ndarray:
    a, b, tx, ty = (float(v) for v in p)
    return np.array([[a, -b, tx], [b, a, ty]])


class SimilaritySmoother:
    """One-Euro smoothing of one face's crop→frame similarity (one instance per track).

    ``reference_points_crop``: crop-space points whose motion defines speed and jumps (the
    template keypoints); ``eye_distance_crop`` sets the jump threshold's unit.
    """

    def __init__(self, config: OneEuroConfig, reference_points_crop: np.ndarray, eye_distance_crop: float):
        self.config = config
        self.ref = np.asarray(reference_points_crop, dtype=np.float64)
        self.ref_h = np.concatenate([self.ref, np.ones((len(self.ref), 1))], axis=1)  # K×3
        self.eye_distance_crop = float(eye_distance_crop)
        self.filter = OneEuroFilter(
            config.min_cutoff,
            config.beta,
            config.d_cutoff,
            speed_fn=self._speed,
            deadband=config.speed_deadband,
            trend=config.trend,
        )
        self.resets = 0
        self._history: deque = deque(maxlen=3)  # (t, keypoints in crop px of the raw fit)
        self._residuals: deque = deque()  # (t, |residual| values) for the jitter estimate
        self.jitter_px: float = 0.0  # current estimate of the raw fit's jitter, crop px

    def _update_jitter(self, p: np.ndarray, t: float) -> None:
        """Jitter of the raw fit, from how far each sample sits off the straight line through
        its neighbours (smooth head motion is nearly straight over 3 frames; jitter is not).
        Robust (median) over the last ``noise_window_s``; sets the adaptive deadband."""
        cfg = self.config
        scale = max(math.hypot(p[0], p[1]), 1e-9)
        self._history.append((t, self._points(p)))  # frame px
        if len(self._history) == 3:
            (t0, a), (t1, b), (t2, c) = self._history
            if t2 > t1 > t0:
                w = (t1 - t0) / (t2 - t0)
                e = np.abs(b - (a + (c - a) * w)).ravel() / scale  # crop px
                self._residuals.append((t2, e))
        while self._residuals and self._residuals[0][0] < t - cfg.noise_window_s:
            self._residuals.popleft()
        if len(self._residuals) >= 4:
            # |e| of N(0, 1.5 σ²) has median 0.674 * sqrt(1.5) σ
            sigma = float(np.median(np.concatenate([e for _, e in self._residuals]))) / 0.826
            self.jitter_px = sigma
            dt = max((self._history[-1][0] - self._history[0][0]) / 2.0, 1e-3)
            a_d = _alpha(cfg.d_cutoff, dt)
            # speed that pure jitter reads as: derivative of white noise, low-passed, 2-D norm
            jitter_speed = 2.0 * sigma / dt * math.sqrt(a_d / (2.0 - a_d))
            self.filter.deadband = max(cfg.speed_deadband, cfg.noise_deadband * jitter_speed)

    def _points(self, p: np.ndarray) -> np.ndarray:
        return self.ref_h @ params_to_similarity(p).T  # K×2 frame positions

    def _speed(self, dp: np.ndarray, p: np.ndarray) -> float:
        # velocity of the reference points (linear in dp), in crop px/s
        scale = max(math.hypot(p[0], p[1]), 1e-9)
        v = self.ref_h @ params_to_similarity(dp).T
        return float(np.sqrt((v * v).sum(1).mean())) / scale

    def reset(self) -> None:
        self.filter.reset()
        self._history.clear()
        self._residuals.clear()

    def __call__(self, crop_to_frame_raw: np.ndarray, timestamp_s: float) -> np.ndarray:
        p = similarity_to_params(crop_to_frame_raw)
        if not self.config.enabled:
            return params_to_similarity(p)
        if self.filter.t is not None and timestamp_s < self.filter.t:
            # time went backwards (a looped file, a restarted camera): start over, do not freeze
            self.reset()
            self.resets += 1
        cur = self.filter.out
        if cur is not None:
            scale = max(math.hypot(cur[0], cur[1]), 1e-9)
            jump = np.linalg.norm(self._points(p) - self._points(cur), axis=1).max() / scale
            if jump > self.config.jump_fraction * self.eye_distance_crop:
                self.filter.reset(p, timestamp_s)
                self._history.clear()
                self.resets += 1
                return params_to_similarity(p)
        if self.config.noise_deadband > 0:
            self._update_jitter(p, timestamp_s)
        return params_to_similarity(self.filter(p, timestamp_s))
