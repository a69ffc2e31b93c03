"""The file conversion queue behind the Files tab: files in, one conversion at a time in the
background, progress and results out by signals.

Every file is converted exactly as ``python -m realtime.convert`` converts it
(:func:`realtime.convert.convert_file`: atomic output; a video keeps its sound and timestamps,
a photo becomes a photo of the same format), named as it names them (``talk_anime.mp4``), and
folders are read as it reads them. The conversions run in one thread, ``gnr-convert``, which
exists only while the queue has work. Every file is drawn with the style chosen when it starts,
locked for the whole file (:class:`LockedStyleEngine`), whatever the live view does meanwhile.

While converting, the live view either pauses or keeps running (:func:`default_policy`): on a
CPU engine with fewer than 8 cores both at once starve the live view, so it pauses (and the
camera is released) until the queue is done; the user can choose otherwise.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from training.messages import one_line

from ..compose import ConfigError, FileOutput, PipelineConfig
from ..convert import VIDEO_SUFFIXES, Job, collect_inputs, convert_file, default_output
from ..pipeline import OUTPUT_MODES
from ..sources import PHOTO_SUFFIXES, MediaError, is_photo, probe

__all__ = ["LockedStyleEngine", "QueueItem", "ConvertQueue", "expand_inputs", "default_policy",
           "POLICIES", "MEDIA_SUFFIXES"]

POLICIES = {"pause": "Pause the live view", "parallel": "Keep the live view running"}
MEDIA_SUFFIXES = frozenset(VIDEO_SUFFIXES) | PHOTO_SUFFIXES


def default_policy(device_type: str, cores: int | None = None) -> tuple[str, str]:
    """("pause" | "parallel", why) for an engine on ``device_type`` and ``cores`` CPU cores."""
    cores = cores or os.cpu_count() or 1
    if device_type == "cuda":
        return "parallel", "the model runs on the GPU, so the live view keeps running"
    if cores >= 8:
        return "parallel", f"{cores} CPU cores are enough for both at once"
    return "pause", (f"the model runs on the CPU and this machine has {cores} cores: converting "
                     "beside the live view would starve it, so it pauses until the files are done")


def expand_inputs(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to convert from dropped files and folders (folders read as ``realtime.convert``
    reads them), and one note per thing left out."""
    files, notes = [], []
    for p in paths:
        if p.exists() and not p.is_dir() and p.suffix.lower() not in MEDIA_SUFFIXES:
            notes.append(f"{p.name}: not a video or photo")
            continue
        try:
            found, said = collect_inputs([p])
        except ConfigError as e:
            notes.append(one_line(e))
            continue
        files += found
        notes += said
    return files, notes


class LockedStyleEngine:
    """The shared engine with one style for a whole file (``SharedEngine.run_with_style``: the
    live view's style is restored after every batch). Other attributes are the shared
    engine's."""

    def __init__(self, shared, style):
        self.shared, self.style_vector = shared, style

    def __call__(self, crops):
        return self.shared.run_with_style(crops, self.style_vector)

    def __getattr__(self, name):
        return getattr(self.shared, name)


@dataclass
class QueueItem:
    id: int
    job: Job
    photo: bool
    mode: str
    done: int = 0
    total: int = 0
    cancelled: bool = False
    pipe: object = None
    t_emit: float = field(default=0.0, repr=False)


class ConvertQueue(QObject):
    """The conversion queue and its worker thread; see the module docstring.

    ``engine_for_job()`` returns ``(engine, faces)`` for the next file (the live model and the
    chosen style at that moment) or raises with the reason. Signals: ``added(item)``,
    ``started(id)``, ``progress(id, done, total)``, ``finished(id, status, reason)``,
    ``busy(bool)`` (the worker started / the queue is empty)."""

    added = Signal(object)
    started = Signal(int)
    progress = Signal(int, int, int)
    finished = Signal(int, str, str)
    busy = Signal(bool)

    def __init__(self, engine_for_job: Callable[[], tuple], parent: QObject | None = None):
        super().__init__(parent)
        self.engine_for_job = engine_for_job
        self.items: dict[int, QueueItem] = {}
        self._pending: list[QueueItem] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next_id = 1
        self._closed = False

    # -- the UI thread --------------------------------------------------------------------------
    def add(self, inputs: list[Path], folder: Path | None, mode: str,
            overwrite: bool = False) -> list[str]:
        """Queue ``inputs`` (files and folders); returns notes on what was left out. Outputs
        that exist are skipped unless ``overwrite``."""
        if mode not in OUTPUT_MODES:
            raise ValueError(f"output mode must be one of {OUTPUT_MODES}, got {mode!r}")
        if folder is not None and not folder.is_dir():
            return [f"the output folder {folder} does not exist"]
        files, notes = expand_inputs(inputs)
        with self._lock:
            queued = {i.job.output.resolve() for i in self.items.values()
                      if i.job.status == "pending"}
        for f in files:
            job = Job(f, default_output(f, folder))
            if job.output.resolve() in queued:
                job.status, job.reason = "skipped", "already in the queue"
            elif job.output.exists() and not overwrite:
                job.status, job.reason = "skipped", f"{job.output.name} exists (tick “replace”)"
            queued.add(job.output.resolve())
            with self._lock:
                item = QueueItem(self._next_id, job, is_photo(f), mode)
                self._next_id += 1
                self.items[item.id] = item
                if job.status == "pending":
                    self._pending.append(item)
            self.added.emit(item)
            if job.status != "pending":
                self.finished.emit(item.id, job.status, job.reason)
        self._wake()
        return notes

    def cancel(self, item_id: int) -> None:
        with self._lock:
            item = self.items.get(item_id)
            if item is None or item.job.status != "pending":
                return
            item.cancelled = True
            waiting = item in self._pending
            if waiting:
                self._pending.remove(item)
                item.job.status, item.job.reason = "cancelled", "not started"
            pipe = item.pipe
        if waiting:
            self.finished.emit(item.id, "cancelled", "not started")
        elif pipe is not None:
            pipe.stop()

    def cancel_all(self) -> None:
        for item_id in list(self.items):
            self.cancel(item_id)

    def forget(self, item_id: int) -> None:
        with self._lock:
            item = self.items.get(item_id)
            if item is not None and item.job.status != "pending":
                del self.items[item_id]

    def is_busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float = 1.0) -> bool:
        """Cancel everything and wait for the worker; True when it ended in time."""
        self._closed = True
        self.cancel_all()
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def _wake(self) -> None:
        with self._lock:
            if self._closed or not self._pending or (self._thread and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._work, name="gnr-convert", daemon=True)
        self._emit(self.busy, True)
        self._thread.start()

    # -- the worker thread ------------------------------------------------------------------
    def _emit(self, signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:                      # the window is gone
            pass

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._pending or self._closed:
                    self._thread_done()
                    return
                item = self._pending.pop(0)
            self._emit(self.started, item.id)
            self._convert(item)
            job = item.job
            status = "cancelled" if item.cancelled and job.status == "interrupted" else job.status
            reason = "stopped; no output written" if status == "cancelled" else job.reason
            job.status = status
            self._emit(self.finished, item.id, status, reason)

    def _thread_done(self) -> None:
        # called with the lock held: a file added now starts a new worker
        self._thread = None
        self._emit(self.busy, False)

    def _convert(self, item: QueueItem) -> None:
        job = item.job
        try:
            engine, faces = self.engine_for_job()
        except Exception as e:  # noqa: BLE001 - no model yet: this file fails with the reason
            job.status, job.reason = "failed", one_line(e)
            return
        cfg = PipelineConfig(faces=faces, output=item.mode, live=False)
        if item.photo:
            item.total = 1
        else:
            try:
                info = probe(job.input)
                item.total = info.frames or int(round((info.duration_s or 0) * info.fps))
            except MediaError as e:
                job.status, job.reason = "failed", one_line(e)
                return

        def started(pipe):
            with self._lock:
                item.pipe = pipe
                stop = item.cancelled or self._closed
            if stop:
                pipe.stop()

        def tick():
            item.done += 1
            now = time.monotonic()
            if now - item.t_emit >= 0.1:
                item.t_emit = now
                self._emit(self.progress, item.id, item.done, item.total)

        convert_file(job, engine, cfg, FileOutput(job.output), on_frame=tick, started=started)
        with self._lock:
            item.pipe = None
        self._emit(self.progress, item.id, item.done, max(item.total, item.done))
