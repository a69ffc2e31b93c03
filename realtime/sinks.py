"""Frame sinks: a video file (PyAV, written atomically, audio copied), a live MPEG-TS stream,
a virtual camera (pyvirtualcam) and a preview window (OpenCV).

Every sink takes upright uint8 RGB :class:`realtime.types.Frame` objects through ``write`` and
is finished with ``close()`` (success) or ``abort()`` (error / Ctrl-C: nothing is left behind).
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from training.fileio import temp_beside

from .sources import MediaError, VideoInfo, _open_input, _reason, stored
from .types import Frame

# Audio codecs each container family takes as they are (copied without re-encoding).
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"},
    "matroska": None,           # None: anything
    "webm": {"opus", "vorbis"},
    "mpegts": {"aac", "mp3", "ac3", "eac3", "opus"},
}


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


def encoder_opens(codec: str, width: int = 256, height: int = 256) -> bool:
    """True when PyAV's FFmpeg has ``codec`` and it really opens here (NVENC needs hardware)."""
    import av
    try:
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.open()
        return True
    except Exception:     # noqa: BLE001 - any failure means "not usable here"
        return False


def pick_video_codec(requested: str | None, device: str = "cpu") -> str:
    """The encoder to use: the requested one, else NVENC when a CUDA device is in use and it
    opens, else libx264."""
    if requested:
        if not encoder_opens(requested):
            raise OutputError(f"the video encoder {requested!r} is not available or does not open "
                              "on this machine (try libx264)")
        return requested
    if device.startswith("cuda") and encoder_opens("h264_nvenc"):
        return "h264_nvenc"
    return "libx264"


class VideoFileSink:
    """Encode frames to ``path`` atomically, keeping the input's timestamps, rotation, pixel
    aspect and audio.

    Frames are written with their own timestamps (variable frame rate stays variable); audio
    packets of ``audio_from`` are interleaved by time and copied without re-encoding where the
    container allows, else re-encoded (AAC, or Opus for WebM). Odd frame sizes are padded to
    even by repeating the last row/column (4:2:0 video needs even sizes). ``close()`` renames the
    finished temporary file onto ``path``; ``abort()`` deletes it.
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, info: VideoInfo | None = None,
                 audio_from: str | None = None, codec: str = "libx264", crf: int = 18,
                 preset: str = "veryfast", fps: float | None = None):
        import av
        self._av = av
        self.path = Path(path)
        self.info = info
        self.rotation = info.rotation if info else 0
        self.tmp = atomic_temp_path(self.path)
        self.time_base = info.time_base if info else Fraction(1, 90000)
        rate = (info.average_rate if info and info.average_rate else None) or \
            Fraction(fps or 30).limit_denominator(1001)
        self.frames_written = 0
        self._closed = False
        self._last_pts = None
        self._audio_in = None
        try:
            self.out = av.open(str(self.tmp), "w")
            w, h = (height, width) if self.rotation in (90, 270) else (width, height)  # stored size
            self.out_size = (w + (w & 1), h + (h & 1))
            vs = self.out.add_stream(codec, rate=rate)
            vs.width, vs.height = self.out_size
            vs.pix_fmt = "yuv420p"
            vs.time_base = self.time_base
            vs.codec_context.time_base = self.time_base
            if info and info.sample_aspect_ratio:
                vs.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
            if codec in ("libx264", "libx265"):
                vs.options = {"crf": str(crf), "preset": preset}
            elif "nvenc" in codec:
                vs.options = {"cq": str(crf), "preset": "p4"}
            if self.rotation:
                vs.set_display_rotation(self.rotation)
            self.vstream = vs
            self._setup_audio(audio_from)
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
            self._resampler = None
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
            if pkt.dts is None and pkt.pts is None:
                if pkt.size == 0:          # the demuxer's final flush packet
                    continue
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

    # -- video ------------------------------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        av = self._av
        img = stored(np.asarray(frame.to_numpy()), self.rotation)
        h, w = img.shape[:2]
        if (w, h) != self.out_size:
            img = np.pad(img, ((0, self.out_size[1] - h), (0, self.out_size[0] - w), (0, 0)),
                         mode="edge")
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        pts = int(round(frame.timestamp_s / self.time_base))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1          # timestamps must increase strictly
        self._last_pts = pts
        vf.pts = pts
        vf.time_base = self.time_base
        try:
            self._mux_audio_until(frame.timestamp_s)
            for p in self.vstream.encode(vf):
                self.out.mux(p)
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"{self.path}: writing failed at frame {self.frames_written} "
                              f"({_reason(e)})") from None
        self.frames_written += 1

    def close(self) -> Path:
        """Flush, finish the file and move it into place. Returns the final path."""
        av = self._av
        if self._closed:
            return self.path
        try:
            for p in self.vstream.encode(None):
                self.out.mux(p)
            self._mux_audio_until(None)
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

    def abort(self) -> None:
        """Drop the partial output; the target path is left as it was."""
        self._closed = True
        for c in (getattr(self, "out", None), self._audio_in):
            if c is not None:
                try:
                    c.close()
                except Exception:   # noqa: BLE001 - closing a broken container; we are aborting
                    pass
        self._audio_in = None
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


class StreamSink:
    """A live MPEG-TS stream (e.g. ``udp://127.0.0.1:5000``) encoded with low-latency x264."""

    def __init__(self, url: str, *, width: int, height: int, fps: float = 30.0, crf: int = 23):
        import av
        self._av = av
        self.url = url
        try:
            self.out = av.open(url, "w", format="mpegts")
        except av.error.FFmpegError as e:
            raise OutputError(f"{url}: cannot open the stream ({_reason(e)})") from None
        self.size = (width + (width & 1), height + (height & 1))
        vs = self.out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height = self.size
        vs.pix_fmt = "yuv420p"
        vs.time_base = Fraction(1, 90000)
        vs.codec_context.time_base = Fraction(1, 90000)
        vs.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": str(crf)}
        self.vstream = vs
        self._t0 = None
        self._last = None
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        av = self._av
        img = np.asarray(frame.to_numpy())
        h, w = img.shape[:2]
        if (w, h) != self.size:
            img = np.pad(img, ((0, self.size[1] - h), (0, self.size[0] - w), (0, 0)), mode="edge")
        if self._t0 is None:
            self._t0 = frame.timestamp_s
        pts = int(round((frame.timestamp_s - self._t0) * 90000))
        if self._last is not None and pts <= self._last:
            pts = self._last + 1
        self._last = pts
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        vf.pts = pts
        for p in self.vstream.encode(vf):
            self.out.mux(p)
        self.frames_written += 1

    def close(self) -> None:
        try:
            for p in self.vstream.encode(None):
                self.out.mux(p)
        finally:
            self.out.close()

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
