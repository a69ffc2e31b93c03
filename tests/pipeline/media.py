"""Hostile and unusual media made in code for the pipeline tests: clips in any encoder and pixel
format PyAV's FFmpeg has (ProRes, DNxHR, 10-bit, 4:2:2, HEVC, VP9, AV1, MJPEG), files cut
short or damaged in the middle, photos with an EXIF orientation, checkpoints that are not
checkpoints."""
from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import av
import numpy as np

from realtime.synthetic import astronaut, face_scene, write_video


@functools.lru_cache(maxsize=None)
def _photo() -> np.ndarray:
    return astronaut()


def frames(n: int, w: int = 160, h: int = 120, period: int = 40) -> list[np.ndarray]:
    """``n`` frames of the astronaut's head moving right one pixel a frame (and back to the
    start every ``period`` frames)."""
    made = [face_scene(w, h, dx=i, photo=_photo()) for i in range(min(n, period))]
    return [made[i % period] for i in range(n)]


def write_clip(path: Path, n: int = 6, w: int = 160, h: int = 120, *, codec: str = "libx264",
               pix_fmt: str = "yuv420p", options: dict | None = None, fps: int = 25,
               audio_s: float | None = None, audio_codec: str = "aac") -> Path:
    """``n`` frames encoded with ``codec`` in ``pix_fmt`` (e.g. prores_ks yuv422p10le), with an
    optional tone of ``audio_s`` seconds."""
    return write_video(path, frames(n, w, h), fps=fps, codec=codec, pix_fmt=pix_fmt,
                       options=options, audio_s=audio_s, audio_codec=audio_codec)


def stream_format(path: Path) -> dict:
    """Codec, profile, pixel format, bit depth and frame count of a file's video stream."""
    c = av.open(str(path))
    try:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(v))
        fmt = v.codec_context.format
        return {"codec": v.codec_context.name, "profile": v.codec_context.profile,
                "pix_fmt": fmt.name, "bits": fmt.components[0].bits, "frames": n,
                "size": (v.codec_context.width, v.codec_context.height),
                "audio": c.streams.audio[0].codec_context.name if c.streams.audio else None}
    finally:
        c.close()


def cut(src: Path, dst: Path, fraction: float) -> Path:
    """The first ``fraction`` of ``src``'s bytes."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def damage_middle(src: Path, dst: Path, at: float = 0.5, n: int = 2000, seed: int = 1) -> Path:
    """``src`` with ``n`` random bytes written over the bytes at ``at`` of its length."""
    data = bytearray(src.read_bytes())
    i = int(len(data) * at)
    data[i:i + n] = np.random.default_rng(seed).bytes(n)
    dst.write_bytes(bytes(data))
    return dst


def photo(path: Path, w: int = 320, h: int = 240, *, orientation: int | None = None,
          mode: str = "RGB") -> Path:
    """The astronaut's head as a still image (format from the suffix); ``orientation`` stores the
    pixels turned so that EXIF orientation ``orientation`` (6: 90° clockwise) shows them upright."""
    from PIL import Image
    img = face_scene(w, h, photo=_photo())
    if orientation == 6:                       # viewer turns it 90° clockwise to show it
        img = np.ascontiguousarray(np.rot90(img, 1))
    im = Image.fromarray(img).convert(mode)
    kw = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    im.save(path, **kw)
    return path


def not_checkpoints(folder: Path) -> dict[str, Path]:
    """Files a user might pass as --checkpoint by mistake: empty, text, JSON, PNG, MP4, random."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    made = {"empty": folder / "empty.pt", "text": folder / "notes.pt", "json": folder / "cfg.json",
            "png": folder / "face.png", "mp4": folder / "clip.mp4", "random": folder / "noise.pt"}
    made["empty"].write_bytes(b"")
    made["text"].write_text("hello, this is not a checkpoint\n")
    made["json"].write_text(json.dumps({"G_A2B_ema": [1, 2, 3]}))
    buf = io.BytesIO()
    Image.fromarray(face_scene(32, 32, photo=_photo())).save(buf, format="PNG")
    made["png"].write_bytes(buf.getvalue())
    write_clip(made["mp4"], n=3, w=64, h=64)
    made["random"].write_bytes(np.random.default_rng(0).bytes(4096))
    return made
