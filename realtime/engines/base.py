"""The Engine protocol: aligned face crops in, stylised crops out.

An engine is a callable ``engine(crops) -> crops`` on N x 3 x S x S float tensors in [-1, 1]
(RGB, the aligner's crop size S). It returns a tensor of the same shape, dtype and device as its
input (it converts to its own device and precision inside). Attributes:

* ``name`` — backend and precision, e.g. ``"onnxruntime-cpu fp32"``;
* ``device`` — the torch device it computes on; ``dtype`` — its compute precision;
* ``size`` — S; ``max_batch`` — the largest batch it runs at once: larger inputs are split into
  chunks of ``max_batch`` and the results concatenated (never an error);
* ``dynamic_style`` — True when the style is a run-time input;
* ``style`` — the current :class:`~training.style.StyleCode` (None for ``identity``).

Engines whose style is a run-time input (style-as-input graphs) also have ``set_style(style)``
(a StyleCode or 8 floats), cheap enough to call every frame; an engine with a baked style has no
``set_style`` (``hasattr(engine, "set_style")`` tells them apart).
"""
from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from export.errors import (BackendUnavailableError, CudaUnavailableError, EngineError,
                           EngineMismatchError, ModelSizeError)
from training import device as _device
from training.pixels import to_pixels, to_unit
from training.style import StyleCode

__all__ = ["Engine", "DynamicStyleEngine", "BaseEngine", "IdentityEngine", "SharedEngine",
           "EngineError", "EngineInputError", "EngineRequestError", "BackendUnavailableError",
           "CudaUnavailableError",
           "ModelSizeError", "EngineMismatchError", "as_style", "engine_device", "to_graph_input",
           "from_graph_output", "graph_output_shape"]


class EngineInputError(ValueError):
    """Crops that are not N x 3 x S x S floating-point tensors of the engine's size."""


class EngineRequestError(EngineError):
    """A request no backend can meet (a style baked into an exported file differs from the one
    asked for, live style changes on a baked file): ``--backend auto`` raises it at once
    instead of trying the next backend."""


def engine_device(device) -> torch.device:
    """:func:`training.device.resolve_device` for an engine: a missing GPU is an engine error
    (:class:`CudaUnavailableError`), a misspelt device a ``ValueError``."""
    try:
        return _device.resolve_device(device)
    except _device.CudaUnavailableError as e:
        raise CudaUnavailableError(str(e)) from None


@runtime_checkable
class Engine(Protocol):
    name: str
    device: torch.device
    dtype: torch.dtype
    size: int
    max_batch: int
    dynamic_style: bool

    def __call__(self, crops: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class DynamicStyleEngine(Engine, Protocol):
    def set_style(self, style) -> None: ...


def as_style(style, dim: int | None = None) -> StyleCode:
    """A StyleCode from a StyleCode, an array/tensor/sequence of floats."""
    if isinstance(style, StyleCode):
        return style.check_dim(dim) if dim is not None else style
    return StyleCode.from_vector(style, "vector", dim=dim)


class BaseEngine:
    """Input checks, batch splitting and output conversion shared by every backend.
    Subclasses implement ``_run(x)`` for 1 <= N <= max_batch, x already on ``self.device``."""

    name = "engine"

    def __init__(self, *, device, dtype: torch.dtype, size: int, max_batch: int,
                 dynamic_style: bool = False, style: StyleCode | None = None,
                 latent_dim: int | None = None):
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.device = torch.device(device)
        self.dtype = dtype
        self.size = int(size)
        self.max_batch = int(max_batch)
        self.dynamic_style = dynamic_style
        self.style = style
        self.latent_dim = latent_dim

    # -- the protocol -----------------------------------------------------------------------
    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        self.check_input(crops)
        n = crops.shape[0]
        if n == 0:
            return crops.clone()
        x = crops.to(self.device, non_blocking=True)
        if n <= self.max_batch:
            out = self._run(x)
        else:
            out = torch.cat([self._run(chunk) for chunk in x.split(self.max_batch)])
        return out.to(crops.device, crops.dtype, non_blocking=False)

    def check_input(self, crops) -> None:
        if not isinstance(crops, torch.Tensor):
            raise EngineInputError(f"{self.name}: crops must be a torch.Tensor N x 3 x {self.size} "
                                   f"x {self.size}, got {type(crops).__name__}")
        s = self.size
        if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[2] != s or crops.shape[3] != s:
            raise EngineInputError(f"{self.name}: crops must be N x 3 x {s} x {s} (RGB at the "
                                   f"model's size), got shape {tuple(crops.shape)}")
        if not crops.is_floating_point():
            raise EngineInputError(f"{self.name}: crops must be floating point in [-1, 1], got "
                                   f"{crops.dtype} (convert uint8 with x.float() / 127.5 - 1)")

    def _run(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------
    @property
    def style_vector(self) -> np.ndarray | None:
        return None if self.style is None else self.style.numpy()

    def describe(self) -> str:
        style = "style is an input" if self.dynamic_style else \
            (f"style {self.style.source}" if self.style is not None else "no style")
        return (f"{self.name} on {self.device}, {self.size}x{self.size}, max batch "
                f"{self.max_batch}, {style}")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class IdentityEngine(BaseEngine):
    """Returns the crops unchanged (``--model identity``: checks tracking and paste-back
    without a network). The returned tensor is the input tensor itself."""

    name = "identity"

    def __init__(self, size: int = 256, max_batch: int = 64, device="cpu"):
        super().__init__(device=device, dtype=torch.float32, size=size, max_batch=max_batch)

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        self.check_input(crops)
        return crops

    def _run(self, x):  # pragma: no cover - __call__ never splits
        return x


class SharedEngine:
    """One engine used by several threads (``convert --jobs``, the studio's gallery beside the
    live view): calls take turns. A CUDA-graph engine copies each batch into one fixed input
    buffer, and a style-as-input engine holds one current style, so two callers must never be
    inside it together. Every other attribute is the wrapped engine's."""

    def __init__(self, engine):
        self.engine = engine
        self.lock = threading.RLock()

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        with self.lock:
            return self.engine(crops)

    def run_with_style(self, crops: torch.Tensor, style) -> torch.Tensor:
        """Run one batch with ``style`` (a style-as-input engine), then restore the style it
        had, atomically with respect to other callers."""
        with self.lock:
            before = self.engine.style
            self.engine.set_style(style)
            try:
                return self.engine(crops)
            finally:
                if before is not None:
                    self.engine.set_style(before)

    def __getattr__(self, name):
        return getattr(self.engine, name)


def to_graph_input(x: torch.Tensor, io_mode: str, dtype: torch.dtype) -> torch.Tensor:
    """Float crops N x 3 x S x S in [-1, 1] -> what an exported graph takes: the same in
    ``dtype``, or uint8 pixels (NCHW or NHWC) for graphs with uint8 I/O."""
    if dtype == torch.uint8:
        x = to_pixels(x)
        if io_mode == "uint8-nhwc":
            x = x.permute(0, 2, 3, 1)
        return x.contiguous()
    return x.to(dtype).contiguous()


def from_graph_output(y: torch.Tensor, io_mode: str) -> torch.Tensor:
    if y.dtype == torch.uint8:
        if io_mode == "uint8-nhwc":
            y = y.permute(0, 3, 1, 2)
        return to_unit(y)
    return y


def graph_output_shape(n: int, size: int, io_mode: str) -> tuple[int, int, int, int]:
    return (n, size, size, 3) if io_mode == "uint8-nhwc" else (n, 3, size, size)
