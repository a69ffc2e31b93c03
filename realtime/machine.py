"""What this machine has, as ``python -m realtime.doctor`` reports it: the GPUs and their driver,
CUDA and cuDNN as PyTorch sees them, onnxruntime (its providers, and which of its
distributions are installed), TensorRT, torch.compile's Triton, NVENC really opening at
1920x1080, MediaPipe's bundled face models and PyAV's FFmpeg.

Every probe returns a plain dict (JSON-ready) and never raises: a probe that fails reports
``{"error": "..."}``. Nothing heavy happens at import time.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from training.messages import one_line

__all__ = ["collect", "describe", "gpu_facts", "driver_version", "onnxruntime_facts",
           "tensorrt_facts", "compile_facts", "encoder_facts", "mediapipe_facts", "pyav_facts"]

ENCODERS = ("h264_nvenc", "hevc_nvenc", "libx264")
MEDIAPIPE_MODELS = ("modules/face_detection/face_detection_short_range.tflite",
                    "modules/face_detection/face_detection_full_range_sparse.tflite",
                    "modules/face_landmark/face_landmark_with_attention.tflite")


def _guard(probe: Callable[[], dict]) -> dict:
    try:
        return probe()
    except Exception as e:  # noqa: BLE001 - a probe reports its failure instead of raising
        return {"error": one_line(e)}


def driver_version() -> str | None:
    """The NVIDIA driver version (nvidia-smi, else /proc/driver/nvidia/version), or None."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout
            if out.strip():
                return out.strip().splitlines()[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    proc = Path("/proc/driver/nvidia/version")
    if proc.exists():
        m = re.search(r"Kernel Module\s+(\S+)", proc.read_text(errors="replace"))
        if m:
            return m.group(1)
    return None


def gpu_facts() -> dict:
    """PyTorch's build and the CUDA GPUs it sees."""
    import torch

    cuda = torch.cuda.is_available()
    out = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if cuda else None, "cuda": cuda, "gpus": [],
           "driver": driver_version() if (cuda or torch.version.cuda) else None}
    if cuda:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            with torch.cuda.device(i):
                try:
                    bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
                except TypeError:
                    bf16 = torch.cuda.is_bf16_supported()
            out["gpus"].append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                                "memory_gb": round(p.total_memory / 2 ** 30, 1),
                                "bf16": bool(bf16)})
    return out


def onnxruntime_facts() -> dict:
    """onnxruntime's version, providers, the distributions providing it, and what is wrong."""
    import torch

    from .engines.onnxruntime import onnxruntime_distributions, onnxruntime_install_problem

    dists = onnxruntime_distributions()
    out = {"distributions": dists,
           "problem": onnxruntime_install_problem(dists, cuda_torch=torch.version.cuda is not None)}
    try:
        import onnxruntime as ort
    except ImportError as e:
        return {**out, "error": f"not importable ({e})"}
    out.update(version=ort.__version__, providers=list(ort.get_available_providers()))
    try:
        from onnxruntime.capi import build_and_package_info as info
        out.update(package=getattr(info, "package_name", None),
                   cuda_version=getattr(info, "cuda_version", None),
                   cudnn_version=getattr(info, "cudnn_version", None))
    except ImportError:
        pass
    major = (torch.version.cuda or "").split(".")[0]
    built = (out.get("cuda_version") or "").split(".")[0]
    if major and built and major != built and not out["problem"]:
        out["problem"] = (f"onnxruntime-gpu {out['version']} is built for CUDA {built}, PyTorch "
                          f"for CUDA {major}: install the onnxruntime-gpu build for CUDA {major}")
    return out


def tensorrt_facts() -> dict:
    try:
        import tensorrt
    except ImportError as e:
        return {"version": None, "reason": f"import tensorrt failed ({e})"}
    return {"version": tensorrt.__version__}


def compile_facts() -> dict:
    """Whether torch.compile can build CUDA kernels here (Triton)."""
    from importlib import metadata

    try:
        from torch.utils._triton import has_triton
        ok = bool(has_triton())
    except ImportError:
        ok = False
    try:
        version = metadata.version("triton")
    except metadata.PackageNotFoundError:
        version = None
    return {"triton": version, "cuda_kernels": ok}


def encoder_facts(width: int = 1920, height: int = 1080) -> dict:
    """Which video encoders really open at ``width`` x ``height`` (NVENC needs the hardware)."""
    from .sinks import encoder_opens

    return {"size": [width, height], **{c: bool(encoder_opens(c, width, height)) for c in ENCODERS}}


def mediapipe_facts() -> dict:
    from importlib import metadata, util

    version = metadata.version("mediapipe")
    spec = util.find_spec("mediapipe")
    root = Path(spec.origin).parent if spec and spec.origin else None
    missing = [m for m in MEDIAPIPE_MODELS if root is None or not (root / m).exists()]
    return {"version": version, "face_models_bundled": not missing, "missing": missing}


def pyav_facts() -> dict:
    import av

    libs = {k: ".".join(map(str, v)) for k, v in getattr(av, "library_versions", {}).items()}
    return {"version": av.__version__, "libraries": libs}


def collect(encoders: bool = True) -> dict:
    """Every probe, each guarded."""
    out = {"python": sys.version.split()[0], "platform": f"{platform.system()} {platform.machine()}",
           "cpu_cores": os.cpu_count(),
           "gpu": _guard(gpu_facts), "onnxruntime": _guard(onnxruntime_facts),
           "tensorrt": _guard(tensorrt_facts), "torch_compile": _guard(compile_facts),
           "mediapipe": _guard(mediapipe_facts), "pyav": _guard(pyav_facts)}
    if encoders:
        out["encoders"] = _guard(encoder_facts)
    return out


def describe(f: dict) -> list[str]:
    """The facts as short lines for a terminal."""
    g = f["gpu"]
    lines = [f"python {f['python']}, {f['platform']}, {f['cpu_cores']} CPU cores"]
    if "error" in g:
        lines.append(f"torch: {g['error']}")
    else:
        build = f"CUDA {g['torch_cuda']} build" if g["torch_cuda"] else "CPU build"
        lines.append(f"torch {g['torch']} ({build}), cuDNN {g['cudnn'] or '-'}, "
                     f"driver {g['driver'] or '-'}")
        if not g["cuda"]:
            lines.append("GPU: no CUDA (torch.cuda.is_available() is False): the CPU paths only")
        for d in g["gpus"]:
            lines.append(f"GPU cuda:{d['index']}: {d['name']}, compute {d['capability']}, "
                         f"{d['memory_gb']} GB, native bf16 {'yes' if d['bf16'] else 'no'}")
    o = f["onnxruntime"]
    dists = ", ".join(f"{k} {v}" for k, v in o.get("distributions", {}).items()) or "none"
    if "version" in o:
        cuda = f", built for CUDA {o['cuda_version']}" if o.get("cuda_version") else ""
        lines.append(f"onnxruntime {o['version']}{cuda}: providers "
                     f"{', '.join(p.replace('ExecutionProvider', '') for p in o['providers'])}; "
                     f"installed: {dists}")
    else:
        lines.append(f"onnxruntime: {o.get('error')}; installed: {dists}")
    t = f["tensorrt"]
    lines.append(f"TensorRT {t['version']}" if t.get("version") else
                 f"TensorRT: not installed ({t.get('reason') or t.get('error')})")
    c = f["torch_compile"]
    lines.append(f"torch.compile CUDA kernels: {'yes' if c.get('cuda_kernels') else 'no'} "
                 f"(Triton {c.get('triton') or 'not installed'})")
    e = f.get("encoders")
    if e and "error" not in e:
        w, h = e["size"]
        lines.append(f"video encoders opening at {w}x{h}: " + ", ".join(
            f"{k} {'yes' if e[k] else 'no'}" for k in ENCODERS))
    m = f["mediapipe"]
    lines.append(f"MediaPipe {m['version']}: face models "
                 f"{'bundled' if m['face_models_bundled'] else 'MISSING ' + str(m['missing'])}"
                 if "version" in m else f"MediaPipe: {m['error']}")
    a = f["pyav"]
    if "version" in a:
        libs = ", ".join(f"{k} {v}" for k, v in a["libraries"].items()
                         if k in ("libavcodec", "libavformat"))
        lines.append(f"PyAV {a['version']} ({libs})")
    else:
        lines.append(f"PyAV: {a['error']}")
    return lines
