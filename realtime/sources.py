"""Frame sources: video files (PyAV), a file looped as if it were a camera, and real cameras.

Every source yields :class:`realtime.types.Frame` objects (uint8 RGB H×W×3 on the host) with a
presentation timestamp in seconds and a running index. Video files are turned upright (their
rotation metadata applied) so faces reach the tracker the right way up; the file sink turns
them back and writes the same rotation metadata, so the output plays like the input.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from .types import Frame


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
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).splitlines()[0] if msg else type(e).__name__


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
        rotation = _rotation(container, v)
        return VideoInfo(
            path=str(path), width=cc.width, height=cc.height, time_base=Fraction(tb),
            average_rate=Fraction(v.average_rate) if v.average_rate else None,
            start_time_s=start, duration_s=duration, frames=v.frames or None,
            rotation=rotation if rotation in (0, 90, 180, 270) else 0,
            sample_aspect_ratio=Fraction(v.sample_aspect_ratio) if v.sample_aspect_ratio else None,
            codec=cc.name, audio_codec=audio)
    finally:
        container.close()


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
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 0):
        self.path = str(path)
        self.info = probe(path)
        self.threads = threads
        self.frames_read = 0

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the upright frames."""
        return self.info.display_size

    @property
    def fps(self) -> float:
        return self.info.fps

    def __iter__(self) -> Iterator[Frame]:
        av = _av()
        info = self.info
        container = _open_input(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if self.threads:
                stream.codec_context.thread_count = self.threads
            period = 1.0 / info.fps
            last_t = None
            index = 0
            try:
                for vf in container.decode(stream):
                    if vf.pts is not None:
                        t = float(vf.pts * info.time_base)
                    else:
                        t = (last_t + period) if last_t is not None else info.start_time_s
                    last_t = t
                    img = upright(vf.to_ndarray(format="rgb24"), info.rotation)
                    yield Frame(img, t, index)
                    index += 1
                    self.frames_read = index
            except av.error.FFmpegError as e:
                raise MediaError(f"{self.path}: the video is corrupt or truncated after frame "
                                 f"{index} (t={last_t or 0:.2f}s): {_reason(e)}") from None
            if index == 0:
                raise MediaError(f"{self.path}: no video frame could be decoded "
                                 "(truncated or corrupt file?)")
        finally:
            container.close()


class LoopingFileSource:
    """A video file played as if it were a camera: paced at its frame rate, looped, with
    timestamps from a monotonic clock (what a camera gives). ``max_frames`` bounds a test run."""

    def __init__(self, path: str | os.PathLike, *, loop: bool = True, paced: bool = True,
                 max_frames: int | None = None):
        self.source = VideoFileSource(path)
        self.info = self.source.info
        self.loop, self.paced, self.max_frames = loop, paced, max_frames
        self.stopped = False
        self.last_wait_s = 0.0       # pacing sleep before the last frame (not decode time)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.info.display_size

    @property
    def fps(self) -> float:
        return self.info.fps

    def stop(self) -> None:
        self.stopped = True

    def __iter__(self) -> Iterator[Frame]:
        t0 = time.monotonic()
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
