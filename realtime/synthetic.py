"""Real media made in code with PyAV: videos of the astronaut photo with known motion, an audio
tone, chosen timestamps and rotation.

* :func:`face_scene` — one frame with the astronaut's head; :func:`synth_frame` — frame ``i``
  of a clip with one or several heads drifting on a grid; :func:`synth_clip` — such a clip
  encoded as a phone would (what the latency and live benchmarks run on);
* :func:`write_video` — frames (with chosen timestamps, rotation, a tone) into a file;
  :func:`read_back` — what a player sees in it; :func:`write_audio_only` — sound, no video.

The tests, the benchmarks and ``python -m realtime.doctor`` make their clips with these (no media
is downloaded or shipped for them). The photo is scikit-image's public-domain astronaut
(``skimage.data.astronaut()``), which ships inside scikit-image: install the ``dev`` extra."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np


def astronaut() -> np.ndarray:
    """The astronaut photo, 512 x 512 RGB uint8 (needs scikit-image: the ``dev`` extra)."""
    try:
        from skimage import data
    except ImportError:
        raise ImportError("synthetic clips use scikit-image's astronaut photo: "
                          "pip install scikit-image (or the package's dev extra)") from None
    return data.astronaut()


def face_scene(width: int, height: int, face_frac: float = 0.45, dx: float = 0.0,
               dy: float = 0.0, photo: np.ndarray | None = None) -> np.ndarray:
    """A frame with the astronaut's head (about ``face_frac`` of the frame height tall) on a
    plain background, shifted by (dx, dy) pixels."""
    import cv2
    photo = astronaut() if photo is None else photo
    head = photo[0:300, 110:410]                       # the head and shoulders, 300 x 300
    side = max(8, int(round(height * face_frac * 1.6)))
    head = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), (70, 90, 110), np.uint8)
    x0 = int(round((width - side) / 2 + dx))
    y0 = int(round((height - side) / 2 + dy))
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + side, width), min(y0 + side, height)
    if xe > xs and ye > ys:
        frame[ys:ye, xs:xe] = head[ys - y0:ye - y0, xs - x0:xe - x0]
    return frame


def synth_frame(width: int, height: int, faces: int, i: int, fps: float,
                photo: np.ndarray | None = None) -> np.ndarray:
    """Frame ``i`` of a clip at ``fps``: ``faces`` astronaut heads (:func:`face_scene`) on a
    grid, each drifting slowly (a few % of its cell) with its own phase, so a tracker really
    tracks."""
    photo = astronaut() if photo is None else photo
    t = i / fps
    cols = math.ceil(math.sqrt(faces))
    rows = math.ceil(faces / cols)
    cw, ch = width // cols, height // rows
    img = np.full((height, width, 3), (70, 90, 110), np.uint8)
    frac = 0.45 if faces == 1 else 0.5
    for k in range(faces):
        r, c = divmod(k, cols)
        dx = 0.03 * cw * math.sin(2 * math.pi * t / 3.0 + k)
        dy = 0.02 * ch * math.sin(2 * math.pi * t / 2.2 + 2 * k)
        img[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = face_scene(cw, ch, frac, dx=dx, dy=dy,
                                                                   photo=photo)
    return img


def synth_clip(path: Path, width: int, height: int, faces: int = 1, frames: int = 30,
               fps: float = 30.0) -> Path:
    """``frames`` frames of :func:`synth_frame` encoded as a phone would (H.264, yuv420p, crf 18)
    into ``path``, one frame in memory at a time."""
    photo = astronaut()
    return write_video(path, (synth_frame(width, height, faces, i, fps, photo)
                              for i in range(frames)),
                       fps=fps, crf=18, preset="veryfast")


def write_video(path: Path, frames: Iterable[np.ndarray], *, fps: float = 25,
                timestamps_s: list[float] | None = None, audio_s: float | None = None,
                rotation: int = 0, codec: str = "libx264", audio_codec: str = "aac",
                faststart: bool = False, crf: int | None = None,
                preset: str | None = None, pix_fmt: str | None = None,
                options: dict | None = None) -> Path:
    """Encode RGB frames (and a 440 Hz tone of ``audio_s`` seconds) into ``path``. ``frames``
    may be any iterable (a generator is encoded as it goes); ``crf`` and ``preset`` are x264's
    (None: the encoder's defaults); ``pix_fmt`` and ``options`` reach any encoder (e.g.
    ``prores_ks`` in ``yuv422p10le`` with ``{"profile": "3"}``)."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("write_video: no frames to write")
    out = av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {})
    h, w = first.shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    vs = out.add_stream(codec, rate=rate)
    vs.width, vs.height = w, h
    vs.pix_fmt = pix_fmt or ("rgb24" if codec == "libx264rgb" else "yuv420p")  # x264rgb: odd sizes
    opts = {k: str(v) for k, v in (("crf", crf), ("preset", preset)) if v is not None}
    opts.update({k: str(v) for k, v in (options or {}).items()})
    if opts:
        vs.options = opts
    tb = 1 / (1000 * rate)
    vs.time_base = tb
    vs.codec_context.time_base = tb
    if rotation:
        vs.set_display_rotation(rotation)
    astream = None
    if audio_s:
        astream = out.add_stream(audio_codec, rate=48000)
        astream.layout = "mono"
    for i, img in enumerate(itertools.chain([first], frames)):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        if vs.pix_fmt != "rgb24":
            vf = vf.reformat(format=vs.pix_fmt)
        t = timestamps_s[i] if timestamps_s is not None else i / rate
        vf.pts = int(round(t / tb))
        vf.time_base = tb
        for p in vs.encode(vf):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    if astream is not None:
        n = int(audio_s * 48000)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
        _encode_mono(out, astream, tone)
    out.close()
    return path


def read_back(path: Path) -> dict:
    """What a player sees: frame count, timestamps, sizes, rotation, audio duration."""
    c = av.open(str(path))
    try:
        v = c.streams.video[0]
        ts, rot, first = [], 0, None
        for f in c.decode(v):
            ts.append(float(f.pts * v.time_base))
            rot = int(getattr(f, "rotation", 0) or 0) % 360
            if first is None:
                first = f.to_ndarray(format="rgb24")
        info = {"frames": len(ts), "timestamps": ts, "width": v.codec_context.width,
                "height": v.codec_context.height, "rotation": rot, "first": first,
                "audio_codec": None, "audio_s": 0.0}
        c.seek(0)
        if c.streams.audio:
            a = c.streams.audio[0]
            info["audio_codec"] = a.codec_context.name
            samples = sum(fr.samples for fr in c.decode(a))
            info["audio_s"] = samples / a.codec_context.sample_rate
        return info
    finally:
        c.close()


def write_audio_only(path: Path, seconds: float = 0.1) -> Path:
    """An AAC file with sound and no video stream."""
    out = av.open(str(path), "w")
    stream = out.add_stream("aac", rate=48000)
    _encode_mono(out, stream, np.zeros(int(48000 * seconds), np.float32))
    out.close()
    return path


def _encode_mono(out, stream, samples: np.ndarray, rate: int = 48000, step: int = 1024) -> None:
    """Encode mono float samples into ``stream`` of container ``out``, then flush it."""
    for i in range(0, len(samples), step):
        f = av.AudioFrame.from_ndarray(samples[None, i:i + step], format="flt", layout="mono")
        f.sample_rate, f.pts, f.time_base = rate, i, Fraction(1, rate)
        for pkt in stream.encode(f):
            out.mux(pkt)
    for pkt in stream.encode(None):
        out.mux(pkt)
