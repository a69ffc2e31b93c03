"""The running pipeline: source → tracker → aligner → batcher → engine → compositor → sinks.

:mod:`realtime.compose` builds one from a validated config (the composition root every front end
calls); this module runs it. Four threads, named after the stages they run, joined by bounded
channels:

* ``gnr-source`` — reads frames from the source (decode, or a camera);
* ``gnr-faces`` — tracks the faces, uploads the frame to the engine's device, cuts aligned crops
  and, for the ``head`` paste, each crop's mask (person segmentation, made on the host frame);
* ``gnr-engine`` — gathers crops into batches and runs the engine;
* ``gnr-output`` — optionally deflickers the stylised crops, pastes them back (or builds the
  crop / side-by-side view) and writes the frame to every sink.

Hand-offs:

* **file mode** never drops a frame and keeps order (a full channel blocks its producer);
  faces of several consecutive frames are batched up to the engine's batch size;
* **live mode** keeps latency low: every channel holds one item and the newest wins, so when a
  stage falls behind, stale frames are dropped (and counted) instead of queueing up.

Every frame carries the monotonic time it was read, so end-to-end latency is measured per frame.
A stage that fails stops the others and its exception is raised from :meth:`Pipeline.run`;
Ctrl-C stops every thread within a second and is re-raised after the sinks are aborted.
"""
from __future__ import annotations

import collections
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from training.pixels import to_pixels

from .types import AlignedBatch, FaceTrack, Frame

_END = object()
OUTPUT_MODES = ("composite", "crop", "side-by-side")
STAGES = ("decode", "track", "align", "segment", "engine", "paste", "encode")


def output_size(mode: str, source_wh: tuple[int, int], crop_size: int) -> tuple[int, int]:
    """(width, height) of the frames the pipeline writes for ``mode`` (the one place that says)."""
    w, h = int(source_wh[0]), int(source_wh[1])
    if mode == "side-by-side":
        return 2 * w, h
    if mode == "crop":
        return int(crop_size), int(crop_size)
    if mode == "composite":
        return w, h
    raise ValueError(f"output mode must be one of {OUTPUT_MODES}, got {mode!r}")


@dataclass
class InFlight:
    """One frame travelling through the stages, with what each stage made of it."""
    frame: Frame
    t_read: float                                   # time.monotonic() when the source gave it
    tracks: list[FaceTrack] = field(default_factory=list)
    batch: AlignedBatch | None = None
    stylized: Any = None                            # N×3×S×S, the engine's output for batch.crops
    output: Frame | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Channel:
    """A bounded hand-off between two stages, with the mode's overflow policy. The end of the
    stream is a flag, not an item, so live mode can never drop it (nor the last frame for it)."""

    def __init__(self, capacity: int, live: bool, stop: threading.Event, name: str):
        self.q: queue.Queue = queue.Queue(maxsize=capacity)
        self.live, self.stop, self.name = live, stop, name
        self.dropped = 0
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def put(self, item) -> bool:
        """Hand ``item`` on; False when the pipeline is stopping. Live mode drops the oldest."""
        if self.live:
            with self._lock:
                while True:
                    try:
                        self.q.put_nowait(item)
                        return True
                    except queue.Full:
                        try:
                            self.q.get_nowait()
                            self.dropped += 1
                        except queue.Empty:
                            pass
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def get(self):
        """The next item, ``_END`` at the end of the stream, or None when stopping."""
        while not self.stop.is_set():
            try:
                return self.q.get(timeout=0.02)
            except queue.Empty:
                if self.closed.is_set() and self.q.empty():
                    return _END
        return None

    def get_nowait(self):
        """The next item if one is waiting, ``_END`` at the end, else None."""
        try:
            return self.q.get_nowait()
        except queue.Empty:
            return _END if self.closed.is_set() else None

    def close(self) -> None:
        """No more items will come."""
        self.closed.set()


class PipelineStats:
    """Per-stage times, end-to-end latency, counts. Sample windows are bounded (flat memory)."""

    def __init__(self, window: int = 5000):
        self.times = {s: collections.deque(maxlen=window) for s in STAGES}
        self.latency = collections.deque(maxlen=window)
        self.frames_in = 0
        self.frames_out = 0
        self.faces = 0
        self.frames_without_face = 0
        self.dropped: dict[str, int] = {}
        self.t_start = time.monotonic()
        self.t_end: float | None = None
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        self.times[stage].append(seconds)

    def recent_latency(self, seconds: float = 3.0) -> list[float]:
        with self._lock:
            return list(self.latency)[-max(1, int(seconds * 60)):]

    @staticmethod
    def percentiles(values: Iterable[float]) -> dict[str, float]:
        v = np.asarray(list(values), dtype=np.float64)
        if v.size == 0:
            return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan"), "n": 0}
        p = np.percentile(v, [50, 95, 99]) * 1000
        return {"p50_ms": float(p[0]), "p95_ms": float(p[1]), "p99_ms": float(p[2]), "n": int(v.size)}

    def summary(self) -> dict:
        end = self.t_end or time.monotonic()
        wall = max(end - self.t_start, 1e-9)
        return {
            "frames_in": self.frames_in, "frames_out": self.frames_out,
            "dropped": dict(self.dropped), "dropped_total": sum(self.dropped.values()),
            "faces": self.faces, "frames_without_face": self.frames_without_face,
            "wall_s": wall, "fps": self.frames_out / wall,
            "stages": {s: self.percentiles(t) for s, t in self.times.items() if t},
            "latency": self.percentiles(self.latency),
        }


class Pipeline:
    """Wire the stages and run them; see the module docstring.

    ``engine``: a callable ``crops -> crops`` on N×3×S×S float tensors in [-1, 1] (an
    :mod:`realtime.engines` engine); its ``max_batch`` (default 8) bounds a batch.
    ``sinks``: objects with ``write(frame)``, ``close()`` and ``abort()``.
    ``on_output``: called (in the output thread) with each output frame and its InFlight item.
    ``masker``: called as ``masker(host_image, tracks, batch) -> batch`` after alignment to
    attach each crop's paste mask (a :class:`~realtime.faces.HeadMasker`, for the ``head``
    paste); None for the ``face`` and ``box`` pastes.
    ``deflicker``: called as ``deflicker(batch, stylized) -> stylized`` in the output thread,
    frames in order, before the paste (a :class:`~realtime.faces.temporal.FlowBlend`); None: off.
    ``tracker`` and ``masker`` are closed when the run ends (the pipeline owns them).
    """

    def __init__(self, source: Iterable[Frame], tracker, aligner, engine: Callable, compositor,
                 sinks: Sequence = (), *, live: bool = False, output: str = "composite",
                 device: str = "cpu", batch_frames: int = 4,
                 on_output: Callable[[Frame, InFlight], None] | None = None,
                 stats: PipelineStats | None = None, masker: Callable | None = None,
                 deflicker: Callable | None = None):
        if output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {OUTPUT_MODES}, got {output!r}")
        self.source, self.tracker, self.aligner = source, tracker, aligner
        self.masker, self.deflicker = masker, deflicker
        self.engine, self.compositor, self.sinks = engine, compositor, list(sinks)
        self.live, self.output, self.device = live, output, device
        self.batch_frames = 1 if live else max(1, batch_frames)
        self.max_batch = int(getattr(engine, "max_batch", 8) or 8)
        self.on_output = on_output
        self.stats = stats or PipelineStats()
        self.stop_event = threading.Event()
        cap = 1 if live else 8
        self.channels = {name: Channel(cap, live, self.stop_event, name)
                         for name in ("faces", "engine", "sink")}
        self.errors: list[BaseException] = []
        self._last_crop: np.ndarray | None = None

    # -- the stages -------------------------------------------------------------------------------
    def _source_stage(self):
        out = self.channels["faces"]
        it = iter(self.source)
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            try:
                frame = next(it)
            except StopIteration:
                break
            now = time.monotonic()
            w = InFlight(frame, now)
            # a paced source (a file played as a camera) sleeps inside next(): not decode time
            decode = max(0.0, now - t0 - getattr(self.source, "last_wait_s", 0.0))
            w.timings["decode"] = decode
            self.stats.add("decode", decode)
            self.stats.frames_in += 1
            if not out.put(w):
                break
        out.close()

    def _face_stage(self):
        """Track, upload to the engine's device, align, mask."""
        inp, out = self.channels["faces"], self.channels["engine"]
        while True:
            w = inp.get()
            if w is None or w is _END:
                break
            t0 = time.monotonic()
            w.tracks = self.tracker.update(w.frame, w.frame.timestamp_s)
            t1 = time.monotonic()
            frame = host = w.frame
            if self.device != "cpu":
                import torch
                frame = Frame(torch.from_numpy(np.ascontiguousarray(frame.to_numpy())).to(self.device),
                              frame.timestamp_s, frame.index)
                w.frame = frame
            t3 = None
            if w.tracks:
                w.batch = self.aligner.crop(frame, w.tracks)
                self.stats.faces += len(w.tracks)
                if self.masker is not None:
                    t3 = time.monotonic()
                    w.batch = self.masker(host.image, w.tracks, w.batch)
            else:
                self.stats.frames_without_face += 1
            t2 = time.monotonic()
            aligned = t3 if t3 is not None else t2
            w.timings.update(track=t1 - t0, align=aligned - t1)
            self.stats.add("track", t1 - t0)
            self.stats.add("align", aligned - t1)
            if t3 is not None:
                w.timings["segment"] = t2 - t3
                self.stats.add("segment", t2 - t3)
            if not out.put(w):
                break
        out.close()

    def _run_engine(self, crops):
        """The engine over ``crops`` in chunks of at most max_batch."""
        import torch
        n = crops.shape[0]
        if n <= self.max_batch:
            return self.engine(crops)
        return torch.cat([self.engine(crops[i:i + self.max_batch])
                          for i in range(0, n, self.max_batch)])

    def _engine_stage(self):
        """Gather the crops of consecutive frames (file mode) into batches and run the engine."""
        inp, out = self.channels["engine"], self.channels["sink"]
        ended = False
        while not ended:
            w = inp.get()
            if w is None or w is _END:
                break
            group = [w]
            crops = len(w.batch) if w.batch is not None else 0
            # File mode: gather faces of consecutive frames already waiting, up to the batch size.
            while len(group) < self.batch_frames and crops < self.max_batch:
                nxt = inp.get_nowait()
                if nxt is None:
                    break
                if nxt is _END:
                    ended = True
                    break
                group.append(nxt)
                crops += len(nxt.batch) if nxt.batch is not None else 0
            with_faces = [g for g in group if g.batch is not None and len(g.batch)]
            if with_faces:
                t0 = time.monotonic()
                joined = AlignedBatch.concat([g.batch for g in with_faces])
                y = self._run_engine(joined.crops)
                if getattr(y, "is_cuda", False):
                    import torch
                    torch.cuda.current_stream(y.device).synchronize()   # the output's own GPU
                dt = time.monotonic() - t0
                self.stats.add("engine", dt)
                k = 0
                for g in with_faces:
                    n = len(g.batch)
                    g.stylized = y[k:k + n]
                    g.timings["engine"] = dt * n / max(crops, 1)
                    k += n
            for g in group:
                if not out.put(g):
                    return
        out.close()

    def _compose(self, w: InFlight) -> Frame:
        frame = w.frame
        if self.deflicker is not None and w.batch is not None and w.stylized is not None:
            w.stylized = self.deflicker(w.batch, w.stylized)
        if self.output != "crop" and w.batch is not None and w.stylized is not None:
            pasted = self.compositor.paste(frame, w.batch, w.stylized)
        else:
            pasted = frame
        if self.output == "composite":
            img = pasted.to_numpy()
        elif self.output == "side-by-side":
            img = np.concatenate([np.asarray(frame.to_numpy()), np.asarray(pasted.to_numpy())], axis=1)
        else:                                       # crop: the first face's stylised crop
            if w.batch is not None and w.stylized is not None:
                order = sorted(range(len(w.batch)), key=lambda i: w.batch.track_ids[i])
                self._last_crop = to_pixels(w.stylized[order[0]].detach()).permute(1, 2, 0).cpu().numpy()
            if self._last_crop is None:
                s = getattr(self.aligner, "crop_size", 256)
                self._last_crop = np.full((s, s, 3), 128, np.uint8)
            img = self._last_crop
        return Frame(np.ascontiguousarray(img), frame.timestamp_s, frame.index)

    def _output_stage(self):
        """Composite (or build the crop / side-by-side view) and write to every sink."""
        inp = self.channels["sink"]
        while True:
            w = inp.get()
            if w is None or w is _END:
                break
            t0 = time.monotonic()
            out = self._compose(w)
            t1 = time.monotonic()
            for s in self.sinks:
                s.write(out)
            t2 = time.monotonic()
            w.output = out
            w.timings.update(paste=t1 - t0, encode=t2 - t1)
            self.stats.add("paste", t1 - t0)
            self.stats.add("encode", t2 - t1)
            with self.stats._lock:
                self.stats.latency.append(t2 - w.t_read)
            self.stats.frames_out += 1
            if self.on_output is not None:
                self.on_output(out, w)

    # -- running ----------------------------------------------------------------------------------
    def _guard(self, fn):
        def run():
            try:
                fn()
            except BaseException as e:   # noqa: BLE001 - handed to the main thread and re-raised
                self.errors.append(e)
                self.stop_event.set()
        return run

    def stop(self) -> None:
        self.stop_event.set()
        stop = getattr(self.source, "stop", None)
        if stop is not None:
            stop()

    def run(self, idle: Callable[[], bool | None] | None = None) -> PipelineStats:
        """Run to the end of the source (or until stopped). ``idle`` is called about every 10 ms
        in the calling thread (a window's event loop); returning False stops the pipeline.
        On success every sink is closed; on an error or Ctrl-C every sink is aborted."""
        stages = {"source": self._source_stage, "faces": self._face_stage,
                  "engine": self._engine_stage, "output": self._output_stage}
        threads = [threading.Thread(target=self._guard(fn), name=f"gnr-{name}", daemon=True)
                   for name, fn in stages.items()]
        self.stats.t_start = time.monotonic()
        for t in threads:
            t.start()
        interrupted = None
        try:
            while any(t.is_alive() for t in threads):
                if idle is not None and idle() is False:
                    self.stop()
                threads[-1].join(timeout=0.01)
        except KeyboardInterrupt as e:
            interrupted = e
            self.stop()
        for t in threads:
            t.join(timeout=1.0)
        self.stats.t_end = time.monotonic()
        for owned in (self.tracker, self.masker):
            close = getattr(owned, "close", None)
            if close is not None and not threads[1].is_alive():   # never under a running update()
                close()
        self.stats.dropped = {name: ch.dropped for name, ch in self.channels.items() if ch.dropped}
        failed = interrupted or (self.errors[0] if self.errors else None)
        if failed is None and self.stop_event.is_set() and not self.live:
            failed = KeyboardInterrupt()          # a file conversion stopped before its end
        if failed is not None:
            for s in self.sinks:
                try:
                    s.abort()
                except Exception:   # noqa: BLE001 - already failing; the first error is raised
                    pass
            raise failed
        for s in self.sinks:
            s.close()
        return self.stats
