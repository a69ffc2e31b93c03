"""What each stage of the pipeline must do: one Protocol per stage, next to the engine's.

    Source → Tracker → Aligner → (batcher) → Engine → Compositor → Sink

The real implementations: :mod:`realtime.sources` (files, a looped file, cameras),
:class:`realtime.faces.FaceTracker`, :class:`realtime.faces.Aligner`,
:mod:`realtime.engines` (torch, onnxruntime, TensorRT, identity),
:class:`realtime.faces.Compositor`, :mod:`realtime.sinks` (file, stream, virtual camera).
Tests and front ends may pass anything that has these methods.
"""
from __future__ import annotations

from typing import Iterator, Protocol, Sequence, runtime_checkable

from .engines.base import DynamicStyleEngine, Engine
from .types import AlignedBatch, FaceTrack, Frame

__all__ = ["Source", "Tracker", "Aligner", "Engine", "DynamicStyleEngine", "Compositor", "Sink"]


@runtime_checkable
class Source(Protocol):
    """Frames in order, each with its timestamp. ``frame_size`` is (width, height) of the
    upright frames it yields, ``fps`` its nominal rate; ``stop()`` (optional) ends a live one."""

    frame_size: tuple[int, int]
    fps: float

    def __iter__(self) -> Iterator[Frame]: ...


@runtime_checkable
class Tracker(Protocol):
    """Finds and follows faces; ``close()`` releases its models."""

    def update(self, frame: Frame, timestamp_s: float | None = None) -> list[FaceTrack]: ...

    def close(self) -> None: ...


@runtime_checkable
class Aligner(Protocol):
    """Cuts the model's crops for the tracked faces, each with its crop-to-frame matrix."""

    crop_size: int

    def crop(self, frame: Frame, tracks: Sequence[FaceTrack]) -> AlignedBatch: ...


@runtime_checkable
class Compositor(Protocol):
    """Pastes stylised crops back into their frame with the matrices the aligner used."""

    def paste(self, frame: Frame, batch: AlignedBatch, stylized) -> Frame: ...


@runtime_checkable
class Sink(Protocol):
    """Takes output frames; ``close()`` finishes (a file is moved into place), ``abort()`` drops
    everything unfinished."""

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...
