"""onnxruntime backend: an exported graph (``python -m export onnx``) on the CPU, CUDA or
TensorRT execution provider.

On CUDA the crops stay on the GPU: inputs and outputs are bound to torch tensors with I/O
binding (no copy through the host). ORT runs on its own CUDA stream, so the torch stream of the
engine's device is synchronised before the run (the crops must be written) and ORT synchronises
its outputs before returning; the run happens under ``torch.cuda.device(self.device)``, so the
calling thread's current device is restored afterwards.

* The provider that really runs is read back from the session (``get_providers()``) once it
  is created: a CUDA or TensorRT provider that did not start is an error (never a silent
  CPU or CUDA fallback), and the engine's name says what ran.
* TF32 is off on the CUDA provider (``use_tf32=0``): a float32 graph runs in true float32
  (1e-4 of the PyTorch model), and the float32 style path of an fp16 graph stays exact.
* The TensorRT provider takes fp16 graphs only, with an optimization profile over the batch
  (1 .. max_batch; the ``style`` input of a style-as-input graph is always 1 x latent) and its
  engine and timing caches in a folder per GPU (``<model folder>/.ort_trt_cache/<gpu>``).
* onnxruntime and onnxruntime-gpu install into the same ``onnxruntime`` package; with both
  installed, CUDA is refused with the command that fixes it (:func:`onnxruntime_install_problem`).

Graphs with uint8 I/O are fed by rounding the float crops to pixels (a 1/255 quantisation).
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from training.messages import one_line
from training.style import StyleCode

from .base import (BackendUnavailableError, BaseEngine, CudaUnavailableError, EngineError,
                   ModelSizeError, as_style, engine_device, from_graph_output,
                   graph_output_shape, to_graph_input)

__all__ = ["OnnxRuntimeEngine", "OnnxRuntimeDynamicStyleEngine", "open_onnx", "create_session",
           "ort_providers", "onnxruntime_distributions", "onnxruntime_install_problem",
           "session_backend", "trt_profile_shapes", "cuda_provider_options",
           "is_onnxruntime_error"]

_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}
_TORCH = {np.float32: torch.float32, np.float16: torch.float16, np.uint8: torch.uint8}
_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


def ort_providers() -> tuple[str, ...]:
    try:
        import onnxruntime as ort
    except ImportError:
        return ()
    return tuple(ort.get_available_providers())


def is_onnxruntime_error(e: BaseException) -> bool:
    """onnxruntime's own exceptions (Fail, RuntimeException, EPFail...) derive from Exception
    only; this tells them apart."""
    return type(e).__module__.startswith("onnxruntime")


# ---------------------------------------------------------------------------------------------
# Which onnxruntime is installed
# ---------------------------------------------------------------------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.lru_cache(maxsize=1)
def _installed_distributions() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    names = {_norm(n) for n in metadata.packages_distributions().get("onnxruntime", [])}
    out = []
    for n in sorted(names):
        try:
            out.append((n, metadata.version(n)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)


def onnxruntime_distributions() -> dict[str, str]:
    """Installed distributions that provide the ``onnxruntime`` import package (onnxruntime,
    onnxruntime-gpu, onnxruntime-directml...): name -> version."""
    return dict(_installed_distributions())


def onnxruntime_install_problem(dists: Mapping[str, str], cuda_torch: bool) -> str | None:
    """None for zero or one onnxruntime distribution; else one line saying what is wrong and the
    command that fixes it (keeping onnxruntime-gpu where PyTorch is a CUDA build, else the CPU
    build, at the version installed)."""
    dists = {_norm(k): v for k, v in dists.items()}
    if len(dists) <= 1:
        return None
    if cuda_torch and "onnxruntime-gpu" in dists:
        keep = "onnxruntime-gpu"
    elif "onnxruntime" in dists:
        keep = "onnxruntime"
    else:
        keep = sorted(dists)[0]
    names = sorted(dists)
    return (f"{' and '.join(f'{n} {dists[n]}' for n in names)} are installed together: they "
            "write the same `onnxruntime` package, so the CUDA provider may be missing, and "
            "uninstalling one breaks the other. Fix: pip uninstall -y "
            f"{' '.join(names)} && pip install {keep}=={dists[keep]}")


# ---------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------
def session_backend(wanted: str, running: Sequence[str]) -> str:
    """What a session created for ``wanted`` (cpu | cuda | tensorrt) really runs on, from its
    ``get_providers()``: ``wanted`` itself, or an error when that provider did not start."""
    running = list(running)
    if wanted == "tensorrt" and _PROVIDER["tensorrt"] not in running:
        raise BackendUnavailableError(
            "onnxruntime's TensorRT execution provider did not start (the TensorRT libraries "
            f"were not found or failed to load; running providers: {running}); use the CUDA "
            "provider (--backend onnxruntime) or a TensorRT engine (python -m export trt)")
    if wanted in ("cuda", "tensorrt") and _PROVIDER["cuda"] not in running:
        raise CudaUnavailableError(
            f"onnxruntime could not start its CUDA provider (running providers: {running}): "
            "check that the CUDA and cuDNN 9 libraries of its build are found")
    if wanted not in _PROVIDER:
        raise ValueError(f"unknown onnxruntime backend {wanted!r}")
    return wanted


def cuda_provider_options(device_index: int) -> dict:
    """The CUDA provider's options: the engine's GPU, and TF32 off (true float32)."""
    return {"device_id": int(device_index), "use_tf32": 0}


def trt_profile_shapes(inputs: Mapping[str, Sequence], max_batch: int, opt_batch: int,
                       style_name: str = "style") -> dict[str, str]:
    """The TensorRT provider's optimization profile (``trt_profile_{min,opt,max}_shapes``) for
    graph inputs ``name -> dims`` whose first dim is the batch: the batch spans
    1 .. max_batch (opt ``opt_batch``); the style input is always one row."""
    out = {"min": [], "opt": [], "max": []}
    for name, dims in inputs.items():
        rest = [int(d) for d in list(dims)[1:]]
        for key, b in (("min", 1), ("opt", opt_batch), ("max", max_batch)):
            n = 1 if name == style_name else b
            out[key].append(f"{name}:" + "x".join(str(d) for d in [n, *rest]))
    return {f"trt_profile_{k}_shapes": ",".join(v) for k, v in out.items()}


def _graph_inputs(path: Path) -> dict[str, list]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    init = {i.name for i in graph.initializer}
    return {i.name: [d.dim_value if d.HasField("dim_value") else None
                     for d in i.type.tensor_type.shape.dim]
            for i in graph.input if i.name not in init}


def _gpu_key(index: int) -> str:
    name = torch.cuda.get_device_name(index) if torch.cuda.is_available() else "gpu"
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "gpu"


def create_session(path: str | os.PathLike, device, *, threads: int | None = None,
                   tensorrt_ep: bool = False, trt_cache_dir: str | os.PathLike | None = None,
                   max_batch: int = 8):
    """An InferenceSession on ``device`` (cpu or cuda[:N]); clear errors when a provider is
    missing or does not start (no silent fallback to another provider). Returns the session
    and what it runs on (cpu | cuda | tensorrt)."""
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
    wanted = "tensorrt" if tensorrt_ep else dev.type
    providers: list = ["CPUExecutionProvider"]
    if dev.type == "cuda":
        problem = onnxruntime_install_problem(onnxruntime_distributions(),
                                              cuda_torch=torch.version.cuda is not None)
        if problem:
            raise BackendUnavailableError(problem)
        avail = ort_providers()
        if "CUDAExecutionProvider" not in avail:
            raise CudaUnavailableError(
                f"onnxruntime on CUDA asked for, but this onnxruntime ({ort.__version__}) has "
                f"only {list(avail)}: install onnxruntime-gpu for your CUDA version "
                "(pip install 'gnr-anime[gpu]')")
        index = dev.index or 0
        providers = [("CUDAExecutionProvider", cuda_provider_options(index)),
                     "CPUExecutionProvider"]
        if tensorrt_ep:
            if "TensorrtExecutionProvider" not in avail:
                raise BackendUnavailableError("onnxruntime's TensorRT execution provider is not "
                                              "available in this onnxruntime build")
            from export.onnx import read_info
            info = read_info(path)
            if info is None or info.precision != "fp16":
                raise BackendUnavailableError(
                    "onnxruntime's TensorRT provider runs fp16 graphs here (export with "
                    "`python -m export onnx --fp16`); run float32 graphs on the CUDA provider")
            cache = Path(trt_cache_dir or path.parent / ".ort_trt_cache") / _gpu_key(index)
            cache.mkdir(parents=True, exist_ok=True)
            profile = trt_profile_shapes(_graph_inputs(path), max_batch, min(4, max_batch))
            providers.insert(0, ("TensorrtExecutionProvider", {
                "device_id": index, "trt_fp16_enable": True,
                "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache),
                **profile}))
    elif tensorrt_ep:
        raise CudaUnavailableError("the TensorRT execution provider needs --device cuda")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = int(threads)
    so.log_severity_level = 3
    guard = torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()
    try:
        with guard:
            sess = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise EngineError(f"onnxruntime could not load {path}: {one_line(e)}") from None
    return sess, session_backend(wanted, sess.get_providers())


class OnnxRuntimeEngine(BaseEngine):
    """An exported graph under onnxruntime (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, device="cpu", expected_size: int | None = None,
                 max_batch: int = 8, threads: int | None = None, tensorrt_ep: bool = False,
                 trt_cache_dir: str | os.PathLike | None = None,
                 style: StyleCode | None = None, session=None, _dynamic_ok: bool = False):
        from export.onnx import INPUT_NAME, OUTPUT_NAME, STYLE_NAME, read_info

        path = Path(path)
        dev = engine_device(device)
        if session is None:
            session = create_session(path, dev, threads=threads, tensorrt_ep=tensorrt_ep,
                                     trt_cache_dir=trt_cache_dir, max_batch=max_batch)
        sess, ran = session
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
        self.provider = ran
        self.name = f"onnxruntime-{ran} {prec}"
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
        try:
            if self.device.type == "cuda":
                with torch.cuda.device(self.device):
                    return from_graph_output(self._run_cuda(xg), self.io_mode)
            feed = {self.input_name: xg.numpy()}
            if self.style_name:
                feed[self.style_name] = self._style_np
            y = self.session.run([self.output_name], feed)[0]
        except Exception as e:
            if is_onnxruntime_error(e):
                raise EngineError(f"{self.name} failed on a batch of {x.shape[0]}: "
                                  f"{one_line(e)}") from e
            raise
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
              trt_cache_dir=None, max_batch: int = 8, **kwargs) -> OnnxRuntimeEngine:
    """The right engine class for the graph: one with a ``style`` input gets ``set_style``."""
    from export.onnx import STYLE_NAME

    session = create_session(path, device, threads=threads, tensorrt_ep=tensorrt_ep,
                             trt_cache_dir=trt_cache_dir, max_batch=max_batch)
    common = dict(device=device, tensorrt_ep=tensorrt_ep, session=session, max_batch=max_batch)
    if STYLE_NAME in [i.name for i in session[0].get_inputs()]:
        return OnnxRuntimeDynamicStyleEngine(path, **common, **kwargs)
    kwargs.pop("style", None)
    return OnnxRuntimeEngine(path, **common, **kwargs)
