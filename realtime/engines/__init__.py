"""Inference engines: one protocol (:mod:`.base`), several backends.

* :mod:`.torch` — PyTorch, CPU fp32 or CUDA fp16 (channels_last, CUDA graphs captured at open,
  optionally torch.compile);
* :mod:`.onnxruntime` — an exported ONNX graph on onnxruntime's CPU, CUDA or TensorRT provider;
* :mod:`.tensorrt` — a TensorRT engine built by ``python -m export trt``;
* :mod:`.select` — ``--backend auto`` and :func:`~.select.open_engine` for the apps.

Backends are imported only when used.
"""
from .base import (BackendUnavailableError, BaseEngine, CudaUnavailableError, DynamicStyleEngine,
                   Engine, EngineError, EngineInputError, EngineMismatchError,
                   EngineRequestError, IdentityEngine, ModelSizeError)

__all__ = ["Engine", "DynamicStyleEngine", "BaseEngine", "IdentityEngine", "EngineError",
           "EngineInputError", "EngineRequestError", "BackendUnavailableError",
           "CudaUnavailableError", "ModelSizeError", "EngineMismatchError"]
