"""Frame sources: video files (PyAV), still photos, a file looped as if it were a camera, and
real cameras.

Every source yields :class:`realtime.types.Frame` objects (uint8 RGB H×W×3 on the host) with a
presentation timestamp in seconds and a running index. Video files are turned upright (their
rotation metadata applied) so faces reach the tracker the right way up; the file sink turns
them back and writes the same rotation metadata, so the output plays like the input. Photos are
turned upright by their EXIF orientation.

A damaged file is never converted in part without a word. Reading fails (MediaError) when:

* an MP4/MOV/AVI file ends inside one of its top-level boxes (RIFF chunks): it was cut short,
  even one with its index first (``movflags +faststart``), which FFmpeg opens and plays to the
  cut without an error — found by :func:`probe`, before anything is written;
* FFmpeg flags a packet as corrupt (a packet cut off by the end of the file) or a packet does
  not decode;
* after the last packet, a stream holds fewer packets than the container's index lists, or ends
  earlier than the duration (or frame count) its container declares for it (Matroska/WebM
  statistics tags). Durations estimated by FFmpeg (from the bit rate, or the MP4 header's, which
  variable-frame-rate files often get wrong) are never used, so valid files are not refused.
"""
from __future__ import annotations

import math
import os
import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from training.images import IMAGE_EXTENSIONS

from .types import Frame

PHOTO_SUFFIXES = frozenset(IMAGE_EXTENSIONS)     # still images: read by Pillow, EXIF applied


def is_photo(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in PHOTO_SUFFIXES


class MediaError(Exception):
    """A media file or device that cannot be used; the message is one line meant for the user."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read from its container."""
    path: str
    width: int                      # stored (coded) size, before rotation
    height: int
    time_base: Fraction
    average_rate: Fraction | None   # frames per second (average; variable-rate files vary)
    start_time_s: float
    duration_s: float | None
    frames: int | None              # from the container, when it says
    rotation: int                   # counter-clockwise degrees to display it upright (0/90/180/270)
    sample_aspect_ratio: Fraction | None
    codec: str
    audio_codec: str | None
    pix_fmt: str | None = None      # the decoder's pixel format, e.g. yuv422p10le
    profile: str | None = None      # the codec profile, e.g. "HQ" (ProRes), "DNXHR HQX"
    container: str = ""             # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    declared: tuple["StreamDeclared", ...] = ()   # what the container says each stream holds

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) of the upright frames this source yields."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)

    @property
    def fps(self) -> float:
        return float(self.average_rate) if self.average_rate else 30.0


@dataclass(frozen=True)
class StreamDeclared:
    """What the container says one stream holds, to check a file was read to its end: the
    packets its index lists, and (Matroska statistics tags) its end time and frame count."""
    index: int
    kind: str
    indexed_packets: int = 0
    end_s: float | None = None
    frames: int | None = None


def _av():
    import av
    return av


def _open_input(path: str | os.PathLike):
    av = _av()
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes)")
    try:
        return av.open(str(path), "r")
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: not a readable video file ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    """FFmpeg's own words for an error (PyAV's ``strerror``), on one line."""
    from training.messages import one_line
    return one_line(str(getattr(e, "strerror", None) or "")) or one_line(e)


def _rotation(container, stream) -> int:
    """Rotation from the first decoded frame's display matrix (PyAV's VideoFrame.rotation)."""
    av = _av()
    try:
        for frame in container.decode(stream):
            return int(round(getattr(frame, "rotation", 0) or 0)) % 360
    except av.error.FFmpegError:
        return 0
    return 0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video file's properties; MediaError for a file that is missing, empty, not media,
    or has no video stream."""
    container = _open_input(path)
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise MediaError(f"{path}: has no video stream (it holds {', '.join(kinds)})")
        v = container.streams.video[0]
        cc = v.codec_context
        if not cc.width or not cc.height:
            raise MediaError(f"{path}: the video stream has no frame size (corrupt header?)")
        tb = v.time_base or Fraction(1, 90000)
        start = float(v.start_time * tb) if v.start_time is not None else 0.0
        if v.duration is not None:
            duration = float(v.duration * tb)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = None
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        fmt = container.format.name
        cut = (_mp4_cut_short(Path(path)) if "mp4" in fmt or "mov" in fmt else
               _riff_cut_short(Path(path)) if fmt == "avi" else None)
        if cut:
            raise MediaError(f"{path}: the file is truncated ({cut})")
        declared = _declared(container)
        rotation = _rotation(container, v)
        return VideoInfo(
            path=str(path), width=cc.width, height=cc.height, time_base=Fraction(tb),
            average_rate=Fraction(v.average_rate) if v.average_rate else None,
            start_time_s=start, duration_s=duration, frames=v.frames or None,
            rotation=rotation if rotation in (0, 90, 180, 270) else 0,
            sample_aspect_ratio=Fraction(v.sample_aspect_ratio) if v.sample_aspect_ratio else None,
            codec=cc.name, audio_codec=audio,
            pix_fmt=cc.format.name if cc.format is not None else None,
            profile=cc.profile or None, container=container.format.name, declared=declared)
    finally:
        container.close()


def _tag(metadata, name: str) -> str | None:
    """A Matroska statistics tag (``DURATION``, ``NUMBER_OF_FRAMES``, maybe ``-eng``)."""
    for key, value in (metadata or {}).items():
        if key.upper() == name or key.upper().startswith(name + "-"):
            return value
    return None


def _clock(text: str | None) -> float | None:
    """``HH:MM:SS.fffffffff`` in seconds."""
    try:
        h, m, sec = str(text).split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except (TypeError, ValueError):
        return None


def _declared(container) -> tuple[StreamDeclared, ...]:
    """What the container says each stream holds (see :class:`StreamDeclared`)."""
    out = []
    for s in container.streams:
        frames = _tag(s.metadata, "NUMBER_OF_FRAMES")
        out.append(StreamDeclared(s.index, s.type, sum(1 for e in s.index_entries or () if e.size > 0),
                                  _clock(_tag(s.metadata, "DURATION")),
                                  int(frames) if frames and frames.isdigit() else None))
    return tuple(out)


# Top-level boxes of an MP4/MOV file; walking stops at anything else (e.g. a phone's trailer).
_MP4_BOXES = {b"ftyp", b"free", b"skip", b"wide", b"mdat", b"moov", b"moof", b"mfra", b"sidx",
              b"styp", b"uuid", b"meta", b"pdin", b"udta", b"prft", b"emsg"}


def _mp4_cut_short(path: Path) -> str | None:
    """For an MP4/MOV file: which top-level box runs past the end of the file, if one does
    (the file was cut short; FFmpeg may still open it when the index came first)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            n, kind = struct.unpack(">I4s", head[:8])
            if kind not in _MP4_BOXES:
                return None
            if n == 1 and len(head) == 16:
                n = struct.unpack(">Q", head[8:])[0]
            elif n == 0:                   # the box runs to the end of the file
                return None
            if n < 8:
                return None
            if pos + n > size:
                return (f"the file ends inside its '{kind.decode()}' box: "
                        f"{size:,} of {pos + n:,} bytes")
            pos += n
    return None


def _riff_cut_short(path: Path) -> str | None:
    """For an AVI file: which top-level RIFF chunk runs past the end of the file, if one does."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + 12 <= size:
            f.seek(pos)
            kind, n = struct.unpack("<4sI", f.read(8))
            if kind != b"RIFF":
                return None
            end = pos + 8 + n + (n & 1)
            if end > size:
                return f"the file ends inside its RIFF chunk: {size:,} of {end:,} bytes"
            pos = end
    return None


class _Tally:
    """Packets read and where each stream ends, against what the container declared."""

    def __init__(self, info: VideoInfo):
        self.declared = {d.index: d for d in info.declared}
        self.packets: dict[int, int] = {}
        self.end_s: dict[int, float] = {}
        self.tolerance_s = 0.1 + 2.0 / info.fps          # a declared end may be a little off

    def add(self, packet) -> None:
        if packet.size <= 0:
            return
        i = packet.stream.index
        self.packets[i] = self.packets.get(i, 0) + 1
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is not None and packet.time_base is not None:
            end = float((ts + max(packet.duration or 0, 0)) * packet.time_base)
            self.end_s[i] = max(self.end_s.get(i, end), end)

    def shortfall(self) -> str | None:
        """Why the streams look cut short, or None."""
        for i, d in self.declared.items():
            n = self.packets.get(i, 0)
            if n < d.indexed_packets:
                return f"the {d.kind} stream has {n} of the {d.indexed_packets} packets its index lists"
            if d.frames is not None and n < d.frames:
                return f"the {d.kind} stream has {n} of its declared {d.frames} frames"
            end = self.end_s.get(i)
            if d.end_s is not None and end is not None and end < d.end_s - self.tolerance_s:
                return f"the {d.kind} stream ends at {end:.2f} s, its container declares {d.end_s:.2f} s"
        return None


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a counter-clockwise display rotation to stored pixels."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def stored(image: np.ndarray, rotation: int) -> np.ndarray:
    """Undo :func:`upright`: back to the file's stored orientation."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, -k)) if k else image


class VideoFileSource:
    """Decode a video file into upright RGB frames with their presentation timestamps.

    Frames without a timestamp get the previous one plus one frame period. A file that breaks
    off mid-stream raises MediaError naming the frame where it stopped (nothing is silently cut).

    ``start_s``/``end_s`` read a time window ``start_s <= t < end_s`` (a cluster segment with its
    warm-up): the reader seeks to the keyframe at or before ``start_s`` (further back when the
    container's seek lands too late), so the pixels are those of a whole-file decode. Frames
    without timestamps cannot be placed in a window (MediaError: convert the file whole).
    ``stop()`` ends the iteration at the next frame.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 0, start_s: float | None = None,
                 end_s: float | None = None, info: VideoInfo | None = None):
        self.path = str(path)
        self.info = info or probe(path)
        self.threads = threads
        self.start_s, self.end_s = start_s, end_s
        self.frames_read = 0
        self.stopped = False

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the upright frames."""
        return self.info.display_size

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def windowed(self) -> bool:
        return self.start_s is not None or self.end_s is not None

    def stop(self) -> None:
        self.stopped = True

    def __iter__(self) -> Iterator[Frame]:
        back = 0.0                      # how much earlier than start_s to seek
        while True:
            landed = yield from self._read(None if self.start_s is None else self.start_s - back)
            if landed:
                return
            back = max(1.0, 2 * back)   # the seek landed after start_s: go further back

    def _read(self, aim: float | None):
        """Yield the frames (from a seek to ``aim`` when it is after the file's start). Returns
        False, having yielded nothing, when that seek landed after ``start_s``."""
        av = _av()
        info = self.info
        container = _open_input(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if self.threads:
                stream.codec_context.thread_count = self.threads
            seeked = aim is not None and math.isfinite(aim) and aim > info.start_time_s
            if seeked:
                container.seek(int(math.floor(aim / info.time_base)), stream=stream,
                               backward=True, any_frame=False)
            period = 1.0 / info.fps
            tally = _Tally(info)
            last_t = None
            index = 0
            first, ended_early = True, False
            try:
                for packet in container.demux():      # every stream: their packets are counted
                    tally.add(packet)
                    if packet.is_corrupt:
                        raise MediaError(self._broken(index, last_t, "a packet is cut off or corrupt"))
                    if packet.stream.index != stream.index:
                        continue
                    for vf in packet.decode():
                        if vf.pts is not None:
                            t = float(vf.pts * info.time_base)
                        elif self.windowed:
                            raise MediaError(f"{self.path}: frames without timestamps cannot be "
                                             "read from a time window (convert the file whole)")
                        else:
                            t = (last_t + period) if last_t is not None else info.start_time_s
                        if first and seeked and t > self.start_s:
                            return False
                        first = False
                        last_t = t
                        if self.start_s is not None and t < self.start_s:
                            continue
                        if (self.end_s is not None and t >= self.end_s) or self.stopped:
                            ended_early = True
                            break
                        img = upright(vf.to_ndarray(format="rgb24"), info.rotation)
                        yield Frame(img, t, index)
                        index += 1
                        self.frames_read = index
                    if ended_early:
                        break
            except av.error.FFmpegError as e:
                raise MediaError(self._broken(index, last_t, _reason(e))) from None
            if index == 0 and not self.stopped:
                where = " in the window asked for" if self.windowed else ""
                raise MediaError(f"{self.path}: no video frame could be decoded{where} "
                                 "(truncated or corrupt file?)")
            short = tally.shortfall() if not (seeked or ended_early) else None
            if short:
                raise MediaError(f"{self.path}: the file is truncated ({short})")
            return True
        finally:
            container.close()

    def _broken(self, index: int, last_t: float | None, why: str) -> str:
        return (f"{self.path}: the video is corrupt or truncated after frame {index} "
                f"(t={last_t or 0:.2f}s): {why}")


class ImageSource:
    """A still photo as a one-frame source, upright (EXIF orientation applied), RGB."""

    fps = 1.0
    info = None                        # no timing, audio or rotation to keep

    def __init__(self, path: str | os.PathLike):
        from training.images import ImageReadError, read_image_rgb
        from training.messages import one_line
        self.path = str(path)
        p = Path(path)
        if p.is_file() and p.stat().st_size == 0:
            raise MediaError(f"{path}: the file is empty (0 bytes)")
        try:
            self.image = read_image_rgb(path)
        except Exception as e:  # noqa: BLE001 - ImageReadError, Pillow's decompression-bomb refusal
            why = one_line(e)
            if isinstance(e, ImageReadError) and "): " in why:
                why = why.split("): ", 1)[1]          # Pillow's own words, after our reader's
            why = why.replace(f" '{path}'", "").replace(str(path), "the file")
            raise MediaError(f"{path}: not a readable image ({why})") from None
        self.frame_size = (self.image.shape[1], self.image.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(self.image, 0.0, 0)


class LoopingFileSource:
    """A video file played as if it were a camera: paced at its frame rate, looped, with
    timestamps from a monotonic clock (what a camera gives). ``max_frames`` bounds a test run.

    Frame ``i`` of pass ``k`` is due at ``t0 + k * loop_period_s + i / fps``: ``t0`` (the
    monotonic time the first frame was due; None until iteration starts) and ``loop_period_s``
    let the file's own sound be played in step (:class:`realtime.audio_io.FileSoundTrack`)."""

    def __init__(self, path: str | os.PathLike, *, loop: bool = True, paced: bool = True,
                 max_frames: int | None = None):
        self.source = VideoFileSource(path)
        self.info = self.source.info
        self.loop, self.paced, self.max_frames = loop, paced, max_frames
        self.stopped = False
        self.last_wait_s = 0.0       # pacing sleep before the last frame (not decode time)
        self.t0: float | None = None
        self._frames_per_pass: int | None = None

    @property
    def loop_period_s(self) -> float:
        """How long one pass lasts when paced: the file's frame count over its frame rate."""
        if self._frames_per_pass is None:
            container = _open_input(self.source.path)
            try:
                stream = container.streams.video[0]
                self._frames_per_pass = max(1, sum(1 for p in container.demux(stream) if p.size > 0))
            finally:
                container.close()
        return self._frames_per_pass / self.fps

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.info.display_size

    @property
    def fps(self) -> float:
        return self.info.fps

    def stop(self) -> None:
        self.stopped = True

    def __iter__(self) -> Iterator[Frame]:
        t0 = self.t0 = time.monotonic()
        period = 1.0 / self.info.fps
        index = 0
        while not self.stopped:
            for f in self.source:
                if self.stopped or (self.max_frames is not None and index >= self.max_frames):
                    return
                due = t0 + index * period
                self.last_wait_s = 0.0
                if self.paced:
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                        self.last_wait_s = delay
                yield Frame(f.image, time.monotonic(), index)
                index += 1
            if not self.loop:
                return


class CameraSource:
    """A webcam through OpenCV (bundled with MediaPipe): ``CameraSource(0)``.

    Timestamps come from a monotonic clock taken right after each grab, so end-to-end latency
    is measured from capture. The first frame is grabbed when the source opens (a camera that
    opens but delivers nothing fails here, and the frame size is known before the pipeline is
    built); it is the first frame yielded. A camera that stops delivering raises MediaError.
    """

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None):
        import cv2
        self._cv2 = cv2
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            raise MediaError(f"camera {index} could not be opened (is it connected, and not in "
                             "use by another program?); to test without one, use --input FILE")
        for prop, val in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                          (cv2.CAP_PROP_FPS, fps)):
            if val:
                self.cap.set(prop, val)
        rate = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = rate if rate and math.isfinite(rate) and rate > 0 else 30.0
        self.index = index
        self.stopped = False
        self._first = self._grab(0)
        self.frame_size = (self._first.width, self._first.height)

    def _grab(self, n: int) -> Frame:
        ok, bgr = self.cap.read()
        t = time.monotonic()
        if not ok:
            raise MediaError(f"camera {self.index} stopped delivering frames (unplugged?)")
        return Frame.from_array(self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB), t, n)

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.cap.release()

    def __iter__(self) -> Iterator[Frame]:
        try:
            if self._first is not None and not self.stopped:
                first, self._first = self._first, None
                yield first
            n = 1
            while not self.stopped:
                yield self._grab(n)
                n += 1
        finally:
            self.cap.release()
