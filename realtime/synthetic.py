"""Real media made in code with PyAV: videos of the astronaut photo with known motion, an audio
tone, chosen timestamps and rotation.

The tests, the benchmarks and ``python -m realtime.doctor`` make their clips with these (no media
is downloaded or shipped for them). The photo is scikit-image's public-domain astronaut
(``skimage.data.astronaut()``), which ships inside scikit-image: install the ``dev`` extra."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

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


def write_video(path: Path, frames: list[np.ndarray], *, fps: int = 25,
                timestamps_s: list[float] | None = None, audio_s: float | None = None,
                rotation: int = 0, codec: str = "libx264", audio_codec: str = "aac",
                faststart: bool = False) -> Path:
    """Encode RGB frames (and a 440 Hz tone of ``audio_s`` seconds) into ``path``."""
    out = av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {})
    h, w = frames[0].shape[:2]
    vs = out.add_stream(codec, rate=fps)
    vs.width, vs.height = w, h
    vs.pix_fmt = "rgb24" if codec == "libx264rgb" else "yuv420p"   # x264rgb: odd sizes work
    tb = Fraction(1, 1000 * fps)
    vs.time_base = tb
    vs.codec_context.time_base = tb
    if rotation:
        vs.set_display_rotation(rotation)
    astream = None
    if audio_s:
        astream = out.add_stream(audio_codec, rate=48000)
        astream.layout = "mono"
    for i, img in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        t = timestamps_s[i] if timestamps_s is not None else i / fps
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
