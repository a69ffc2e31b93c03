"""Errors of the export layer and of the engines built from its files.

``realtime.engines`` raises these too (it builds on ``export``), so an app catches one family:
:class:`EngineError` for an engine that cannot be built or run, :class:`ExportError` for a graph
that cannot be written, :class:`BuildError` for a TensorRT build that fails.
"""
from __future__ import annotations

from training.device import CudaUnavailableError as _NoCuda

__all__ = ["EngineError", "BackendUnavailableError", "CudaUnavailableError", "ModelSizeError",
           "EngineMismatchError", "ExportError", "BuildError"]


class EngineError(RuntimeError):
    """An engine that cannot be built or run as asked."""


class BackendUnavailableError(EngineError):
    """The backend asked for is not installed or cannot run here."""


class CudaUnavailableError(BackendUnavailableError, _NoCuda):
    """CUDA was asked for where there is none (also a :class:`training.device.DeviceError`)."""


class ModelSizeError(EngineError):
    """The model's input size differs from the crop size the aligner produces."""


class EngineMismatchError(EngineError):
    """A TensorRT engine built with another TensorRT version or on another GPU."""


class ExportError(RuntimeError):
    """An export that cannot be done as asked (unsupported option, failed ONNX export or check)."""


class BuildError(RuntimeError):
    """A TensorRT engine build that failed (the message says why; the log file has the rest)."""
