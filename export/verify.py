"""Parity of exported models against the PyTorch model, on real aligned faces.

For each model file and each backend available here (onnxruntime CPU/CUDA for ``.onnx``,
TensorRT for ``.engine``, plus the baked PyTorch engine on CPU/CUDA), the output on the face crops
is compared with ``G.decode(G.encode(x).content, style)`` in float32: max and mean absolute
error and PSNR. Tolerances (the issue's): float32 paths max abs error <= 1e-4; float16 paths
PSNR >= 40 dB; int8 PSNR >= 30 dB; uint8 I/O (pixels rounded to 8 bits) PSNR >= 40 dB.

TF32: on Ampere and newer GPUs onnxruntime's CUDA provider, TensorRT and cuDNN run float32
convolutions as TF32 by default (about 1.5e-3 relative error). Every float32 path of this
product turns TF32 off instead (the CUDA provider's ``use_tf32=0``, TensorRT's TF32 builder flag
cleared, ``cudnn.allow_tf32`` off inside the torch engine), so the float32 bound stays 1e-4 on
every GPU; fp16 is the fast path.

PSNR uses the peak-to-peak range of the images, ``max(2, range of the float32 reference)``: 2 for
a trained model's [-1, 1] output (the usual definition), the reference's own range for a model
whose outputs overshoot (random weights do).

Face crops: aligned face crops given as images or a ``.npy`` array, or by default crops of the
astronaut photo that ships with scikit-image (a real, public-domain face), cut with the crop
template's eye positions.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from training.images import read_image_rgb
from training.messages import one_line
from training.pixels import image_to_batch
from training.style import StyleCode

__all__ = ["Metrics", "compare", "psnr", "astronaut_crops", "load_face_crops", "verify",
           "VerifyResult", "tolerance", "reference_output", "ASTRONAUT_FACE_BOX"]

# The astronaut photo (skimage.data.astronaut(), 512 x 512): MediaPipe face mesh puts her eye
# centres (corner midpoints) at (204.3, 102.3) and (246.4, 104.6). The crop template puts the
# eyes at (92.5, 92.5) and (163.5, 92.5) of a 256 crop, 71 px apart: scale 71 / 42.2, so the
# aligned crop is this box (top, left, side) of the photo.
ASTRONAUT_FACE_BOX = (49, 149, 152)


@dataclass(frozen=True)
class Metrics:
    max_abs: float
    mean_abs: float
    psnr_db: float

    def __str__(self) -> str:
        return f"max {self.max_abs:.3g}, mean {self.mean_abs:.3g}, PSNR {self.psnr_db:.1f} dB"


def psnr(ref, out, peak: float | None = None) -> float:
    ref = torch.as_tensor(ref, dtype=torch.float64)
    out = torch.as_tensor(out, dtype=torch.float64)
    if peak is None:
        peak = max(2.0, float(ref.max() - ref.min()))
    mse = float(((ref - out) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


def compare(ref, out) -> Metrics:
    ref = torch.as_tensor(ref).detach().cpu().double()
    out = torch.as_tensor(out).detach().cpu().double()
    if ref.shape != out.shape:
        raise ValueError(f"shapes differ: reference {tuple(ref.shape)}, output {tuple(out.shape)}")
    err = (ref - out).abs()
    return Metrics(float(err.max()), float(err.mean()), psnr(ref, out))


def tolerance(precision: str, io: str = "float") -> tuple[str, float]:
    """("max_abs", bound) or ("psnr_db", floor) for a precision / I/O mode."""
    if precision == "int8":
        return "psnr_db", 30.0
    if precision in ("fp16", "bf16") or io != "float":
        return "psnr_db", 40.0
    return "max_abs", 1e-4


def passes(m: Metrics, tol: tuple[str, float]) -> bool:
    kind, bound = tol
    return m.max_abs <= bound if kind == "max_abs" else m.psnr_db >= bound


# ---------------------------------------------------------------------------------------------
# Faces
# ---------------------------------------------------------------------------------------------
def _to_tensor(img: np.ndarray, size: int) -> torch.Tensor:
    x = image_to_batch(img)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    return x.clamp(-1, 1)


def astronaut_crops(size: int, n: int = 4, seed: int = 0) -> torch.Tensor:
    """``n`` aligned crops of the astronaut's face (N x 3 x size x size in [-1, 1]): the aligned
    crop, its mirror image, then crops jittered by up to 6 % in scale and position (seeded), as
    a tracker's crops wobble. Needs scikit-image (a dev dependency)."""
    try:
        from skimage import data
    except ImportError:
        raise RuntimeError("the default face crops come from scikit-image's astronaut photo "
                           "(pip install scikit-image), or give aligned crops with --faces") from None
    img = data.astronaut()
    top, left, side = ASTRONAUT_FACE_BOX
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i < 2:
            t, l, s = top, left, side
        else:
            s = int(round(side * rng.uniform(0.94, 1.06)))
            t = int(round(top + side * rng.uniform(-0.06, 0.06) - (s - side) / 2))
            l = int(round(left + side * rng.uniform(-0.06, 0.06) - (s - side) / 2))
        x = _to_tensor(img[t:t + s, l:l + s], size)
        out.append(x.flip(-1) if i % 2 == 1 else x)
    return torch.cat(out)


def load_face_crops(paths: Sequence[str | os.PathLike], size: int) -> torch.Tensor:
    """Aligned face crops from image files (resized to ``size``) or ``.npy`` arrays (N x 3 x S x S
    floats in [-1, 1], or N x S x S x 3 uint8)."""
    crops = []
    for p in map(Path, paths):
        if p.suffix.lower() == ".npy":
            if not p.exists():
                raise FileNotFoundError(f"face crops not found: {p}")
            arr = np.load(p, allow_pickle=False)
            if arr.dtype == np.uint8 and arr.ndim == 4 and arr.shape[-1] == 3:
                crops += [_to_tensor(a, size) for a in arr]
            elif arr.ndim == 4 and arr.shape[1] == 3 and np.issubdtype(arr.dtype, np.floating):
                x = torch.from_numpy(arr.astype(np.float32))
                if x.shape[-1] != size:
                    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                      align_corners=False)
                crops.append(x)
            else:
                raise ValueError(f"{p}: expected N x 3 x S x S floats in [-1, 1] or N x S x S x 3 "
                                 f"uint8, got {arr.dtype} {arr.shape}")
        else:
            crops.append(_to_tensor(read_image_rgb(p), size))
    if not crops:
        raise ValueError("no face crops given")
    return torch.cat(crops)


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyResult:
    model: str
    backend: str
    metrics: Metrics | None
    tolerance: tuple[str, float] | None
    passed: bool | None
    note: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        return d


@torch.no_grad()
def reference_output(G, crops: torch.Tensor, style: StyleCode) -> torch.Tensor:
    """The PyTorch float32 model: ``G.decode(G.encode(x).content, style)``."""
    G = G.float().eval()
    dev = next(G.parameters()).device
    x = crops.to(dev, torch.float32)
    return G.decode(G.encode(x).content, style.tensor(dev)).cpu()


def verify(models: Sequence[str | os.PathLike], checkpoint, *, faces: torch.Tensor | None = None,
           style: StyleCode | None = None, which: str = "G_A2B_ema", torch_backends: bool = True,
           log: Callable[[str], None] = lambda m: None) -> list[VerifyResult]:
    """Run every model file on every backend available here against the PyTorch model."""
    from .errors import BackendUnavailableError, EngineError, EngineMismatchError
    from realtime.engines.select import Capabilities
    from training.checkpoint import load_generator
    from training.networks import Generator

    from .onnx import read_info
    from .tensorrt import read_sidecar

    G = checkpoint if isinstance(checkpoint, Generator) else \
        load_generator(checkpoint, which=which, device="cpu")
    caps = Capabilities.detect()
    size = G.size
    x = faces if faces is not None else astronaut_crops(size)
    results: list[VerifyResult] = []
    refs: dict[tuple, torch.Tensor] = {}

    def ref_for(st: StyleCode) -> torch.Tensor:
        key = st.vector
        if key not in refs:
            refs[key] = reference_output(G, x, st)
        return refs[key]

    def run(model_name, backend, make, st, precision, io="float"):
        tol = tolerance(precision, io)
        try:
            eng = make()
        except (BackendUnavailableError, EngineMismatchError, ImportError) as e:
            results.append(VerifyResult(model_name, backend, None, tol, None,
                                        f"skipped: {one_line(e)}"))
            return
        try:
            if hasattr(eng, "set_style"):
                eng.set_style(st)
            out = eng(x.to(eng.device)).float().cpu()      # .cpu() waits for the device
        except (RuntimeError, EngineError) as e:           # CUDA errors are RuntimeError
            results.append(VerifyResult(model_name, backend, None, tol, False,
                                        f"failed to run: {one_line(e)}"))
            log(f"{model_name} {backend}: failed to run: {e}")
            return
        finally:
            eng.close()
        m = compare(ref_for(st), out)
        results.append(VerifyResult(model_name, backend, m, tol, passes(m, tol),
                                    "" if eng.name.startswith(backend) else f"ran as {eng.name}"))
        log(f"{model_name} {backend}: {m}")

    default_style = style
    for path in map(Path, models):
        if not path.exists():
            raise FileNotFoundError(f"model not found: {path}")
        if path.suffix.lower() == ".onnx":
            info = read_info(path)
            st = (info.style_code if info and info.style else None) or style or StyleCode.from_seed(0)
            default_style = default_style or st
            prec, io = (info.precision, info.io) if info else ("fp32", "float")
            if info and info.size != size:
                raise ValueError(f"{path} is a {info.size}x{info.size} model, the checkpoint's "
                                 f"generator is {size}x{size}")
            from realtime.engines.onnxruntime import open_onnx
            for dev in ["cpu"] + (["cuda"] if caps.ort_cuda else []):
                run(path.name, f"onnxruntime-{dev}", lambda d=dev: open_onnx(path, device=d, style=st),
                    st, prec, io)
            if not caps.ort_cuda:
                results.append(VerifyResult(path.name, "onnxruntime-cuda", None, None, None,
                                            "skipped: no CUDA GPU / onnxruntime-gpu here"))
        else:
            from realtime.engines.tensorrt import open_tensorrt
            try:
                side = read_sidecar(path)
            except EngineError:
                side = {}
            gi = side.get("gnr_info") or {}
            st = (StyleCode.from_dict(gi["style"]) if gi.get("style") else None) or style or \
                StyleCode.from_seed(0)
            default_style = default_style or st
            prec = "fp16" if side.get("fp16", True) else gi.get("precision", "fp32")
            run(path.name, "tensorrt", lambda: open_tensorrt(path, style=st), st, prec,
                gi.get("io", "float"))
    if torch_backends:
        from realtime.engines.torch import TorchEngine
        st = default_style or StyleCode.from_seed(0)
        run("checkpoint", "torch-cpu fp32", lambda: TorchEngine(G, st, device="cpu"), st, "fp32")
        if caps.cuda:
            run("checkpoint", "torch-cuda fp16", lambda: TorchEngine(G, st, device="cuda"), st, "fp16")
        else:
            results.append(VerifyResult("checkpoint", "torch-cuda fp16", None, None, None,
                                        "skipped: no CUDA GPU here"))
    return results
