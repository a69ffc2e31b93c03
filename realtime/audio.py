"""Sound that matches the picture: audio delayed by the video's measured latency.

The anime video leaves the pipeline some tens of milliseconds after the camera saw it; the voice
must leave just as late, or lips move after the words. Pure NumPy pieces:

* :class:`DelayLine` — a ring buffer read ``delay`` samples behind the write position. When the
  delay changes, the output crossfades (equal power, ``fade_ms``) from the old read position to
  the new one: every sample is still played at its own rate (no pitch change) and the signal
  stays continuous (no click, no gap). Small wobbles of the target are ignored
  (``hysteresis_ms``), so a steady latency gives a steady delay; a smaller offset (more than
  ``fine_ms``) that stays on one side for ``settle_s`` is corrected too, so the hysteresis
  leaves no lasting bias.
* :class:`LatencyTracker` — the delay to use: a fixed ``--audio-delay MS``, or the median of the
  video's end-to-end latency (capture to output) over the last few seconds.
* :class:`AudioChunk` — a block of samples stamped with the monotonic time it is played at.

**Time stamps.** Every live output stamps what it sends with its *emission* time on the
monotonic clock: a video frame with the time it is handed to the output, a block of sound with
the time it leaves the delay line. So a recording or a stream holds what a viewer of the live
output saw and heard, and the sync in it is produced by the delay alone: a frame captured at
``c`` leaves at ``c + latency``, the sound captured at ``c`` leaves at ``c + delay``, and the
two meet when the delay follows the latency. (Stamped with capture times instead, every file
would look in sync whatever the delay, and say nothing about what a call partner hears.)

Devices and files (microphone, the input file's own sound track, the virtual microphone) and the
thread that moves the sound are in :mod:`realtime.audio_io`.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["SAMPLE_RATE", "DelayLine", "LatencyTracker", "AudioChunk", "remix"]

SAMPLE_RATE = 48_000


@dataclass(frozen=True)
class AudioChunk:
    """``samples``: float32 N×C in [-1, 1]; ``t_s``: the monotonic time its first sample is
    played at (its emission time)."""
    samples: np.ndarray
    t_s: float
    rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate


def remix(x: np.ndarray, channels: int) -> np.ndarray:
    """N×C float samples as N×``channels``: mono is the mean, mono to more is repeated."""
    x = np.asarray(x, np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return x.mean(axis=1, keepdims=True)
    return np.repeat(x[:, :1], channels, axis=1) if x.shape[1] == 1 else x[:, :channels]


class DelayLine:
    """A fixed-rate delay with click-free, pitch-free changes (see the module docstring).

    ``push(x)`` appends N×C samples; ``pull(n)`` returns the next ``n`` output samples, output
    sample ``r`` being input sample ``r - delay`` (silence where nothing was pushed yet).
    Thread-safe: a capture callback may push while another thread pulls."""

    def __init__(self, channels: int = 1, rate: int = SAMPLE_RATE, max_delay_s: float = 2.0,
                 fade_ms: float = 40.0, hysteresis_ms: float = 8.0, delay_ms: float = 0.0,
                 fine_ms: float = 2.0, settle_s: float = 2.0):
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.rate, self.channels = int(rate), int(channels)
        self.capacity = int(rate * (max_delay_s + 1.0))
        self.buf = np.zeros((self.capacity, channels), np.float32)
        self.written = 0                      # input samples pushed in all
        self.read_pos = 0                     # output samples pulled in all
        self.fade_len = max(1, int(rate * fade_ms / 1000))
        self.hysteresis = int(rate * hysteresis_ms / 1000)
        self.fine, self.settle = int(rate * fine_ms / 1000), int(rate * settle_s)
        self._off_side, self._off_since = 0, 0    # which side of ``fine`` the target is, since when
        self.max_delay = int(rate * max_delay_s)
        self.delay = self._samples(delay_ms)
        self._target = self.delay
        self._fade_from: int | None = None    # the old delay while a crossfade runs
        self._fade_done = 0
        self._lock = threading.Lock()
        self.changes = 0                      # crossfades started (for the summary and tests)

    def _samples(self, ms: float) -> int:
        if not math.isfinite(ms) or ms < 0:
            raise ValueError(f"an audio delay must be >= 0 ms, got {ms}")
        return min(int(round(self.rate * ms / 1000)), self.max_delay)

    @property
    def delay_ms(self) -> float:
        return 1000.0 * self.delay / self.rate

    def set_delay_ms(self, ms: float) -> None:
        """Ask for a new delay; it takes effect through a crossfade once the current one ends,
        if it differs from the current delay by more than the hysteresis (or by more than
        ``fine_ms`` for ``settle_s``)."""
        target = self._samples(ms)
        with self._lock:
            self._target = target

    def push(self, x: np.ndarray) -> None:
        x = remix(x, self.channels)
        with self._lock:
            n = len(x)
            keep = x[-self.capacity:]
            start = (self.written + n - len(keep)) % self.capacity
            first = min(len(keep), self.capacity - start)
            self.buf[start:start + first] = keep[:first]
            self.buf[:len(keep) - first] = keep[first:]
            self.written += n

    def _tap(self, pos: np.ndarray) -> np.ndarray:
        """Input samples at absolute positions ``pos`` (silence outside what is held)."""
        ok = (pos >= 0) & (pos < self.written) & (pos >= self.written - self.capacity)
        out = np.zeros((len(pos), self.channels), np.float32)
        out[ok] = self.buf[pos[ok] % self.capacity]
        return out

    def _due(self) -> bool:
        """Whether the target is far enough, or long enough, off the delay to move to it."""
        diff = self._target - self.delay
        side = (diff > self.fine) - (diff < -self.fine)
        if side != self._off_side:
            self._off_side, self._off_since = side, self.read_pos
        return abs(diff) > self.hysteresis or \
            (side != 0 and self.read_pos - self._off_since >= self.settle)

    def pull(self, n: int) -> np.ndarray:
        with self._lock:
            out = np.empty((n, self.channels), np.float32)
            done = 0
            while done < n:
                if self._fade_from is None and self._due():
                    self._fade_from, self.delay, self._fade_done = self.delay, self._target, 0
                    self._off_side = 0
                    self.changes += 1
                if self._fade_from is None:
                    k = n - done
                    pos = np.arange(self.read_pos, self.read_pos + k) - self.delay
                    out[done:] = self._tap(pos)
                else:
                    k = min(n - done, self.fade_len - self._fade_done)
                    idx = np.arange(self.read_pos, self.read_pos + k)
                    t = (self._fade_done + np.arange(k) + 0.5) / self.fade_len
                    g_new = np.sin(0.5 * np.pi * t)[:, None].astype(np.float32)
                    g_old = np.cos(0.5 * np.pi * t)[:, None].astype(np.float32)
                    out[done:done + k] = g_old * self._tap(idx - self._fade_from) + \
                        g_new * self._tap(idx - self.delay)
                    self._fade_done += k
                    if self._fade_done >= self.fade_len:
                        self._fade_from = None
                self.read_pos += k
                done += k
            return out


class LatencyTracker:
    """The audio delay to use now: ``fixed_ms`` when given (``--audio-delay``), else the median
    video latency over the last ``window_s`` seconds, fed with ``add(latency_s, now)`` for each
    frame that leaves the pipeline (``initial_ms`` until the first one)."""

    def __init__(self, fixed_ms: float | None = None, window_s: float = 3.0,
                 initial_ms: float = 0.0):
        if fixed_ms is not None and (not math.isfinite(fixed_ms) or fixed_ms < 0):
            raise ValueError(f"--audio-delay must be a number of milliseconds >= 0, got {fixed_ms}")
        self.fixed_ms, self.window_s = fixed_ms, window_s
        self.initial_ms = initial_ms
        self._samples: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def add(self, latency_s: float, now: float) -> None:
        with self._lock:
            self._samples.append((now, latency_s))
            while self._samples and self._samples[0][0] < now - self.window_s:
                self._samples.popleft()

    @property
    def automatic(self) -> bool:
        return self.fixed_ms is None

    def delay_ms(self) -> float:
        if self.fixed_ms is not None:
            return float(self.fixed_ms)
        with self._lock:
            if not self._samples:
                return self.initial_ms
            return float(np.median([v for _, v in self._samples]) * 1000.0)

    def describe(self) -> str:
        """How the delay is chosen, for the summary: ``fixed`` or ``automatic``."""
        return "fixed (--audio-delay)" if self.fixed_ms is not None else \
            f"automatic: median video latency of the last {self.window_s:g} s"
