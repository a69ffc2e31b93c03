"""Frame sinks: a video file (PyAV, written atomically, audio copied), a still image (Pillow,
atomic), a live MPEG-TS stream, a virtual camera (pyvirtualcam).

Every sink takes upright uint8 RGB :class:`realtime.types.Frame` objects through ``write`` and
is finished with ``close()`` (success) or ``abort()`` (error / Ctrl-C: nothing is left behind).

Live outputs (a recording made with ``live=True``, a stream) stamp each frame with the time it
is written, on the monotonic clock from the sink's creation, and may carry the live sound: a
:class:`LiveAudioTrack` fed through ``write_audio(chunk)`` with blocks stamped with the time
they are played (:mod:`realtime.audio`), so the file or stream holds what a viewer saw and
heard, in that sync. Frames come from the pipeline's output thread and sound from the audio
thread; a lock keeps the two apart and the muxer interleaves them by time.

The video encoder follows the output container when none is asked for (:func:`choose_encoding`):
VP9 for WebM, H.264 for everything else (NVENC when a CUDA engine is in use and it really opens
at the output's size, else libx264). Into ``.mov``/``.mkv``, what an editor's input carries is
kept where an encoder exists: ProRes stays ProRes (same profile), DNxHD/DNxHR becomes DNxHR
(same bit depth and chroma), and any other 10-bit or 4:2:2/4:4:4 input gets H.264 of the same
bit depth and chroma. The pipeline itself works on 8-bit RGB, so a 10-bit file keeps its
format, not precision beyond 8 bits.
"""
from __future__ import annotations

import io
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np

from training.fileio import temp_beside

from .audio import SAMPLE_RATE, AudioChunk, remix
from .sources import PHOTO_SUFFIXES, MediaError, VideoInfo, _open_input, _reason, stored
from .types import Frame

# Audio codecs each container family takes as they are (copied without re-encoding).
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"},
    "matroska": None,           # None: anything
    "webm": {"opus", "vorbis"},
    "mpegts": {"aac", "mp3", "ac3", "eac3", "opus"},
}
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
           ".avi": "avi", ".ts": "mpegts"}
VIDEO_OUTPUT_SUFFIXES = tuple(_MUXERS)
KEEP_FORMAT_SUFFIXES = (".mov", ".mkv")           # containers an editor's format is kept in
_FAST_PRESETS = ("ultrafast", "superfast", "veryfast", "faster")
Warn = Callable[[str], None]


class OutputError(MediaError):
    """The output cannot be written (missing folder, read-only, disk full, bad name)."""


def atomic_temp_path(target: str | os.PathLike) -> Path:
    """A fresh temporary file beside ``target`` with the same extension (the muxer is chosen by
    it); raises OutputError if the folder is missing or not writable."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{target}: the folder {folder} does not exist")
    try:
        return temp_beside(target, suffix=f".part{target.suffix}")
    except OSError as e:
        raise OutputError(f"{target}: cannot write in {folder} ({e.strerror or e})") from None


# =============================================================================================
# Choosing the video encoder
# =============================================================================================
@dataclass(frozen=True)
class VideoEncoding:
    """How a file's video is encoded: encoder, pixel format, its options, and the bit rate
    (0: quality-driven, no cap; None: the encoder's default)."""
    codec: str
    pix_fmt: str = "yuv420p"
    options: dict = field(default_factory=dict)
    bit_rate: int | None = None


def _layout(pix_fmt: str | None) -> tuple[int, str]:
    """(bits per sample, chroma "420"/"422"/"444") of an FFmpeg pixel format."""
    import av
    try:
        comps = av.VideoFormat(pix_fmt, 16, 16).components
    except (ValueError, TypeError):
        return 8, "420"
    bits = comps[0].bits
    if len(comps) < 3:
        return bits, "420"
    w, h = comps[1].width, comps[1].height
    return bits, ("444" if w == 16 and h == 16 else "422" if h == 16 else "420")


def _kept_formats(info: VideoInfo | None) -> list[tuple[str, str, dict]]:
    """(encoder, pixel format, options) that keep an editor's input format, best first (DNxHR
    refuses frames under 256x120, so H.264 of the same depth and chroma follows it); empty for
    an ordinary 8-bit 4:2:0 input."""
    if info is None:
        return []
    bits, chroma = _layout(info.pix_fmt)
    profile = (info.profile or "").lower()
    same = ("libx264", f"yuv{chroma}p" + ("10le" if bits > 8 else ""), {})
    if info.codec == "prores":
        name = {"proxy": "proxy", "lt": "lt", "standard": "standard", "hq": "hq",
                "4444": "4444", "4444 xq": "4444xq", "xq": "4444xq"}.get(profile, "hq")
        pix = "yuv444p10le" if name.startswith("4444") else "yuv422p10le"
        return [("prores_ks", pix, {"profile": name}), same]
    if info.codec == "dnxhd":
        if chroma == "444" or "444" in profile:
            dnx = ("dnxhd", "yuv444p10le", {"profile": "dnxhr_444"})
        elif bits > 8:
            dnx = ("dnxhd", "yuv422p10le", {"profile": "dnxhr_hqx"})
        else:
            name = {"dnxhr lb": "dnxhr_lb", "dnxhr sq": "dnxhr_sq"}.get(profile, "dnxhr_hq")
            dnx = ("dnxhd", "yuv422p", {"profile": name})
        return [dnx, same]
    return [same] if bits > 8 or chroma != "420" else []


def _default_pix_fmt(codec: str) -> str:
    """yuv420p where the encoder takes it, else its first pixel format (ProRes: 4:2:2 10-bit)."""
    import av
    try:
        formats = [f.name for f in av.Codec(codec, "w").video_formats or ()]
    except Exception:  # noqa: BLE001 - an unknown encoder: choose_encoding says so
        return "yuv420p"
    return "yuv420p" if "yuv420p" in formats or not formats else formats[0]


def encoder_settings(codec: str, crf: int = 18, preset: str = "veryfast") -> tuple[dict, int | None]:
    """(options, bit rate) for quality-driven encoding at x264's ``crf`` scale (0..51) with an
    x264 ``preset`` name. Bit rate 0 means no bit-rate target: NVENC in ``cq`` mode otherwise
    stays capped at its default 2 Mb/s (issue 12), and for VP9 it is constant-quality mode."""
    fast = preset in _FAST_PRESETS
    if codec == "libx264":
        return {"crf": str(crf), "preset": preset}, None
    if codec == "libx265":
        return {"crf": str(crf), "preset": preset, "x265-params": "log-level=error"}, None
    if codec.endswith("_nvenc"):
        # constant quality: VBR driven by cq with no bit-rate target; p4 balances speed and
        # quality (p1 fastest .. p7 best), tune hq for files
        return {"rc": "vbr", "cq": str(max(1, crf)), "preset": "p2" if fast else "p4",
                "tune": "hq"}, 0
    if codec == "libvpx-vp9":
        return {"crf": str(round(crf * 63 / 51)), "deadline": "realtime" if fast else "good",
                "cpu-used": "8" if fast else "4", "row-mt": "1"}, 0
    if codec == "libsvtav1":
        return {"crf": str(round(crf * 63 / 51)), "preset": "10" if fast else "8"}, 0
    return {}, None


def encoder_opens(codec: str, width: int = 256, height: int = 256, pix_fmt: str = "yuv420p",
                  options: dict | None = None, bit_rate: int | None = None) -> bool:
    """True when PyAV's FFmpeg has ``codec`` and it really opens here for this size and pixel
    format (NVENC needs hardware, and refuses sizes its hardware cannot take)."""
    import av
    try:
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
        ctx.time_base = Fraction(1, 30)
        ctx.framerate = Fraction(30)
        if bit_rate is not None:
            ctx.bit_rate = bit_rate
        ctx.options = dict(options or {})
        ctx.open()
        return True
    except Exception:     # noqa: BLE001 - any failure means "not usable here"
        return False


def choose_encoding(path: str | os.PathLike, requested: str | None = None, *,
                    device: str = "cpu", info: VideoInfo | None = None,
                    size: tuple[int, int] = (256, 256), crf: int = 18,
                    preset: str = "veryfast") -> VideoEncoding:
    """The encoding for a video file at ``path`` (see the module docstring); ``requested``
    names an encoder (``--codec``). OutputError when that encoder does not open here."""
    suffix = Path(path).suffix.lower()
    kept = [k for k in (_kept_formats(info) if suffix in KEEP_FORMAT_SUFFIXES else [])
            if not _container_refuses(k[0], suffix)]          # Matroska takes no DNxHD here
    if requested:
        candidates = [k for k in kept if k[0] == requested][:1] or \
            [(requested, _default_pix_fmt(requested), {})]
    elif suffix == ".webm":
        candidates = [("libvpx-vp9", "yuv420p", {})]
    else:
        nvenc = [("h264_nvenc", "yuv420p", {})] if device.startswith("cuda") else []
        candidates = kept + nvenc + [("libx264", "yuv420p", {})]
    for codec, pix, extra in candidates:
        options, bit_rate = encoder_settings(codec, crf, preset)
        options.update(extra)
        if encoder_opens(codec, *size, pix, options, bit_rate):
            return VideoEncoding(codec, pix, options, bit_rate)
    codec, pix, _ = candidates[-1]
    raise OutputError(f"{path}: the video encoder {codec!r} is not available or does not "
                      f"open here for {size[0]}x{size[1]} {pix}"
                      + ("" if codec == "libx264" else " (try --codec libx264)"))


def codec_problem(codec: str, suffix: str) -> str | None:
    """Why ``--codec codec`` cannot write a ``suffix`` file here (unknown encoder, one that does
    not open on this machine, or one the container does not take), or None."""
    if not encoder_opens(codec, 256, 256, _default_pix_fmt(codec), *encoder_settings(codec)):
        return "not available or does not open on this machine (try libx264)"
    return _container_refuses(codec, suffix)


def _container_refuses(codec: str, suffix: str) -> str | None:
    """FFmpeg's reason when the muxer for ``suffix`` does not take ``codec``, else None."""
    import av
    muxer = _MUXERS.get(suffix.lower())
    if muxer is None:
        return None
    out = av.open(io.BytesIO(), "w", format=muxer)
    try:
        out.add_stream(codec, rate=30)
    except ValueError as e:
        return _reason(e)
    finally:
        out.close()
    return None


def pick_video_codec(requested: str | None, device: str = "cpu",
                     size: tuple[int, int] = (1920, 1080)) -> str:
    """The encoder an MP4 of ``size`` gets (see :func:`choose_encoding`)."""
    return choose_encoding("out.mp4", requested, device=device, size=size).codec


def photo_output_suffix(suffix: str) -> str:
    """A photo output keeps its input's format where Pillow writes it in colour, else PNG."""
    s = suffix.lower()
    return s if s in PHOTO_SUFFIXES and s not in (".pgm", ".pbm") else ".png"


# =============================================================================================
# Live sound
# =============================================================================================
def live_audio_codec(muxer: str) -> str:
    """The encoder for a live output's sound: Opus into WebM, AAC into everything else."""
    return "libopus" if muxer == "webm" else "aac"


class LiveAudioTrack:
    """The sound stream of a live output: :class:`~realtime.audio.AudioChunk` blocks, stamped
    with the monotonic time they are played, encoded at ``(t_s - origin)`` on the output's
    clock. The track stays continuous: a block that starts up to 2 ms off the end of the last
    one is joined to it (rounding); a later one is preceded by silence (``filled``), an earlier
    one loses its overlap (``trimmed``); anything before ``origin`` is dropped."""

    JOIN_S = 0.002

    def __init__(self, container, codec: str, origin: float, *, rate: int = SAMPLE_RATE,
                 channels: int = 1):
        import av
        self._av = av
        self.stream = container.add_stream(codec, rate=rate)
        self.layout = "mono" if channels == 1 else "stereo"
        self.stream.layout = self.layout
        self.stream.time_base = Fraction(1, rate)
        self.origin, self.rate, self.channels = origin, rate, channels
        self.next: int | None = None                # the sample position the next block starts at
        self.filled = self.trimmed = 0

    def encode(self, chunk: AudioChunk) -> list:
        """The packets for ``chunk`` (to be muxed by the caller)."""
        x = remix(chunk.samples, self.channels)
        start = int(round((chunk.t_s - self.origin) * self.rate))
        if self.next is None:
            if start + len(x) <= 0:
                return []
            if start < 0:
                x, start = x[-start:], 0
            self.next = start
        else:
            gap = start - self.next
            if gap > self.JOIN_S * self.rate:
                x = np.concatenate([np.zeros((gap, self.channels), np.float32), x])
                self.filled += gap
            elif gap < -self.JOIN_S * self.rate:
                drop = min(-gap, len(x))
                x = x[drop:]
                self.trimmed += drop
        if not len(x):
            return []
        frame = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T), format="fltp",
                                                 layout=self.layout)
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.next, Fraction(1, self.rate)
        self.next += len(x)
        return self.stream.encode(frame)

    def flush(self) -> list:
        return self.stream.encode(None) if self.next is not None else []


# =============================================================================================
# Video files
# =============================================================================================
class VideoFileSink:
    """Encode frames to ``path`` atomically, keeping the input's timestamps, rotation, pixel
    aspect and audio.

    Frames are written with their own timestamps (variable frame rate stays variable); audio
    packets of ``audio_from`` are interleaved by time and copied without re-encoding where the
    container allows, else re-encoded (AAC, or Opus for WebM). Odd frame sizes are padded to
    even by repeating the last row/column (4:2:0 video needs even sizes). ``codec`` names an
    encoder (None: :func:`choose_encoding` decides from the container and ``info``);
    ``encoding`` gives the whole choice ready-made. If NVENC fails on the first frame (it
    opened for the probe but not for this stream), the file is started again with libx264 and
    ``warn`` says so: no frame is lost. ``close()`` renames the finished temporary file onto
    ``path``; ``abort()`` deletes it.

    ``live=True`` (a live recording): each frame is stamped with the time it is written, on the
    monotonic clock from the sink's creation (see the module docstring); ``live_audio=True``
    adds a sound track fed by :meth:`write_audio` (AAC, Opus into WebM, mono 48 kHz).
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, info: VideoInfo | None = None,
                 audio_from: str | None = None, codec: str | None = None, crf: int = 18,
                 preset: str = "veryfast", fps: float | None = None, device: str = "cpu",
                 warn: Warn | None = None, encoding: VideoEncoding | None = None,
                 live: bool = False, live_audio: bool = False):
        import av
        self._av = av
        self.path = Path(path)
        self.name = str(self.path)
        self.live, self.live_audio = live or live_audio, live_audio
        self.origin = time.monotonic()
        self._lock = threading.RLock()
        self.audio: LiveAudioTrack | None = None
        self.info = info
        self.rotation = info.rotation if info else 0
        self.time_base = info.time_base if info else Fraction(1, 90000)
        self.rate = (info.average_rate if info and info.average_rate else None) or \
            Fraction(fps or 30).limit_denominator(1001)
        w, h = (height, width) if self.rotation in (90, 270) else (width, height)  # stored size
        self.out_size = (w + (w & 1), h + (h & 1))
        self.audio_from = audio_from
        self.crf, self.preset = crf, preset
        self.warn = warn or (lambda m: None)
        self.frames_written = 0
        self._closed = False
        self._last_pts = None
        self._audio_in = None
        self.out = None
        if self.path.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
            raise OutputError(f"{self.path}: not a video file name; use one of "
                              f"{', '.join(VIDEO_OUTPUT_SUFFIXES)}")
        self.encoding = encoding or choose_encoding(self.path, codec, device=device, info=info,
                                                    size=self.out_size, crf=crf, preset=preset)
        self.tmp = atomic_temp_path(self.path)
        self._start()

    def _start(self) -> None:
        """Open the temporary file, its video stream and the audio (again, after a fallback)."""
        av, enc = self._av, self.encoding
        try:
            self.out = av.open(str(self.tmp), "w")
            vs = self.out.add_stream(enc.codec, rate=self.rate)
            vs.width, vs.height = self.out_size
            vs.pix_fmt = enc.pix_fmt
            vs.time_base = self.time_base
            vs.codec_context.time_base = self.time_base
            if enc.bit_rate is not None:
                vs.codec_context.bit_rate = enc.bit_rate
            if self.info and self.info.sample_aspect_ratio:
                vs.codec_context.sample_aspect_ratio = self.info.sample_aspect_ratio
            vs.options = dict(enc.options)
            if self.rotation:
                vs.set_display_rotation(self.rotation)
            self.vstream = vs
            self._setup_audio(self.audio_from)
            if self.live_audio:
                self.audio = LiveAudioTrack(self.out, live_audio_codec(self.out.format.name),
                                            self.origin)
        except MediaError:
            self.abort()
            raise
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self.abort()
            raise OutputError(f"{self.path}: cannot create the output ({_reason(e)})") from None

    # -- audio ------------------------------------------------------------------------------------
    def _setup_audio(self, audio_from):
        self.astream = None
        if not audio_from:
            return
        src = _open_input(audio_from)
        if not src.streams.audio:
            src.close()
            return
        ain = src.streams.audio[0]
        fmt = self.out.format.name.split(",")[0]
        allowed = _COPYABLE_AUDIO.get(fmt, set())
        name = ain.codec_context.name
        self.audio_copied = allowed is None or name in allowed
        if self.audio_copied:
            self.astream = self.out.add_stream_from_template(ain)
        else:
            target = "libopus" if fmt == "webm" else "aac"
            self.astream = self.out.add_stream(target, rate=ain.codec_context.sample_rate or 48000)
        self._audio_in = src
        self._ain = ain
        self._apackets = src.demux(ain)
        self._pending = None

    def _mux_audio_until(self, t: float | None) -> None:
        """Mux input audio up to time ``t`` seconds (all of it when None)."""
        if self._audio_in is None:
            return
        av = self._av
        tb = self._ain.time_base
        while True:
            pkt = self._pending
            if pkt is None:
                try:
                    pkt = next(self._apackets)
                except StopIteration:
                    self._finish_audio_input()
                    return
                except av.error.FFmpegError:      # a broken tail of audio: keep what we have
                    self._finish_audio_input()
                    return
            if pkt.dts is None and pkt.pts is None:     # the demuxer's final flush packet
                continue
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            if t is not None and float(ts * tb) > t:
                self._pending = pkt
                return
            self._pending = None
            if self.audio_copied:
                pkt.stream = self.astream
                self.out.mux(pkt)
            else:
                for frame in pkt.decode():
                    frame.pts = None
                    for p in self.astream.encode(frame):
                        self.out.mux(p)

    def _finish_audio_input(self):
        if self._audio_in is not None:
            if not self.audio_copied:
                for p in self.astream.encode(None):
                    self.out.mux(p)
            self._audio_in.close()
            self._audio_in = None

    def write_audio(self, chunk: AudioChunk) -> None:
        """Add a block of the live sound (``live_audio=True``; ignored once the file is
        finished or dropped)."""
        av = self._av
        with self._lock:
            if self.audio is None or self._closed or self.out is None:
                return
            try:
                for p in self.audio.encode(chunk):
                    self.out.mux(p)
            except (av.error.FFmpegError, OSError) as e:
                raise OutputError(f"{self.path}: writing the sound failed ({_reason(e)})") from None

    # -- video ------------------------------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        av = self._av
        t = time.monotonic() - self.origin if self.live else frame.timestamp_s
        img = stored(np.asarray(frame.to_numpy()), self.rotation)
        h, w = img.shape[:2]
        if (w, h) != self.out_size:
            img = np.pad(img, ((0, self.out_size[1] - h), (0, self.out_size[0] - w), (0, 0)),
                         mode="edge")
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        pts = int(round(t / self.time_base))
        with self._lock:
            if self._last_pts is not None and pts <= self._last_pts:
                pts = self._last_pts + 1          # timestamps must increase strictly
            vf.pts = pts
            vf.time_base = self.time_base
            try:
                self._mux_audio_until(t)
                for p in self.vstream.encode(vf):
                    self.out.mux(p)
            except (av.error.FFmpegError, OSError) as e:
                if self.frames_written == 0 and self.encoding.codec.endswith("_nvenc"):
                    self._fall_back(e)
                    return self.write(frame)
                raise OutputError(f"{self.path}: writing failed at frame {self.frames_written} "
                                  f"({_reason(e)})") from None
            self._last_pts = pts
            self.frames_written += 1

    def _fall_back(self, error: Exception) -> None:
        """Start the file again with libx264 (nothing was written yet)."""
        failed = self.encoding.codec
        self._drop_containers()
        options, bit_rate = encoder_settings("libx264", self.crf, self.preset)
        self.encoding = VideoEncoding("libx264", "yuv420p", options, bit_rate)
        self.warn(f"{self.path}: {failed} failed at the first frame ({_reason(error)}); "
                  "encoding with libx264 instead")
        self._start()

    def close(self) -> Path:
        """Flush, finish the file and move it into place. Returns the final path."""
        with self._lock:
            return self._close()

    def _close(self) -> Path:
        av = self._av
        if self._closed:
            return self.path
        try:
            for p in self.vstream.encode(None):
                self.out.mux(p)
            self._mux_audio_until(None)
            if self.audio is not None:
                for p in self.audio.flush():
                    self.out.mux(p)
            self.out.close()
        except (av.error.FFmpegError, OSError) as e:
            self.abort()
            raise OutputError(f"{self.path}: finishing the file failed ({_reason(e)})") from None
        except BaseException:
            self.abort()
            raise
        self._closed = True
        try:
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.abort()
            raise OutputError(f"{self.path}: could not move the finished file into place "
                              f"({e.strerror or e})") from None
        return self.path

    def _drop_containers(self) -> None:
        for c in (self.out, self._audio_in):
            if c is not None:
                try:
                    c.close()
                except Exception:   # noqa: BLE001 - closing a broken container; we are aborting
                    pass
        self.out = self._audio_in = None

    def abort(self) -> None:
        """Drop the partial output; the target path is left as it was."""
        with self._lock:
            self._closed = True
            self._drop_containers()
            try:
                self.tmp.unlink()
            except (OSError, AttributeError):
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


# =============================================================================================
# Still images
# =============================================================================================
class ImageFileSink:
    """A still image (the one frame of a photo's conversion), encoded by Pillow in the format
    its name says (``.jpg``/``.png``/``.webp``/``.bmp``/``.tif``; JPEG and WebP at quality 95)
    and written atomically by ``close()``. The pixels are upright, so no EXIF orientation is
    written (nor any other metadata)."""

    def __init__(self, path: str | os.PathLike, *, width: int, height: int):
        from PIL import Image
        self.path = Path(path)
        self.format = Image.registered_extensions().get(self.path.suffix.lower())
        if self.format is None or self.path.suffix.lower() not in PHOTO_SUFFIXES:
            raise OutputError(f"{self.path}: not an image file name; use one of "
                              f"{', '.join(sorted(PHOTO_SUFFIXES))}")
        folder = self.path.parent if str(self.path.parent) else Path(".")
        if not folder.is_dir():
            raise OutputError(f"{self.path}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{self.path}: cannot write in {folder} (permission denied)")
        self.size = (width, height)
        self.image: np.ndarray | None = None
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        self.image = np.ascontiguousarray(frame.to_numpy())
        self.frames_written += 1

    def close(self) -> Path:
        from PIL import Image
        if self.image is None:
            raise OutputError(f"{self.path}: no image was produced")
        buf = io.BytesIO()
        options = {"quality": 95} if self.format in ("JPEG", "WEBP") else {}
        Image.fromarray(self.image).save(buf, format=self.format, **options)
        tmp = atomic_temp_path(self.path)
        try:
            with open(tmp, "wb") as f:
                f.write(buf.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.path}: writing the image failed ({e.strerror or e})") from None
        return self.path

    def abort(self) -> None:
        self.image = None


# =============================================================================================
# Live streams
# =============================================================================================
STREAM_SCHEMES = ("udp", "tcp")


def stream_url_problem(url: str) -> str | None:
    """What is wrong with a ``--stream`` URL on its face (scheme, host, port), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return f"not a valid URL ({e})"
    if parts.scheme not in STREAM_SCHEMES:
        return (f"unsupported protocol {parts.scheme or 'none'!r}; use "
                + " or ".join(f"{s}://HOST:PORT" for s in STREAM_SCHEMES)
                + " (to write a file, use --record)")
    if not parts.hostname:
        return f"no host; use {parts.scheme}://HOST:PORT"
    if not port:
        return f"no port; use {parts.scheme}://{parts.hostname}:PORT"
    return None


class StreamSink:
    """A live MPEG-TS stream (``udp://HOST:PORT`` or ``tcp://HOST:PORT``) encoded with
    low-latency x264; each frame is stamped with the time it is sent (see the module docstring).
    ``audio=True`` adds the live sound (AAC), fed by :meth:`write_audio`.

    The URL is checked and the connection opened here (an unknown host or a refused TCP port is
    an OutputError before the run). If sending fails later (the receiver went away), the stream
    is dropped: ``warn`` says so once, ``failed`` holds the reason, further frames are ignored,
    and the other outputs go on."""

    def __init__(self, url: str, *, width: int, height: int, fps: float = 30.0, crf: int = 23,
                 warn: Warn | None = None, audio: bool = False):
        import av
        self._av = av
        self.url = url
        self.name = f"--stream {url}"
        self.warn = warn or (lambda m: None)
        self.failed: str | None = None
        self.frames_written = 0
        self.origin = time.monotonic()
        self.audio: LiveAudioTrack | None = None
        self._lock = threading.RLock()
        problem = stream_url_problem(url)
        if problem:
            raise OutputError(f"{url}: {problem}")
        host = urlsplit(url).hostname
        try:
            socket.getaddrinfo(host, None)
        except OSError as e:
            raise OutputError(f"{url}: unknown host {host!r} ({e.strerror or e})") from None
        self.size = (width + (width & 1), height + (height & 1))
        try:
            self.out = av.open(url, "w", format="mpegts")
            vs = self.out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vs.width, vs.height = self.size
            vs.pix_fmt = "yuv420p"
            vs.time_base = Fraction(1, 90000)
            vs.codec_context.time_base = Fraction(1, 90000)
            vs.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": str(crf)}
            self.vstream = vs
            if audio:
                self.audio = LiveAudioTrack(self.out, live_audio_codec("mpegts"), self.origin)
            self.out.start_encoding()             # connects now: a refusal is seen here
        except (av.error.FFmpegError, OSError) as e:
            self._drop()
            raise OutputError(f"{url}: cannot open the stream ({_reason(e)})") from None
        self._last = None

    def write(self, frame: Frame) -> None:
        if self.failed is not None:
            return
        av = self._av
        t = time.monotonic() - self.origin
        img = np.asarray(frame.to_numpy())
        h, w = img.shape[:2]
        if (w, h) != self.size:
            img = np.pad(img, ((0, self.size[1] - h), (0, self.size[0] - w), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        with self._lock:
            if self.out is None:
                return
            pts = int(round(t * 90000))
            if self._last is not None and pts <= self._last:
                pts = self._last + 1
            self._last = pts
            vf.pts = pts
            try:
                for p in self.vstream.encode(vf):
                    self.out.mux(p)
            except (av.error.FFmpegError, OSError) as e:
                self._lost(e)
                return
            self.frames_written += 1

    def write_audio(self, chunk: AudioChunk) -> None:
        """Send a block of the live sound (``audio=True``; ignored once the stream is gone)."""
        with self._lock:
            if self.audio is None or self.out is None:
                return
            try:
                for p in self.audio.encode(chunk):
                    self.out.mux(p)
            except (self._av.error.FFmpegError, OSError) as e:
                self._lost(e)

    def _lost(self, e: Exception) -> None:
        self.failed = f"sending failed after {self.frames_written} frames ({_reason(e)})"
        self.warn(f"--stream {self.url}: {self.failed}; the stream is stopped, the other "
                  "outputs go on")
        self._drop()

    def _drop(self) -> None:
        out, self.out = getattr(self, "out", None), None
        if out is not None:
            try:
                out.close()
            except Exception:   # noqa: BLE001 - the connection is already gone
                pass

    def close(self) -> None:
        with self._lock:
            if self.out is None:
                return
            try:
                for p in self.vstream.encode(None):
                    self.out.mux(p)
                if self.audio is not None:
                    for p in self.audio.flush():
                        self.out.mux(p)
            except (self._av.error.FFmpegError, OSError):
                pass                                  # the receiver left at the very end
            finally:
                self._drop()

    abort = close


class VirtualCameraSink:
    """Send frames to a virtual camera (v4l2loopback on Linux, OBS Virtual Camera on Windows and
    macOS) through pyvirtualcam, so video-call apps can pick it as a webcam."""

    INSTALL_HINT = ("install the extra `pip install -e '.[vcam]'` and a virtual camera backend: "
                    "on Linux `sudo modprobe v4l2loopback devices=1 exclusive_caps=1`, on Windows "
                    "and macOS OBS Studio (its Virtual Camera)")

    def __init__(self, *, width: int, height: int, fps: float = 30.0):
        try:
            import pyvirtualcam
        except ImportError:
            raise MediaError(f"virtual camera unavailable: pyvirtualcam is not installed; "
                             f"{self.INSTALL_HINT}") from None
        try:
            self.cam = pyvirtualcam.Camera(width=width, height=height, fps=fps,
                                           fmt=pyvirtualcam.PixelFormat.RGB)
        except Exception as e:  # noqa: BLE001 - pyvirtualcam raises RuntimeError and others
            raise MediaError(f"virtual camera unavailable ({_reason(e)}); {self.INSTALL_HINT}") from None
        self.device = self.cam.device
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        self.cam.send(np.ascontiguousarray(frame.to_numpy()))
        self.frames_written += 1

    def close(self) -> None:
        self.cam.close()

    abort = close
