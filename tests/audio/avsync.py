"""Media for the sound tests, made in code, and the measurements made on what comes back.

The clip (:func:`flash_clip`): the astronaut's face, and every 0.72 s a *flash* — the bottom
band of six consecutive frames turns light grey, each frame of the burst its own level — with a
*click* (a 2 ms burst at 3 kHz) in the sound at the exact time of each flash frame. Under the
clicks runs a quiet background (24 sinusoids, 150–450 Hz, periodic with the clip so the loop
has no seam), on which gaps and clicks the delay line might make can be measured:

* :func:`flashes` finds flash frames and which frame of a burst each is (its grey level), so a
  flash frame pairs with its own click even when the live pipeline dropped its neighbours;
* :func:`clicks` finds the clicks; :func:`sync_errors` pairs each flash frame with its click
  and returns video time − sound time;
* :func:`track_gaps` (holes between the decoded sound frames), :func:`envelope_dip` (the
  quietest 20 ms of the background against its median) and :func:`crackle` (energy above
  6 kHz, where neither the background nor the clicks have any, and where a discontinuity of
  the waveform shows at once) measure gaps and clicks.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from realtime.synthetic import face_scene

RATE = 48_000
FPS = 25
LEVELS = (255, 230, 205, 180, 155, 130)  # the bottom band of burst frames 0..5
BAND = 24                                # rows of that band (the overlay is drawn at the top)
BURST_EVERY = 18                         # frames between burst starts (0.72 s)


def burst_frames(n_frames: int, first: int = 5) -> dict[int, int]:
    """{frame index: its place in its burst} for a clip of ``n_frames``."""
    return {s + j: j for s in range(first, n_frames - len(LEVELS), BURST_EVERY)
            for j in range(len(LEVELS))}


def background(n: int, period_s: float, seed: int = 0) -> np.ndarray:
    """24 sinusoids between 150 and 450 Hz, each periodic with ``period_s``, RMS 0.1."""
    rng = np.random.default_rng(seed)
    base = 1.0 / period_s
    ks = rng.choice(np.arange(int(150 / base), int(450 / base) + 1), 24, replace=False)
    t = np.arange(n) / RATE
    x = sum(np.sin(2 * np.pi * k * base * t + rng.uniform(0, 2 * np.pi)) for k in ks)
    return x * (0.1 / x.std())


CLICK = np.hanning(97) * np.sin(2 * np.pi * 3000 * np.arange(97) / RATE) * 0.5


def flash_clip(path: Path, seconds: float = 4.0, size: tuple[int, int] = (320, 240)) -> Path:
    """The clip described in the module docstring: H.264, and 16-bit PCM sound (``.mov``), so
    the looped sound has no codec edges and every change measured is the delay line's."""
    n_frames = int(seconds * FPS)
    bursts = burst_frames(n_frames)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=FPS)
    vs.width, vs.height = size
    vs.pix_fmt = "yuv420p"
    vs.options = {"crf": "18", "preset": "veryfast"}
    a = out.add_stream("pcm_s16le", rate=RATE)
    a.layout = "mono"
    scene = face_scene(*size)
    for i in range(n_frames):
        img = scene.copy()
        if i in bursts:
            img[-BAND:] = LEVELS[bursts[i]]
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        vf.pts, vf.time_base = i, Fraction(1, FPS)
        for p in vs.encode(vf):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    sound = background(int(seconds * RATE), seconds)
    for i in bursts:
        c = int(round(i / FPS * RATE))
        sound[c - 48:c + 49] += CLICK
    sound = sound.astype(np.float32)
    for i in range(0, len(sound), 1024):
        f = av.AudioFrame.from_ndarray(sound[None, i:i + 1024].copy(), format="flt", layout="mono")
        f.sample_rate, f.pts, f.time_base = RATE, i, Fraction(1, RATE)
        for p in a.encode(f):
            out.mux(p)
    for p in a.encode(None):
        out.mux(p)
    out.close()
    return path


# =============================================================================================
# Reading outputs back
# =============================================================================================
@dataclass
class Media:
    """Decoded video frames (time, RGB) and sound frames (time, mono samples)."""
    video: list = field(default_factory=list)
    audio: list = field(default_factory=list)

    def add(self, frame) -> None:
        t = float(frame.pts * frame.time_base)
        if isinstance(frame, av.VideoFrame):
            self.video.append((t, frame.to_ndarray(format="rgb24")))
        else:
            x = frame.to_ndarray()
            x = x / 32768.0 if x.dtype == np.int16 else x
            x = x.mean(axis=0) if frame.format.is_planar else x.reshape(frame.samples, -1).mean(axis=1)
            self.audio.append((t, x.astype(np.float32)))

    @property
    def sound(self) -> tuple[float, np.ndarray]:
        """(time of the first sample, all samples)."""
        return self.audio[0][0], np.concatenate([x for _, x in self.audio])

    def since_sound(self, t: float) -> float:
        """``t`` on the clock that starts with the first sound sample (the pump's origin)."""
        return t - self.audio[0][0]


def read_file(path: Path) -> Media:
    """Both tracks, in one pass (a seek back to 0 may skip the first sound packets)."""
    m = Media()
    with av.open(str(path)) as c:
        for packet in c.demux():
            for f in packet.decode():
                m.add(f)
    return m


class StreamCatcher(threading.Thread):
    """Reads an MPEG-TS stream over UDP to its end, both tracks. A UDP stream has no end
    marker: reading stops after 3 s without data, which FFmpeg reports as an I/O error
    (``error``; the media read until then is kept)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.media, self.error = url, Media(), None
        self.start()

    def run(self) -> None:
        try:
            with av.open(self.url + "?timeout=3000000&fifo_size=1000000&overrun_nonfatal=1",
                         format="mpegts", timeout=15) as c:
                for packet in c.demux():
                    for f in packet.decode():
                        self.media.add(f)
        except (av.error.FFmpegError, OSError) as e:
            self.error = e


# =============================================================================================
# Measurements
# =============================================================================================
def flashes(video: list) -> list[tuple[float, int]]:
    """(time, place in its burst) of every flash frame."""
    out = []
    for t, img in video:
        v = float(img[-BAND + 4:-4].mean())
        if v > (LEVELS[-1] + 90) / 2:            # the background there is about 90
            out.append((t, int(np.argmin([abs(v - level) for level in LEVELS]))))
    return out


def clicks(t0: float, x: np.ndarray) -> np.ndarray:
    """Times of the clicks (peaks of the sample-to-sample step, which the quiet background
    never comes near)."""
    step = np.abs(np.diff(x))
    above = np.flatnonzero(step > 0.1)
    if not len(above):
        return np.zeros(0)
    groups = np.split(above, np.flatnonzero(np.diff(above) > RATE // 100) + 1)
    return np.array([t0 + g[np.argmax(step[g])] / RATE for g in groups])


def sync_errors(media: Media) -> list[tuple[float, float]]:
    """(time since the sound started, video − sound in seconds) for each flash frame whose
    burst of clicks came through whole (a delay change may repeat or skip part of one)."""
    t0, x = media.sound
    c = clicks(t0, x)
    if not len(c):
        return []
    bursts = np.split(c, np.flatnonzero(np.diff(c) > 0.15) + 1)
    out = []
    for t, j in flashes(media.video):
        near = min(bursts, key=lambda b: abs(b.mean() - t))
        if len(near) == len(LEVELS) and abs(near.mean() - t) < 0.36:
            out.append((media.since_sound(t), t - near[j]))
    return out


def track_gaps(media: Media) -> list[tuple[float, float]]:
    """(where, how long) for each hole or overlap between consecutive sound frames."""
    out = []
    for (t, x), (t_next, _) in zip(media.audio, media.audio[1:]):
        end = t + len(x) / RATE
        if abs(t_next - end) > 1.5 / RATE:
            out.append((end, t_next - end))
    return out


def envelope_dip(x: np.ndarray, window: int = RATE // 50) -> float:
    """The quietest window's RMS over the median window's (20 ms windows)."""
    m = len(x) // window * window
    rms = np.sqrt((x[:m].reshape(-1, window) ** 2).mean(axis=1))
    return float(rms.min() / np.median(rms))


# Above 6 kHz after AAC: the crossfaded delay changes of test_pump measure 0.0007, the same
# changes done as hard switches 0.045; a recording whose peak stays under this has no click.
CRACKLE_LIMIT = 0.004


def crackle(x: np.ndarray, cutoff: float = 6000.0, taps: int = 129) -> float:
    """The peak of ``x`` above ``cutoff`` Hz (a windowed-sinc high-pass)."""
    n = np.arange(taps) - taps // 2
    lowpass = np.sinc(2 * cutoff / RATE * n) * 2 * cutoff / RATE * np.hamming(taps)
    highpass = -lowpass
    highpass[taps // 2] += 1
    return float(np.abs(np.convolve(x, highpass, mode="valid")).max())
