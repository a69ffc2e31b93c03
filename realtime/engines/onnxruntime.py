"""onnxruntime backend: an exported graph (``python -m export onnx``) on the CPU, CUDA or
TensorRT execution provider.

On CUDA the crops stay on the GPU: inputs and outputs are bound to torch tensors with I/O
binding (no copy through the host). ORT runs on its own CUDA stream, so the current torch stream
is synchronised before the run (the crops must be written) and ORT synchronises its outputs
before returning.

Graphs with uint8 I/O are fed by rounding the float crops to pixels (a 1/255 quantisation).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from training.style import StyleCode

from .base import (BackendUnavailableError, BaseEngine, CudaUnavailableError, EngineError,
                   ModelSizeError, as_style, engine_device, from_graph_output,
                   graph_output_shape, to_graph_input)

__all__ = ["OnnxRuntimeEngine", "OnnxRuntimeDynamicStyleEngine", "open_onnx", "create_session",
           "ort_providers"]

_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}
_TORCH = {np.float32: torch.float32, np.float16: torch.float16, np.uint8: torch.uint8}


def ort_providers() -> tuple[str, ...]:
    try:
        import onnxruntime as ort
    except ImportError:
        return ()
    return tuple(ort.get_available_providers())


def create_session(path: str | os.PathLike, device, *, threads: int | None = None,
                   tensorrt_ep: bool = False, trt_cache_dir: str | os.PathLike | None = None):
    """An InferenceSession on ``device`` (cpu or cuda[:N]); clear errors when a provider is
    missing, and no silent fallback from CUDA to the CPU."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - a dependency
        raise BackendUnavailableError(f"onnxruntime is not installed: {e}") from None
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    if path.is_dir():
        raise EngineError(f"expected an .onnx file, got a folder: {path}")
    dev = engine_device(device)
    providers: list = ["CPUExecutionProvider"]
    if dev.type == "cuda":
        avail = ort_providers()
        if "CUDAExecutionProvider" not in avail:
            raise CudaUnavailableError(
                f"onnxruntime on CUDA asked for, but this onnxruntime ({ort.__version__}) has "
                f"only {list(avail)}: install onnxruntime-gpu (pip install 'gnr-anime[gpu]')")
        providers = [("CUDAExecutionProvider", {"device_id": dev.index or 0}), "CPUExecutionProvider"]
        if tensorrt_ep:
            if "TensorrtExecutionProvider" not in avail:
                raise BackendUnavailableError("onnxruntime's TensorRT execution provider is not "
                                              "available in this onnxruntime build")
            cache = Path(trt_cache_dir or path.parent / ".ort_trt_cache")
            cache.mkdir(parents=True, exist_ok=True)
            providers.insert(0, ("TensorrtExecutionProvider", {
                "device_id": dev.index or 0, "trt_fp16_enable": True,
                "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}))
    elif tensorrt_ep:
        raise CudaUnavailableError("the TensorRT execution provider needs --device cuda")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = int(threads)
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise EngineError(f"onnxruntime could not load {path}: {str(e).splitlines()[0]}") from None
    if dev.type == "cuda" and "CUDAExecutionProvider" not in sess.get_providers():
        raise CudaUnavailableError(f"onnxruntime could not start its CUDA provider for {path} "
                                   "(check that the CUDA and cuDNN 9 libraries are found)")
    return sess


class OnnxRuntimeEngine(BaseEngine):
    """An exported graph under onnxruntime (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, device="cpu", expected_size: int | None = None,
                 max_batch: int = 8, threads: int | None = None, tensorrt_ep: bool = False,
                 trt_cache_dir: str | os.PathLike | None = None,
                 style: StyleCode | None = None, session=None, _dynamic_ok: bool = False):
        from export.onnx import INPUT_NAME, OUTPUT_NAME, STYLE_NAME, read_info

        path = Path(path)
        dev = engine_device(device)
        sess = session if session is not None else create_session(path, dev, threads=threads,
                                                                  tensorrt_ep=tensorrt_ep,
                                                                  trt_cache_dir=trt_cache_dir)
        self.session = sess
        self.info = read_info(sess)
        self.path = path
        inputs = {i.name: i for i in sess.get_inputs()}
        outputs = {o.name: o for o in sess.get_outputs()}
        self.input_name = INPUT_NAME if INPUT_NAME in inputs else next(iter(inputs))
        self.output_name = OUTPUT_NAME if OUTPUT_NAME in outputs else next(iter(outputs))
        inp = inputs[self.input_name]
        self.style_name = STYLE_NAME if STYLE_NAME in inputs else None
        if len(inputs) != (2 if self.style_name else 1):
            raise EngineError(f"{path}: expected an input '{INPUT_NAME}' (and optionally "
                              f"'{STYLE_NAME}'), found inputs {list(inputs)}")
        if self.style_name and not _dynamic_ok:
            raise EngineError(f"{path} takes its style as an input: open it with open_onnx() or "
                              "OnnxRuntimeDynamicStyleEngine")
        io_mode = self.info.io if self.info else "float"
        if inp.type not in _NP:
            raise EngineError(f"{path}: input type {inp.type} is not supported (float, float16 "
                              "or uint8)")
        self.io_dtype = _NP[inp.type]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise EngineError(f"{path}: input must be 4-D, got shape {shape}")
        size_dims = shape[1:3] if io_mode == "uint8-nhwc" else shape[2:4]
        if not all(isinstance(d, int) for d in size_dims) or size_dims[0] != size_dims[1]:
            raise EngineError(f"{path}: input must have fixed square spatial dims, got {shape}")
        size = size_dims[0]
        if expected_size is not None and size != int(expected_size):
            raise ModelSizeError(
                f"{path} takes {size}x{size} crops, but the aligner makes {expected_size}x"
                f"{expected_size}: export the model at {expected_size} or align at {size}")
        self.io_mode = io_mode
        if isinstance(shape[0], int) and shape[0] > 0:
            max_batch = min(max_batch, shape[0])      # a graph with a fixed batch
        compute = torch.float16 if self.io_dtype == np.float16 or \
            (self.info is not None and self.info.precision == "fp16") else torch.float32
        latent = int(self.info.config["latent_dim"]) if self.info else 8
        super().__init__(device=dev, dtype=compute, size=size, max_batch=max_batch,
                         dynamic_style=self.style_name is not None, latent_dim=latent)
        prec = self.info.precision if self.info else {np.float16: "fp16"}.get(self.io_dtype, "fp32")
        ep = "tensorrt" if tensorrt_ep else dev.type
        self.name = f"onnxruntime-{ep} {prec}"
        if self.info is not None and self.info.style is not None:
            self.style = StyleCode.from_dict(self.info.style)
        if self.style_name:
            self.style = as_style(style, latent) if style is not None else (
                self.style or StyleCode.default(latent))
        self._style_np = self.style.numpy()[None] if self.style_name else None
        self._style_dev = None

    # -- running ---------------------------------------------------------------------------------
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        xg = to_graph_input(x, self.io_mode, _TORCH[self.io_dtype])
        if self.device.type == "cuda":
            return from_graph_output(self._run_cuda(xg), self.io_mode)
        feed = {self.input_name: xg.numpy()}
        if self.style_name:
            feed[self.style_name] = self._style_np
        y = self.session.run([self.output_name], feed)[0]
        return from_graph_output(torch.from_numpy(y), self.io_mode)

    def _run_cuda(self, xg: torch.Tensor) -> torch.Tensor:
        dev_id = self.device.index or 0
        binding = self.session.io_binding()
        binding.bind_input(self.input_name, "cuda", dev_id, self.io_dtype, tuple(xg.shape),
                           xg.data_ptr())
        if self.style_name:
            if self._style_dev is None:
                self._style_dev = torch.from_numpy(self._style_np).to(self.device)
            binding.bind_input(self.style_name, "cuda", dev_id, np.float32,
                               tuple(self._style_dev.shape), self._style_dev.data_ptr())
        out = torch.empty(graph_output_shape(xg.shape[0], self.size, self.io_mode),
                          dtype=_TORCH[self.io_dtype],
                          device=self.device)
        binding.bind_output(self.output_name, "cuda", dev_id, self.io_dtype, tuple(out.shape),
                            out.data_ptr())
        torch.cuda.current_stream(self.device).synchronize()   # crops written before ORT reads
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return out


class OnnxRuntimeDynamicStyleEngine(OnnxRuntimeEngine):
    """A style-as-input graph: ``set_style`` swaps the 8 floats fed to its ``style`` input."""

    def __init__(self, path, **kwargs):
        super().__init__(path, _dynamic_ok=True, **kwargs)

    def set_style(self, style) -> None:
        style = as_style(style, self.latent_dim)
        self._style_np = style.numpy()[None]
        self._style_dev = None
        self.style = style


def open_onnx(path, *, device="cpu", threads: int | None = None, tensorrt_ep: bool = False,
              trt_cache_dir=None, **kwargs) -> OnnxRuntimeEngine:
    """The right engine class for the graph: one with a ``style`` input gets ``set_style``."""
    from export.onnx import STYLE_NAME

    sess = create_session(path, device, threads=threads, tensorrt_ep=tensorrt_ep,
                          trt_cache_dir=trt_cache_dir)
    common = dict(device=device, tensorrt_ep=tensorrt_ep, session=sess)
    if STYLE_NAME in [i.name for i in sess.get_inputs()]:
        return OnnxRuntimeDynamicStyleEngine(path, **common, **kwargs)
    kwargs.pop("style", None)
    return OnnxRuntimeEngine(path, **common, **kwargs)
