"""TensorRT engine builds (``python -m export trt``), written against the TensorRT 10 Python API.

    build_engine("model.onnx", "model.engine", fp16=True, batch=(1, 4, 8))

* one optimization profile over the batch axis (min/opt/max) for the crops; the ``style`` input
  of a style-as-input graph (1 row for the batch, or one per crop) spans 1 .. max, so the
  engine always binds one row whatever the min batch;
* a persistent timing cache per GPU model and TensorRT version (timings are only valid there):
  ``--timing-cache``, default ``~/.cache/gnr-anime/trt-timing-<gpu>-sm<cc>-trt<version>.cache``;
  rebuilds skip most kernel timing. A cache TensorRT cannot read, or one from another GPU or
  version, is reported in the build log and replaced by a fresh one (never a crash);
* TF32 off (``BuilderFlag.TF32`` cleared): float32 layers run in true float32, so an fp32
  engine matches the PyTorch model to 1e-4 and the float32 style path of an fp16 engine is exact;
* FP16 only where the GPU has fast FP16 (``builder.platform_has_fast_fp16``), else a clear error;
* the whole builder log in ``<engine>.build.log``;
* a sidecar ``<engine>.json`` with the TensorRT version, GPU name and compute capability, the ONNX
  file's sha256 and the build options. Engines only run with the TensorRT version and GPU they
  were built with: :func:`check_engine` refuses a mismatched one and says how to rebuild.

Precision: an fp16 graph (``python -m export onnx --fp16``) is built as a *strongly typed*
network when this TensorRT supports it, so the float32 style path that the graph spells out
(mapping, modulation, demodulation: the 1e-8 epsilon underflows in half precision) stays
float32. With a float32 graph and ``fp16=True`` TensorRT picks precisions itself; every layer
whose outputs are at most 2-D (the style path: B x C vectors) is then pinned to float32.

TensorRT is imported only inside these functions; nothing here runs at import time.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from training.fileio import atomic_path, sha256_file, write_bytes_atomic
from training.messages import one_line

from .errors import BackendUnavailableError, BuildError, CudaUnavailableError, EngineMismatchError

__all__ = ["build_engine", "check_engine", "read_sidecar", "sidecar_path", "parse_batch_spec",
           "current_platform", "default_timing_cache", "import_tensorrt", "rebuild_command",
           "attach_timing_cache", "style_profile", "BuildError"]

SIDECAR_VERSION = 1


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendUnavailableError(
            "TensorRT is not installed (import tensorrt failed: "
            f"{e}). Install NVIDIA's TensorRT 10+ Python package for your CUDA version, or use "
            "--backend onnxruntime / torch") from None
    return trt


def parse_batch_spec(spec: str | Sequence[int]) -> tuple[int, int, int]:
    """``"1:4:8"`` -> (1, 4, 8); also ``"8"`` -> (1, 8, 8). min <= opt <= max, all >= 1."""
    if isinstance(spec, str):
        parts = spec.split(":")
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"batch must be MIN:OPT:MAX integers like 1:4:8, got {spec!r}") from None
    else:
        vals = [int(v) for v in spec]
    if len(vals) == 1:
        vals = [1, vals[0], vals[0]]
    if len(vals) != 3:
        raise ValueError(f"batch must be MIN:OPT:MAX (three integers) like 1:4:8, got {spec!r}")
    lo, opt, hi = vals
    if not 1 <= lo <= opt <= hi:
        raise ValueError(f"batch needs 1 <= MIN <= OPT <= MAX, got {lo}:{opt}:{hi}")
    return lo, opt, hi


def sidecar_path(engine_path: str | os.PathLike) -> Path:
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def default_timing_cache(platform: dict | None = None) -> Path:
    """The timing cache for ``platform`` (:func:`current_platform`): one file per GPU model,
    compute capability and TensorRT version."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    if platform is None:
        return Path(base) / "gnr-anime" / "trt-timing.cache"
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", platform["gpu_name"]).strip("-").lower()
    cc = platform["compute_capability"].replace(".", "")
    return Path(base) / "gnr-anime" / f"trt-timing-{gpu}-sm{cc}-trt{platform['tensorrt_version']}.cache"


def current_platform(device_index: int = 0) -> dict:
    """TensorRT version and the GPU this process sees."""
    trt = import_tensorrt()
    import torch

    if not torch.cuda.is_available():
        raise CudaUnavailableError("TensorRT needs an NVIDIA GPU, and PyTorch sees none "
                                   "(torch.cuda.is_available() is False)")
    major, minor = torch.cuda.get_device_capability(device_index)
    return {"tensorrt_version": trt.__version__,
            "gpu_name": torch.cuda.get_device_name(device_index),
            "compute_capability": f"{major}.{minor}"}


def rebuild_command(sidecar: dict, engine_path) -> str:
    lo, opt, hi = sidecar.get("batch", (1, 4, 8))
    onnx = sidecar.get("onnx", "MODEL.onnx")
    fp16 = " --fp16" if sidecar.get("fp16") else ""
    return f"python -m export trt {onnx} -o {engine_path}{fp16} --batch {lo}:{opt}:{hi}"


def read_sidecar(engine_path: str | os.PathLike) -> dict:
    engine_path = Path(engine_path)
    side = sidecar_path(engine_path)
    if not engine_path.exists():
        raise FileNotFoundError(f"TensorRT engine not found: {engine_path}")
    if not side.exists():
        raise EngineMismatchError(
            f"{engine_path} has no sidecar {side.name} saying which TensorRT version and GPU built "
            "it, so it cannot be checked; rebuild it here with `python -m export trt MODEL.onnx "
            f"-o {engine_path} --fp16 --batch 1:4:8`")
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError) as e:
        raise EngineMismatchError(f"{side} is unreadable ({e}); rebuild the engine with "
                                  "`python -m export trt`") from None


def check_engine(engine_path: str | os.PathLike, platform: dict | None = None,
                 device_index: int = 0) -> dict:
    """The sidecar of ``engine_path`` if the engine was built by this TensorRT version for the
    model of GPU ``device_index``; otherwise :class:`EngineMismatchError` naming both and the
    rebuild command."""
    side = read_sidecar(engine_path)
    here = platform if platform is not None else current_platform(device_index)
    problems = []
    if side.get("tensorrt_version") != here["tensorrt_version"]:
        problems.append(f"TensorRT {side.get('tensorrt_version')} (this machine has "
                        f"{here['tensorrt_version']})")
    if side.get("gpu_name") != here["gpu_name"]:
        problems.append(f"GPU {side.get('gpu_name')} (this machine has {here['gpu_name']})")
    elif side.get("compute_capability") != here.get("compute_capability", side.get("compute_capability")):
        problems.append(f"compute capability {side.get('compute_capability')} (this GPU: "
                        f"{here.get('compute_capability')})")
    if problems:
        raise EngineMismatchError(
            f"{engine_path} was built for " + " and ".join(problems) + ". TensorRT engines only "
            "run with the TensorRT version and GPU they were built with; rebuild it here with: "
            + rebuild_command(side, engine_path))
    return side


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------
def _make_logger(trt, log_file, verbose: bool):
    class BuildLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.lines = 0

        def log(self, severity, msg):
            if severity == trt.ILogger.Severity.VERBOSE and not verbose:
                return
            name = str(severity).split(".")[-1]
            log_file.write(f"[{name}] {msg}\n")
            self.lines += 1
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR,
                            trt.ILogger.Severity.WARNING) or verbose:
                print(f"TensorRT {name}: {msg}", file=sys.stderr)

    return BuildLogger()


def _pin_style_path_fp32(trt, network) -> int:
    """Pin layers whose outputs are all at most 2-D (the style MLP, modulation and
    demodulation coefficients) to float32. Returns how many were pinned."""
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if outs and all(o is not None and len(o.shape) <= 2 and o.dtype in (trt.float32, trt.float16)
                        for o in outs):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            pinned += 1
    return pinned


def style_profile(lo: int, opt: int, hi: int) -> tuple[int, int, int]:
    """Rows of the ``style`` input in the profile: one row for the whole batch (what the engine
    binds) up to one per crop."""
    return 1, 1, hi


def attach_timing_cache(config, cache_path: Path) -> str:
    """Attach the timing cache stored at ``cache_path`` (or a fresh one) to the builder config;
    returns what happened, for the build log. A file TensorRT cannot read, or a cache made for
    another GPU or TensorRT version, is replaced by a fresh cache."""
    data, note = b"", "none yet: a new one"
    if cache_path.exists():
        try:
            data = cache_path.read_bytes()
        except OSError as e:
            note = f"unreadable ({e.strerror or e}): a new one"
    if data:
        try:
            cache = config.create_timing_cache(data)
        except Exception as e:  # noqa: BLE001 - TensorRT raises plain RuntimeError/TypeError
            cache, note = None, f"not a TensorRT timing cache ({one_line(e)}): a new one"
        else:
            if cache is None:
                note = "TensorRT could not read it: a new one"
            elif config.set_timing_cache(cache, ignore_mismatch=False):
                return f"reused ({len(data)} bytes)"
            else:
                note = "made for another GPU or TensorRT version: a new one"
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        return note + "; TensorRT could not create a timing cache: building without one"
    return note


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike, *, fp16: bool = True,
                 batch: str | Sequence[int] = (1, 4, 8), timing_cache: str | os.PathLike | None = None,
                 workspace_gb: float = 4.0, log_path: str | os.PathLike | None = None,
                 verbose: bool = False, device_index: int = 0) -> dict:
    """Build ``onnx_path`` into a serialized TensorRT engine at ``engine_path`` (atomically),
    with its sidecar JSON and build log. Returns the sidecar dict."""
    trt = import_tensorrt()
    from .onnx import STYLE_NAME, read_info

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.exists():
        raise FileNotFoundError(f"ONNX model not found: {onnx_path}")
    lo, opt, hi = parse_batch_spec(batch)
    if workspace_gb <= 0:
        raise ValueError(f"workspace must be > 0 GB, got {workspace_gb}")
    platform = current_platform(device_index)
    info = read_info(onnx_path)
    log_path = Path(log_path) if log_path else engine_path.with_name(engine_path.name + ".build.log")
    cache_path = Path(timing_cache) if timing_cache else default_timing_cache(platform)
    t0 = time.perf_counter()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log_file:
        log_file.write(f"# gnr-anime TensorRT build {datetime.now(timezone.utc).isoformat()}\n"
                       f"# onnx={onnx_path} engine={engine_path} fp16={fp16} batch={lo}:{opt}:{hi} "
                       f"{platform}\n")
        logger = _make_logger(trt, log_file, verbose)
        builder = trt.Builder(logger)
        fp16_graph = info is not None and info.precision == "fp16"
        flags_enum = trt.NetworkDefinitionCreationFlag
        strongly_typed = fp16_graph and hasattr(flags_enum, "STRONGLY_TYPED")
        flags = (1 << int(flags_enum.STRONGLY_TYPED)) if strongly_typed else 0
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise BuildError(f"TensorRT could not parse {onnx_path}: " + "; ".join(errors[:5])
                             + f" (full log: {log_path})")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
        fast_fp16 = getattr(builder, "platform_has_fast_fp16", None)
        if fast_fp16 is None:                  # removed in newer TensorRT: Volta or newer has it
            fast_fp16 = float(platform["compute_capability"]) >= 7.0
        if (fp16 or fp16_graph) and not fast_fp16:
            raise BuildError(f"{platform['gpu_name']} has no fast FP16 (TensorRT says "
                             "platform_has_fast_fp16 is False): build without --fp16 from an fp32 "
                             "graph")
        pinned = 0
        if fp16 and not strongly_typed:
            if not hasattr(trt.BuilderFlag, "FP16"):
                raise BuildError("this TensorRT builds FP16 only from an fp16 graph: export with "
                                 "`python -m export onnx --fp16` and build that")
            config.set_flag(trt.BuilderFlag.FP16)
            pinned = _pin_style_path_fp32(trt, network)
            flag = getattr(trt.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS", None)
            if pinned and flag is not None:
                config.set_flag(flag)
        tf32 = getattr(trt.BuilderFlag, "TF32", None)
        if tf32 is not None:
            config.clear_flag(tf32)
        profile = builder.create_optimization_profile()
        inputs = {}
        for i in range(network.num_inputs):
            t = network.get_input(i)
            shape = tuple(t.shape)
            if shape[0] != -1:
                raise BuildError(f"input {t.name} has a fixed batch {shape[0]}; export with a "
                                 "dynamic batch axis (python -m export onnx does)")
            rest = shape[1:]
            if any(d < 0 for d in rest):
                raise BuildError(f"input {t.name} has dynamic dims besides the batch: {shape}")
            shapes = style_profile(lo, opt, hi) if t.name == STYLE_NAME else (lo, opt, hi)
            dims = [(b, *rest) for b in shapes]
            profile.set_shape(t.name, *dims)
            inputs[t.name] = [list(d) for d in dims]
        config.add_optimization_profile(profile)
        cache_note = attach_timing_cache(config, cache_path)
        log_file.write(f"# timing cache {cache_path}: {cache_note}\n")
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BuildError(f"TensorRT failed to build {onnx_path}; see {log_path}")
        write_bytes_atomic(engine_path, bytes(serialized))
        cache = config.get_timing_cache()
        if cache is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(cache_path, bytes(cache.serialize()))
        seconds = time.perf_counter() - t0
        log_file.write(f"# built in {seconds:.1f} s\n")
    sidecar: dict[str, Any] = {
        "format_version": SIDECAR_VERSION, **platform,
        "onnx": str(onnx_path), "onnx_sha256": sha256_file(onnx_path),
        "fp16": bool(fp16 or fp16_graph), "tf32": False, "strongly_typed": bool(strongly_typed),
        "layers_pinned_fp32": pinned, "batch": [lo, opt, hi], "inputs": inputs,
        "workspace_gb": workspace_gb, "timing_cache": str(cache_path), "log": str(log_path),
        "built": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 1),
        "gnr_info": json.loads(info.to_json()) if info is not None else None,
    }
    with atomic_path(sidecar_path(engine_path)) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=1))
    return sidecar
