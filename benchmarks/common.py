"""Timing helpers shared by the benchmarks: percentiles, synchronised timing of one call (with
CUDA events on a GPU), round-robin timing of several variants, machine information, atomic JSON.

Timing rules (the latency benchmark's engine section, benchmarks/latency_engines.py, follows them):

* every variant is called ``warmup`` times before it is timed (allocations, oneDNN primitives,
  cuDNN autotuning with ``cudnn.benchmark``, CUDA graph capture all happen there);
* on CUDA the device is synchronised before the clock starts and after the call, and the GPU
  time of the same call is taken with CUDA events recorded on the current stream; the reported
  time is the synchronised wall time (what a caller waits), the event time is kept beside it;
* variants are timed in turns (round-robin), so drift from other jobs on a shared machine hits
  them all alike instead of whichever happened to run last.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from training.fileio import atomic_path
from training.messages import one_line

PERCENTILES = (50, 95, 99)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def percentiles(values_ms: Iterable[float]) -> dict:
    """p50/p95/p99 (numpy's linear interpolation), mean, min, max and count of times in ms.
    An empty input gives NaN statistics and ``n = 0`` (JSON writes them as null)."""
    v = np.asarray(list(values_ms), dtype=np.float64)
    if v.size == 0:
        nan = float("nan")
        return {"p50": nan, "p95": nan, "p99": nan, "mean": nan, "min": nan, "max": nan, "n": 0}
    p = np.percentile(v, PERCENTILES)
    return {"p50": float(p[0]), "p95": float(p[1]), "p99": float(p[2]), "mean": float(v.mean()),
            "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}


def ratio(numerator, denominator) -> float | None:
    """``numerator / denominator``, or None when either is missing, not finite, or the
    denominator is not positive."""
    try:
        a, b = float(numerator), float(denominator)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(a) and np.isfinite(b)) or b <= 0:
        return None
    return a / b


def error_line(e: BaseException) -> str:
    """``Type: first line of the message``: how a benchmark records a variant that failed."""
    line = one_line(e)
    return line if line == type(e).__name__ else f"{type(e).__name__}: {line}"


# ---------------------------------------------------------------------------------------------
# Timing one call
# ---------------------------------------------------------------------------------------------
def is_cuda(device) -> bool:
    return str(device).startswith("cuda")


def synchronize(device) -> None:
    """Wait for every kernel queued on ``device`` (a no-op on the CPU)."""
    if is_cuda(device):
        import torch
        torch.cuda.synchronize(device)


@dataclass
class Sample:
    wall_ms: float
    gpu_ms: float | None = None


def time_call(fn: Callable[[], object], device="cpu") -> Sample:
    """Run ``fn()`` once and time it. On CUDA: synchronise, record a start event, call, record an
    end event, synchronise; ``wall_ms`` is the host time across that (the latency a caller sees)
    and ``gpu_ms`` the events' elapsed time on the current stream. Backends that run on a stream
    of their own (onnxruntime's CUDA provider) synchronise before returning, so the wall time
    covers them; their event time then only bounds the work from below."""
    if not is_cuda(device):
        t0 = time.perf_counter()
        fn()
        return Sample((time.perf_counter() - t0) * 1000.0)
    import torch
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize(device)
    wall = (time.perf_counter() - t0) * 1000.0
    return Sample(wall, float(start.elapsed_time(end)))


@dataclass
class Timed:
    """The samples of one variant in a round-robin block."""
    name: str
    wall_ms: list[float] = field(default_factory=list)
    gpu_ms: list[float] = field(default_factory=list)
    error: str | None = None


def round_robin(variants: Sequence[tuple[str, Callable[[], object]]], *, device="cpu",
                warmup: int = 1, reps: int = 10, min_reps: int = 3,
                max_seconds: float | None = None,
                on_error: Callable[[str, BaseException], bool] | None = None) -> dict[str, Timed]:
    """Time ``variants`` (name, zero-argument callable) in turns: ``warmup`` untimed rounds, then
    up to ``reps`` timed rounds, stopping early after ``min_reps`` rounds once ``max_seconds`` of
    timed work have passed. A variant that raises is dropped from later rounds with its error
    recorded when ``on_error(name, exc)`` returns True (else the exception propagates)."""
    out = {name: Timed(name) for name, _ in variants}
    active = list(variants)

    def call(name, fn, record: bool) -> None:
        try:
            s = time_call(fn, device)
        except Exception as e:  # noqa: BLE001 - decided by on_error
            if on_error is None or not on_error(name, e):
                raise
            out[name].error = error_line(e)
            active[:] = [(n, f) for n, f in active if n != name]
            return
        if record:
            out[name].wall_ms.append(s.wall_ms)
            if s.gpu_ms is not None:
                out[name].gpu_ms.append(s.gpu_ms)

    for _ in range(max(0, warmup)):
        for name, fn in list(active):
            call(name, fn, record=False)
    t0 = time.perf_counter()
    for i in range(max(1, reps)):
        for name, fn in list(active):
            call(name, fn, record=True)
        if max_seconds is not None and i + 1 >= min_reps and time.perf_counter() - t0 > max_seconds:
            break
    return out


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - an optional library that is absent or broken
        return None
    return str(getattr(mod, "__version__", "unknown"))


def _nvidia_driver() -> str | None:
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
        for tok in text.split():
            if tok.count(".") >= 1 and tok.replace(".", "").isdigit():
                return tok
    except OSError:
        pass
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def machine_info(threads: int | None = None) -> dict:
    """CPU model and cores, memory, GPU name and driver, library versions, load average."""
    import torch
    info: dict = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads if threads is not None else torch.get_num_threads(),
        "memory_gb": None,
        "loadavg": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu": None, "gpu_count": 0, "gpu_memory_gb": None, "gpu_capability": None, "driver": None,
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages * size / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_count=torch.cuda.device_count(),
                    gpu_memory_gb=round(p.total_memory / 2 ** 30, 1),
                    gpu_capability=f"{p.major}.{p.minor}", driver=_nvidia_driver())
    libs = {}
    for mod in ("numpy", "onnx", "onnxruntime", "tensorrt", "av", "mediapipe", "cv2", "matplotlib"):
        libs[mod] = _version(mod)
    try:
        import onnxruntime as ort
        info["onnxruntime_providers"] = list(ort.get_available_providers())
    except Exception:  # noqa: BLE001
        info["onnxruntime_providers"] = []
    try:
        import av
        info["ffmpeg"] = {k: ".".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
                          for k, v in getattr(av, "library_versions", {}).items()
                          if k in ("libavcodec", "libavformat")}
    except Exception:  # noqa: BLE001
        info["ffmpeg"] = {}
    info["libraries"] = libs
    return info


def describe_machine(m: dict) -> str:
    """One line: CPU, cores, GPU and driver."""
    gpu = f"{m['gpu']} (driver {m.get('driver') or '?'}, CUDA {m.get('cuda') or '?'})" \
        if m.get("gpu") else "no GPU"
    cores = m.get("cpu_affinity") or m.get("cpu_count")
    return f"{m.get('cpu')}, {cores} cores ({m.get('threads')} threads used), {gpu}"


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def json_safe(obj):
    """JSON-safe: NaN/inf -> None, tuples -> lists, numpy scalars -> Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as JSON atomically (temporary file beside it, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(json_safe(data), f, indent=1, allow_nan=False)
            f.write("\n")
    return path


def read_json(path: str | os.PathLike) -> dict:
    with open(path) as f:
        return json.load(f)
