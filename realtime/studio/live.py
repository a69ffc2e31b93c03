"""The live side of the studio: one pipeline at a time, run off the UI thread.

* The pipeline is built by :func:`realtime.compose.build_pipeline` in live mode (each stage
  keeps only the newest frame) in a thread named ``gnr-live``, which also opens the source: a
  camera can take a second to open, and the window never waits for it.
* Its frames reach the window through a :class:`FrameMailbox`: the output thread puts the
  newest (input, result) pair in, replacing one the window has not taken yet, and a signal
  fires only when the box was empty, so at most one delivery is ever queued in the event loop.
* The style: the engine is opened once (:func:`realtime.compose.open_model`) and shared
  (:class:`realtime.engines.base.SharedEngine`) by the live view, the gallery and file
  conversions. :class:`realtime.styles.BlendedStyleEngine` hands it the
  :class:`realtime.styles.StyleMixer`'s blended style and runs the batch under the shared
  engine's lock in one step, so a gallery render (``run_with_style``) can never slip in between
  the two and the live style is never disturbed.
* The latest aligned face crop is kept for the gallery, which renders styles on it.

Errors (no camera, an unreadable file, a camera unplugged mid-run) end the run and arrive as
one line through :attr:`LiveController.failed`; the controller stays usable.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from training.messages import one_line
from training.style import StyleCode

from ..compose import (CameraInput, FaceOptions, LoopedInput, OpenedModel, PipelineConfig,
                       build_pipeline, open_source)
from ..engines.base import SharedEngine
from ..pipeline import STAGES, PipelineStats
from ..styles import BlendedStyleEngine, StyleMixer

__all__ = ["LiveFrame", "FrameMailbox", "LiveController", "to_qimage",
           "describe_source"]

FPS_WINDOW_S = 2.0


def to_qimage(rgb: np.ndarray) -> QImage:
    """An H×W×3 uint8 RGB array as a QImage that owns its pixels (safe in any thread)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def describe_source(spec) -> str:
    if isinstance(spec, CameraInput):
        return f"camera {spec.index}"
    if isinstance(spec, LoopedInput):
        return Path(spec.path).name
    return str(spec)


@dataclass(frozen=True)
class LiveFrame:
    """One shown frame: the camera image and the result, with the pipeline's frame index."""
    before: QImage
    after: QImage
    index: int


class FrameMailbox(QObject):
    """Newest-wins hand-off from a worker thread to the UI thread (see the module docstring).
    ``replaced`` counts results overwritten before the window took them."""

    ready = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._item = None
        self._lock = threading.Lock()
        self.replaced = 0

    def put(self, item) -> None:
        with self._lock:
            empty = self._item is None
            self.replaced += 0 if empty else 1
            self._item = item
        if empty:
            try:
                self.ready.emit()
            except RuntimeError:          # the window is gone
                pass

    def take(self):
        with self._lock:
            item, self._item = self._item, None
        return item


class _Run:
    """One pipeline run: its thread, and what stopping it must reach."""

    def __init__(self, gen: int, spec):
        self.gen, self.spec = gen, spec
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.pipe = None
        self.source = None
        self.thread: threading.Thread | None = None


class LiveController(QObject):
    """Runs the live pipeline for a source spec (:class:`CameraInput` or :class:`LoopedInput`)
    with the current model; see the module docstring.

    Signals (UI thread): ``state(str)`` — what it is doing, for the status line;
    ``failed(str)`` — one line when a run ends in an error; ``running(bool)``."""

    state = Signal(str)
    failed = Signal(str)
    running = Signal(bool)

    def __init__(self, faces: FaceOptions, outputs, parent: QObject | None = None):
        super().__init__(parent)
        self.faces = faces
        self.outputs = outputs                 # the one sink every live pipeline writes to
        self.frames = FrameMailbox(self)
        self.stats = PipelineStats(window=600)
        self.model: OpenedModel | None = None
        self.shared: SharedEngine | None = None
        self.mixer: StyleMixer | None = None
        self.engine: BlendedStyleEngine | None = None
        self.source_spec = None
        self.paused = False
        self._run: _Run | None = None
        self._gen = 0
        self._face = None
        self._face_lock = threading.Lock()
        self._closed = False
        self._rate: collections.deque = collections.deque()   # (time, frames_out) samples

    # -- the model and the style ------------------------------------------------------------
    def set_model(self, opened: OpenedModel) -> None:
        """Use ``opened`` from now on (the running source restarts with it). The chosen style
        is kept when the new model takes styles of the same length."""
        engine = opened.engine
        z = engine.style.numpy() if getattr(engine, "style", None) is not None else \
            StyleCode.default().numpy()
        if self.mixer is not None and hasattr(engine, "set_style") and \
                self.mixer.target.shape == z.shape:
            z = self.mixer.target
        self.stop()                            # the old pipeline ends before its engine goes
        self.model = opened
        self.shared = SharedEngine(engine)
        self.mixer = StyleMixer(z)
        self.engine = BlendedStyleEngine(self.shared, self.mixer)
        with self._face_lock:
            self._face = None                  # crops of another size are of no use now
        if self.source_spec is not None and not self.paused:
            self.start(self.source_spec)

    @property
    def dynamic_style(self) -> bool:
        return self.engine is not None and self.engine.dynamic

    def set_style(self, z) -> None:
        """Blend to style ``z`` (8 floats) over 0.3 s."""
        if self.mixer is not None:
            self.mixer.set(np.asarray(z, np.float32))

    @property
    def source(self):
        """The running run's source (None when nothing runs)."""
        run = self._run
        return run.source if run is not None else None

    @property
    def style(self) -> np.ndarray | None:
        """The style chosen now (the blend's target)."""
        return None if self.mixer is None else self.mixer.target.copy()

    def latest_face(self):
        """The newest aligned crop of the first face (1×3×S×S on the host), or None."""
        with self._face_lock:
            return self._face

    # -- running ------------------------------------------------------------------------------
    def start(self, spec) -> None:
        """Stop what runs and start ``spec`` (it starts once a model is set)."""
        self.stop()
        self.source_spec, self.paused = spec, False
        if self.engine is None or self._closed:
            return
        self._gen += 1
        run = _Run(self._gen, spec)
        run.thread = threading.Thread(target=self._runner, args=(run,), name="gnr-live", daemon=True)
        self._run = run
        self.state.emit(f"opening {describe_source(spec)}…")
        run.thread.start()

    def pause(self) -> None:
        """Stop and release the source; :meth:`resume` opens it again."""
        self.stop()
        self.paused = True
        self.state.emit("paused")

    def resume(self) -> None:
        if self.source_spec is not None:
            self.start(self.source_spec)

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the running pipeline; True when its threads ended within ``timeout`` s."""
        run, self._run = self._run, None
        if run is None:
            return True
        with run.lock:
            run.cancel.set()
            if run.pipe is not None:
                run.pipe.stop()
            elif run.source is not None and hasattr(run.source, "stop"):
                run.source.stop()
        run.thread.join(timeout)
        return not run.thread.is_alive()

    def close(self, timeout: float = 1.0) -> bool:
        """Stop for good (the window is closing)."""
        self._closed = True
        return self.stop(timeout)

    def is_running(self) -> bool:
        return self._run is not None and self._run.thread.is_alive()

    def _emit(self, signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:                   # the window is gone
            pass

    def _runner(self, run: _Run) -> None:
        source = None
        try:
            source = open_source(run.spec)
            with run.lock:
                run.source = source
                if run.cancel.is_set():
                    return
            stats = PipelineStats(window=600)
            cfg = PipelineConfig(faces=self.faces, output="composite", live=True)
            pipe = build_pipeline(cfg, source, self.engine, [self.outputs], stats=stats,
                                  on_output=lambda out, work: self._on_output(run, out, work))
            with run.lock:
                run.pipe = pipe
                if run.cancel.is_set():
                    pipe.stop()
            self.stats, self._rate = stats, collections.deque([(time.monotonic(), 0)])
            self.outputs.set_format(pipe.output_size, pipe.fps)
            self._emit(self.running, True)
            self._emit(self.state, f"live: {describe_source(run.spec)}, "
                                   f"{pipe.output_size[0]}x{pipe.output_size[1]}")
            pipe.run()
            if not run.cancel.is_set():
                self._emit(self.state, f"{describe_source(run.spec)} ended")
        except Exception as e:  # noqa: BLE001 - shown in the window as one line, never a traceback
            if not run.cancel.is_set():
                name, why = describe_source(run.spec), one_line(e)
                self._emit(self.failed, why if name in why else f"{name}: {why}")
                self._emit(self.state, "stopped")
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()                        # a camera is released here at the latest
            self._emit(self.running, False)

    def _on_output(self, run: _Run, out, work) -> None:
        """In the pipeline's output thread: hand the pair to the window, keep the face crop."""
        if run.cancel.is_set():
            return
        before = work.frame.to_numpy()
        self.frames.put(LiveFrame(to_qimage(before), to_qimage(out.to_numpy()), out.index))
        batch = work.batch
        if batch is not None and len(batch):
            first = int(np.argmin(batch.track_ids))
            crop = batch.crops[first:first + 1].detach().to("cpu", copy=True)
            with self._face_lock:
                self._face = crop

    # -- numbers for the window -------------------------------------------------------------
    def snapshot(self) -> dict:
        """fps over the last 2 s, latency p50/p95 over the last 3 s, dropped frames of this run,
        and p50/p95 per stage over the last 120 frames (ms)."""
        stats = self.stats
        now, n = time.monotonic(), stats.frames_out
        rate = self._rate
        rate.append((now, n))
        while len(rate) > 2 and now - rate[1][0] >= FPS_WINDOW_S:
            rate.popleft()
        t0, n0 = rate[0]
        fps = (n - n0) / (now - t0) if now - t0 > 0.2 and n >= n0 else 0.0
        run = self._run
        pipe = run.pipe if run is not None else None
        dropped = sum(ch.dropped for ch in pipe.channels.values()) if pipe is not None else 0
        lat = PipelineStats.percentiles(stats.recent_latency(3.0))
        stages = {}
        for s in STAGES:
            recent = list(stats.times[s])[-120:]
            if recent:
                p = PipelineStats.percentiles(recent)
                stages[s] = (p["p50_ms"], p["p95_ms"])
        return {"fps": fps, "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"],
                "dropped": dropped, "frames": n, "stages": stages,
                "running": self.is_running()}
