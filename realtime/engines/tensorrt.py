"""TensorRT backend: an engine built by ``python -m export trt``, run with torch tensors
(TensorRT 10 API: named I/O tensors, ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``).

The engine's sidecar JSON is checked first, against the GPU the engine is opened on: an engine
built with another TensorRT version or on another GPU model is refused with
:class:`EngineMismatchError`, which gives the rebuild command. Batches above the profile's max
batch are split (BaseEngine); batches below its min are padded.

Streams: TensorRT runs on the engine's own CUDA stream (enqueueing on the legacy default stream
makes TensorRT warn on every call and synchronise), ordered with torch: that stream waits for
the torch stream of the engine's device before the run (the crops are written), and the torch
stream waits for it after (anything reading the output comes later). No host synchronisation.
Every CUDA call runs under ``torch.cuda.device(self.device)``.

Style-as-input engines bind the style as one 1 x latent row when the engine's profile allows it
(engines built here do), else as one identical row per crop.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from training.style import StyleCode

from .base import (BaseEngine, CudaUnavailableError, EngineError, ModelSizeError, as_style,
                   engine_device, from_graph_output, graph_output_shape, to_graph_input)

__all__ = ["TensorRTEngine", "TensorRTDynamicStyleEngine", "open_tensorrt"]


def _torch_dtype(trt, dt):
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.uint8: torch.uint8,
             trt.int8: torch.int8, trt.int32: torch.int32}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if dt not in table:
        raise EngineError(f"unsupported TensorRT I/O dtype {dt}")
    return table[dt]


class TensorRTEngine(BaseEngine):
    """A serialized TensorRT engine (see the module docstring)."""

    def __init__(self, engine_path: str | os.PathLike, *, expected_size: int | None = None,
                 device="cuda", style: StyleCode | None = None, check: bool = True,
                 _dynamic_ok: bool = False):
        from export.onnx import INPUT_NAME, OUTPUT_NAME, STYLE_NAME, ExportInfo
        from export.tensorrt import check_engine, import_tensorrt, read_sidecar

        trt = import_tensorrt()
        dev = engine_device(device)
        if dev.type != "cuda":
            raise CudaUnavailableError("TensorRT engines run on CUDA only; use --device cuda")
        path = Path(engine_path)
        sidecar = check_engine(path, device_index=dev.index or 0) if check else read_sidecar(path)
        self.sidecar = sidecar
        self.path = path
        self._logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(dev):
            runtime = trt.Runtime(self._logger)
            engine = runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise EngineError(f"TensorRT could not deserialize {path} (corrupt file, or built "
                                  "by another TensorRT version); rebuild it with python -m export trt")
            context = engine.create_execution_context()
        self._runtime, self._engine, self._context = runtime, engine, context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.input_name = INPUT_NAME if INPUT_NAME in inputs else inputs[0]
        self.output_name = OUTPUT_NAME if OUTPUT_NAME in outputs else outputs[0]
        self.style_name = STYLE_NAME if STYLE_NAME in inputs else None
        if self.style_name and not _dynamic_ok:
            raise EngineError(f"{path} takes its style as an input: open it with open_tensorrt() "
                              "or TensorRTDynamicStyleEngine")
        info = ExportInfo(**sidecar["gnr_info"]) if sidecar.get("gnr_info") else None
        self.info = info
        self.io_mode = info.io if info else "float"
        self.in_dtype = _torch_dtype(trt, engine.get_tensor_dtype(self.input_name))
        self.out_dtype = _torch_dtype(trt, engine.get_tensor_dtype(self.output_name))
        lo, _opt, hi = engine.get_tensor_profile_shape(self.input_name, 0)
        shape = tuple(engine.get_tensor_shape(self.input_name))
        size = shape[1] if self.io_mode == "uint8-nhwc" else shape[2]
        if expected_size is not None and size != int(expected_size):
            raise ModelSizeError(f"{path} takes {size}x{size} crops, but the aligner makes "
                                 f"{expected_size}x{expected_size}: export and build the model at "
                                 f"{expected_size} or align at {size}")
        self.min_batch = int(lo[0])
        latent = int(info.config["latent_dim"]) if info else 8
        fp16 = sidecar.get("fp16", False)
        super().__init__(device=dev, dtype=torch.float16 if fp16 else torch.float32, size=size,
                         max_batch=int(hi[0]), dynamic_style=self.style_name is not None,
                         latent_dim=latent)
        self.name = f"tensorrt {'fp16' if fp16 else 'fp32'}"
        if info is not None and info.style is not None:
            self.style = StyleCode.from_dict(info.style)
        self._z = None
        self._style_rows = 1
        if self.style_name:
            self.style = as_style(style, latent) if style is not None else (
                self.style or StyleCode.default(latent))
            s_lo = engine.get_tensor_profile_shape(self.style_name, 0)[0]
            self._style_rows = 1 if int(s_lo[0]) <= 1 else 0      # 0: one row per crop
            self._z = self.style.tensor(dev).expand(self.max_batch, -1).contiguous()
        with torch.cuda.device(dev):
            self._stream = torch.cuda.Stream(device=dev)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n < self.min_batch:          # the profile's minimum: pad, then drop the padding
            pad = x[-1:].expand(self.min_batch - n, *x.shape[1:])
            return self._run(torch.cat([x, pad]))[:n]
        with torch.cuda.device(self.device):
            return self._enqueue(x, n)

    def _enqueue(self, x: torch.Tensor, n: int) -> torch.Tensor:
        xg = to_graph_input(x, self.io_mode, self.in_dtype)
        out = torch.empty(graph_output_shape(n, self.size, self.io_mode), dtype=self.out_dtype,
                          device=self.device)
        ctx = self._context
        ok = ctx.set_input_shape(self.input_name, tuple(xg.shape))
        ok = ctx.set_tensor_address(self.input_name, xg.data_ptr()) and ok
        if self.style_name:
            z = self._z[:1] if self._style_rows == 1 else self._z[:n]
            ok = ctx.set_input_shape(self.style_name, tuple(z.shape)) and ok
            ok = ctx.set_tensor_address(self.style_name, z.data_ptr()) and ok
        ok = ctx.set_tensor_address(self.output_name, out.data_ptr()) and ok
        if ok is False:
            raise EngineError(f"TensorRT refused a batch of {n} (outside the engine's profile "
                              f"{self.min_batch}..{self.max_batch}?)")
        torch_stream = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(torch_stream)              # crops written before TensorRT reads
        if not ctx.execute_async_v3(self._stream.cuda_stream):
            raise EngineError(f"TensorRT execution failed for a batch of {n}")
        # Readers of `out` come after on the torch stream; xg and out are freed to that stream's
        # pool, whose later work is ordered after TensorRT's by this wait.
        torch_stream.wait_stream(self._stream)
        return from_graph_output(out, self.io_mode)

    def close(self) -> None:
        self._context = self._engine = self._runtime = None


class TensorRTDynamicStyleEngine(TensorRTEngine):
    """An engine built from a style-as-input graph: ``set_style`` writes the 8 floats in place."""

    def __init__(self, engine_path, **kwargs):
        super().__init__(engine_path, _dynamic_ok=True, **kwargs)

    def set_style(self, style) -> None:
        style = as_style(style, self.latent_dim)
        with torch.cuda.device(self.device):
            self._z.copy_(style.tensor(self.device).expand_as(self._z))
        self.style = style


def open_tensorrt(engine_path, **kwargs) -> TensorRTEngine:
    """The right engine class for the engine file (its sidecar records whether the style is an
    input)."""
    from export.tensorrt import read_sidecar

    side = read_sidecar(engine_path)
    if (side.get("gnr_info") or {}).get("dynamic_style"):
        return TensorRTDynamicStyleEngine(engine_path, **kwargs)
    kwargs.pop("style", None)
    return TensorRTEngine(engine_path, **kwargs)
