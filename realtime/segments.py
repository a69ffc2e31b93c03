"""Long videos in pieces: plan time segments, convert one segment, join the pieces losslessly.

A two-hour recording converts faster on many workers when it is cut into segments that run in
parallel (``python -m realtime.convert … --ray --segment-seconds 60``). Three steps, none of them
tied to Ray (:mod:`realtime.cluster` schedules them):

1. :func:`plan_segments` cuts ``[start, end)`` of a file into ``n`` half-open time windows of
   about ``segment_seconds`` each; the first is open to the left and the last to the right, so
   every frame belongs to exactly one segment whatever the container says about its duration.
2. :func:`convert_segment` runs the ordinary pipeline (built by :mod:`realtime.compose`) on one
   window. Face tracking and One-Euro smoothing are stateful, so each segment starts
   ``warmup_s`` earlier: :class:`SegmentSource` seeks to the keyframe before the warm-up, decodes
   from there, and yields the warm-up frames too; they are tracked (so the tracker and smoother
   are settled as in one long run) and :class:`SkipWarmup` drops them before the encoder. Each
   segment is written with the very sink a single-machine run uses (same codec, quality,
   timestamps, rotation, pixel aspect); the first segment also carries the input's whole audio
   track, copied (or re-encoded) by that sink exactly as a single run would.
3. :func:`join_segments` remuxes the segments' packets, in order, into one file — no re-encode,
   every timestamp kept — with the audio taken from the first segment, written to a temporary
   file and renamed onto the output at the end (atomic).

The joined file has the same frames and timestamps as a single-machine conversion, the same
audio, and pixels within encoder noise (each segment starts with a keyframe).
"""
from __future__ import annotations

import heapq
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from training.fileio import temp_beside

from .compose import FileOutput, PipelineConfig, build_pipeline, make_sinks, pipeline_device
from .pipeline import output_size
from .sinks import OutputError
from .sources import MediaError, VideoFileSource, VideoInfo, _open_input, _reason, probe
from .types import Frame

__all__ = ["DEFAULT_WARMUP_S", "Segment", "SegmentResult", "plan_segments", "SegmentSource",
           "SkipWarmup", "convert_segment", "join_segments"]

# What the face stage remembers reaches back about a second: the One-Euro filter's jitter
# estimate looks at the last 1 s, its time constant while still is 1 / (2 pi 0.5 Hz) = 0.32 s,
# the detector re-runs every 10 frames. Two seconds of warm-up cover all of it (on our test
# clips the crop's step at a boundary already lies within the range of steps inside a segment).
DEFAULT_WARMUP_S = 2.0


@dataclass(frozen=True)
class Segment:
    """Frames with ``start_s <= t < end_s`` (seconds, the file's own timestamps) of one file,
    decoded from ``warmup_s`` earlier. The first segment starts at -inf, the last ends at +inf."""

    index: int
    count: int
    start_s: float
    end_s: float
    warmup_s: float = DEFAULT_WARMUP_S

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"segment index {self.index} outside 0..{self.count - 1}")
        if not self.start_s < self.end_s:
            raise ValueError(f"segment {self.index} is empty: {self.start_s} >= {self.end_s}")
        if not (math.isfinite(self.warmup_s) and self.warmup_s >= 0):
            raise ValueError(f"warm-up must be >= 0 s, got {self.warmup_s}")

    @property
    def first(self) -> bool:
        return self.index == 0

    def written(self, t: float) -> bool:
        """True for a frame at ``t`` that this segment writes (not warm-up, not past its end)."""
        return self.start_s <= t < self.end_s

    @property
    def label(self) -> str:
        return f"{self.index + 1}/{self.count}"


def plan_segments(info: VideoInfo, segment_seconds: float | None,
                  warmup_s: float = DEFAULT_WARMUP_S) -> list[Segment]:
    """Cut ``info``'s file into segments of about ``segment_seconds`` (None or 0: one segment,
    the whole file). A file shorter than 1.5 segments, or of unknown duration, stays whole.
    Boundaries sit half a frame period before the even split, so they fall between frames."""
    whole = [Segment(0, 1, -math.inf, math.inf, 0.0)]
    if not segment_seconds or not info.duration_s:
        return whole
    if not (math.isfinite(segment_seconds) and segment_seconds > 0):
        raise ValueError(f"--segment-seconds must be > 0, got {segment_seconds}")
    n = int(round(info.duration_s / segment_seconds))
    if n < 2:
        return whole
    half = 0.5 / info.fps
    bounds = [-math.inf] + [info.start_time_s + info.duration_s * k / n - half
                            for k in range(1, n)] + [math.inf]
    return [Segment(k, n, bounds[k], bounds[k + 1], 0.0 if k == 0 else warmup_s)
            for k in range(n)]


class SegmentSource(VideoFileSource):
    """Upright RGB frames of one segment of a video file, warm-up frames first: the window
    ``start_s - warmup_s <= t < end_s`` of :class:`realtime.sources.VideoFileSource` (which seeks
    to the keyframe before it, so the pixels are a whole-file decode's), indexed from 0."""

    def __init__(self, path: str | os.PathLike, segment: Segment, *, info: VideoInfo | None = None,
                 threads: int = 0):
        self.segment = segment
        start = segment.start_s - segment.warmup_s
        super().__init__(path, threads=threads, info=info,
                         start_s=start if math.isfinite(start) else None,
                         end_s=segment.end_s if math.isfinite(segment.end_s) else None)

    @property
    def decode_from_s(self) -> float:
        return self.segment.start_s - self.segment.warmup_s


class SkipWarmup:
    """Wraps a sink: frames a segment does not write (its warm-up) are dropped, the rest are
    passed on; ``close``/``abort`` are the wrapped sink's."""

    def __init__(self, sink, segment: Segment):
        self.sink, self.segment = sink, segment
        self.frames_written = 0
        self.frames_skipped = 0

    def write(self, frame: Frame) -> None:
        if self.segment.written(frame.timestamp_s):
            self.sink.write(frame)
            self.frames_written += 1
        else:
            self.frames_skipped += 1

    def close(self):
        return self.sink.close()

    def abort(self) -> None:
        self.sink.abort()


@dataclass
class SegmentResult:
    """What one segment's conversion wrote."""
    segment: Segment
    part: Path
    frames: int
    faces: int
    warmup_frames: int
    seconds: float


def convert_segment(input_path: Path, segment: Segment, part: Path, engine,
                    cfg: PipelineConfig, out: FileOutput, *, info: VideoInfo | None = None,
                    on_output: Callable[[Frame, object], None] | None = None,
                    started: Callable | None = None,
                    warn: Callable[[str], None] = lambda m: None) -> SegmentResult:
    """Convert one segment of ``input_path`` into ``part`` (written atomically by the file sink)
    with an open ``engine``, encoded as ``out`` says. The first segment also carries the
    input's audio. ``on_output(frame, inflight)`` is called for every frame written (not for the
    warm-up; ``inflight`` is the pipeline's record of the frame, with its face tracks);
    ``started(pipeline)`` once the pipeline exists; ``warn(message)`` hears what the pipeline
    notes (e.g. an encoder fallback). Errors are raised (MediaError, OutputError,
    KeyboardInterrupt when stopped); a failed segment leaves no ``part``. A segment past the
    last frame (a container that overstates its duration) writes an empty ``part`` and
    reports 0 frames: leave it out of the join."""
    t0 = time.monotonic()
    source = SegmentSource(input_path, segment, info=info)
    spec = FileOutput(Path(part), codec=out.codec, crf=out.crf, preset=out.preset,
                      audio_from=Path(input_path) if segment.first else None)
    size = output_size(cfg.output, source.frame_size, int(engine.size))
    sink = SkipWarmup(make_sinks([spec], size, source.fps, source=source,
                                 device=pipeline_device(engine), warn=warn)[0], segment)
    frames = faces = 0

    def written(frame: Frame, w) -> None:
        nonlocal frames, faces
        if segment.written(frame.timestamp_s):
            frames += 1
            faces += len(w.tracks)
            if on_output is not None:
                on_output(frame, w)

    try:
        pipe = build_pipeline(cfg, source, engine, [sink], on_output=written, warn=warn)
    except BaseException:
        sink.abort()
        raise
    if started is not None:
        started(pipe)
    pipe.run()
    return SegmentResult(segment, Path(part), frames, faces, sink.frames_skipped,
                         time.monotonic() - t0)


# =============================================================================================
# Joining
# =============================================================================================
def _packets(container, stream) -> Iterator:
    """The stream's packets in file order, without the demuxer's final empty packet."""
    for pkt in container.demux(stream):
        if pkt.dts is None and pkt.pts is None:
            continue
        yield pkt


def join_segments(parts: Sequence[Path], output: Path, *, scratch: Path | None = None) -> int:
    """Join segment files (in order) into ``output`` by copying their packets: the video of
    every part, the audio of the first. Timestamps are kept as they are; only a decode
    timestamp that would not increase across a boundary (B-frame reordering delays) is moved up,
    never past its presentation time. The file is written in ``scratch`` (default: beside
    ``output``, hidden) and renamed onto ``output`` when complete. Returns the number of video
    frames. Raises OutputError (cannot write) or MediaError (parts that do not fit together)."""
    import av

    output = Path(output)
    if not parts:
        raise MediaError(f"{output}: no segments to join")
    folder = Path(scratch) if scratch is not None else output.parent
    try:
        tmp = temp_beside(folder / output.name, suffix=f".part{output.suffix}")
    except OSError as e:
        raise OutputError(f"{output}: cannot write in {folder} ({e.strerror or e})") from None
    inputs = [_open_input(p) for p in parts]
    sound = _open_input(parts[0])          # its own reader: demuxing is sequential per container
    out = None
    try:
        v0 = inputs[0].streams.video[0]
        for p, c in zip(parts[1:], inputs[1:]):
            v = c.streams.video[0]
            same = (v.codec_context.name, v.codec_context.width, v.codec_context.height,
                    bytes(v.codec_context.extradata or b""), v.time_base)
            want = (v0.codec_context.name, v0.codec_context.width, v0.codec_context.height,
                    bytes(v0.codec_context.extradata or b""), v0.time_base)
            if same != want:
                raise MediaError(f"{p}: this segment was encoded differently from the first "
                                 "(codec, size or headers); cannot join without re-encoding")
        out = av.open(str(tmp), "w")
        vs = out.add_stream_from_template(v0)
        a0 = sound.streams.audio[0] if sound.streams.audio else None
        as_ = out.add_stream_from_template(a0) if a0 is not None else None

        def video() -> Iterator:
            last = None
            for c in inputs:
                for pkt in _packets(c, c.streams.video[0]):
                    if last is not None and pkt.dts is not None and pkt.dts <= last:
                        if pkt.pts is not None and last + 1 > pkt.pts:
                            raise MediaError(f"{output}: the segments' timestamps overlap at "
                                             f"{float(pkt.pts * pkt.time_base):.3f}s")
                        pkt.dts = last + 1
                    last = pkt.dts if pkt.dts is not None else last
                    yield pkt

        def keyed(packets, stream) -> Iterator:
            for i, pkt in enumerate(packets):
                ts = pkt.dts if pkt.dts is not None else pkt.pts
                yield float(ts * pkt.time_base), stream.index, i, pkt

        streams = [keyed(video(), vs)]
        if as_ is not None:
            streams.append(keyed(_packets(sound, a0), as_))
        frames = 0
        for _, index, _, pkt in heapq.merge(*streams, key=lambda k: k[:3]):
            pkt.stream = vs if index == vs.index else as_
            if index == vs.index:
                frames += 1
            out.mux(pkt)
        out.close()
        out = None
        os.replace(tmp, output)
        return frames
    except av.error.FFmpegError as e:
        raise OutputError(f"{output}: joining the segments failed ({_reason(e)})") from None
    except OSError as e:
        raise OutputError(f"{output}: joining the segments failed ({e.strerror or e})") from None
    finally:
        for c in inputs + [sound] + ([out] if out is not None else []):
            try:
                c.close()
            except Exception:   # noqa: BLE001 - closing after a failure; the first error is raised
                pass
        tmp.unlink(missing_ok=True)
