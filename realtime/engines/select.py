"""Choosing and opening an engine: ``--backend auto|torch|onnxruntime|tensorrt``.

The ``auto`` rule, best first (only backends that can run the given model on the allowed devices
count; each one left out is reported with the reason):

1. ``tensorrt`` — a ``.engine`` file, TensorRT importable, a CUDA GPU, and an engine built by
   this TensorRT version on this GPU model;
2. ``onnxruntime`` on CUDA, ``torch`` on CUDA (fp16 + CUDA graphs) and, where Triton is
   installed, ``torch`` compiled with ``torch.compile`` on CUDA — whichever *measured* fastest
   here (a few timed batches at selection; compiling takes tens of seconds the first time and
   seconds once Inductor's cache holds the model);
3. ``onnxruntime`` on the CPU;
4. ``torch`` on the CPU.

A checkpoint runs under torch directly; for onnxruntime it is exported once to an ONNX cache
(``$XDG_CACHE_HOME/gnr-anime/onnx``, keyed by the checkpoint's sha256, the style and the layout),
which takes seconds. A student checkpoint (:mod:`training.student`) is cached for the CPU as an
int8 graph, calibrated on the astronaut's face crops (:func:`export.verify.astronaut_crops`):
about twice the speed of its fp32 graph on a 2-core CPU, and close to it (the demo student's
int8 graph is 48 dB PSNR from its fp32 graph) — far closer than the student is to its teacher.
A locked-style student asked for another style, or for live style changes, is refused before
any backend is tried. ``--device cpu`` allows only CPU backends, ``cuda[:N]`` only CUDA ones
(an error where there is no CUDA), ``auto`` both. The choice and the reasons are returned as
text for the app to print.

``auto`` falls back: a candidate that fails to open, or raises on its first (timed) run — a CUDA
error, out of memory, an onnxruntime ``Fail`` — is reported, closed, and the next one is tried
(the next of its tier, then the next tier). Errors about the request itself (a crop size or a
baked style that no backend can change) are raised at once.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from training.device import parse_device
from training.style import StyleCode

from training.messages import one_line

from .base import (BackendUnavailableError, BaseEngine, CudaUnavailableError,
                   EngineRequestError, IdentityEngine, ModelSizeError)

__all__ = ["EngineRequest", "Capabilities", "Candidate", "Selection", "BACKENDS", "rank_candidates",
           "select_backend", "open_engine", "resolve_style", "onnx_cache_dir", "model_kind",
           "is_backend_failure", "check_student_request"]

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


@dataclass
class EngineRequest:
    """What the user asked for (the apps fill it from their command line)."""

    checkpoint: Path | None = None
    engine_file: Path | None = None          # .onnx or .engine
    identity: bool = False
    backend: str = "auto"
    device: str = "cpu"                      # cpu | cuda[:N] | auto
    style_seed: int | None = None
    style_image: Path | None = None
    style_vector: Path | None = None
    dynamic_style: bool = False              # a per-frame set_style (live style changes)
    crop_size: int | None = None             # the aligner's crop size, checked against the model
    max_batch: int = 8
    which: str = "G_A2B_ema"
    onnx_cache: Path | None = None
    threads: int | None = None
    style: StyleCode | None = None           # an already made style (an edited one): wins


@dataclass(frozen=True)
class Capabilities:
    """What this machine can run (detected once; tests build their own)."""

    cuda: bool
    gpu_name: str | None = None
    tensorrt: str | None = None              # version, or None when `import tensorrt` fails
    ort_providers: tuple[str, ...] = ()
    torch_compile: bool = False              # torch.compile can build CUDA kernels (Triton)
    ort_problem: str | None = None           # onnxruntime and onnxruntime-gpu both installed

    @classmethod
    def detect(cls) -> "Capabilities":
        cuda = torch.cuda.is_available()
        gpu = torch.cuda.get_device_name(0) if cuda else None
        try:
            import tensorrt
            trt = tensorrt.__version__
        except ImportError:
            trt = None
        from .onnxruntime import (onnxruntime_distributions, onnxruntime_install_problem,
                                  ort_providers)
        problem = onnxruntime_install_problem(onnxruntime_distributions(),
                                              cuda_torch=torch.version.cuda is not None)
        return cls(cuda=cuda, gpu_name=gpu, tensorrt=trt, ort_providers=ort_providers(),
                   torch_compile=cuda and _has_triton(), ort_problem=problem)

    @property
    def ort_cuda(self) -> bool:
        return self.cuda and "CUDAExecutionProvider" in self.ort_providers and not self.ort_problem


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:        # an older PyTorch
        return False
    return bool(has_triton())


@dataclass(frozen=True)
class Candidate:
    backend: str        # torch | onnxruntime | tensorrt
    device: str         # cpu | cuda[:N]
    tier: int           # 1 best
    note: str = ""
    compiled: bool = False   # torch: torch.compile + CUDA graphs

    @property
    def label(self) -> str:
        return f"{self.backend}{' (compiled)' if self.compiled else ''} on {self.device}"


@dataclass
class Selection:
    chosen: Candidate
    reason: str
    skipped: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


def model_kind(req: EngineRequest) -> str:
    """identity | checkpoint | onnx | engine."""
    if req.identity:
        return "identity"
    if req.engine_file is not None:
        suffix = Path(req.engine_file).suffix.lower()
        if suffix == ".onnx":
            return "onnx"
        if suffix in ENGINE_SUFFIXES:
            return "engine"
        raise ValueError(f"--engine {req.engine_file}: expected an .onnx file (onnxruntime) or "
                         f"a TensorRT {'/'.join(ENGINE_SUFFIXES)} file")
    if req.checkpoint is not None:
        return "checkpoint"
    raise ValueError("no model: give --checkpoint CKPT, --engine FILE, or --model identity")


def _devices(req: EngineRequest, caps: Capabilities) -> tuple[list[str], list[str]]:
    """The devices allowed, and notes on what was excluded."""
    dev = parse_device(req.device or "cpu")
    if dev == "auto":
        return (["cuda", "cpu"] if caps.cuda else ["cpu"]), \
            ([] if caps.cuda else ["CUDA: none here (torch.cuda.is_available() is False)"])
    if dev.startswith("cuda"):
        if not caps.cuda:
            raise CudaUnavailableError(
                f"--device {req.device}: no CUDA GPU is visible to PyTorch "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False); use "
                "--device cpu, or a CUDA build of PyTorch on a machine with an NVIDIA GPU")
        return [dev], []
    return ["cpu"], ["CUDA backends: --device is cpu"]


def rank_candidates(req: EngineRequest, caps: Capabilities) -> tuple[list[Candidate], list[str]]:
    """Backends that can run this model here, best tier first, and why the others cannot."""
    kind = model_kind(req)
    devices, skipped = _devices(req, caps)
    cuda_dev = next((d for d in devices if d.startswith("cuda")), None)
    out: list[Candidate] = []
    if kind == "identity":
        return [Candidate("identity", devices[0], 0, "no network")], skipped
    # tier 1: TensorRT
    if cuda_dev is not None:
        if kind != "engine":
            skipped.append("tensorrt: needs an engine built with `python -m export trt "
                           "model.onnx -o model.engine --fp16` (pass it with --engine)")
        elif caps.tensorrt is None:
            skipped.append("tensorrt: `import tensorrt` fails here")
        else:
            out.append(Candidate("tensorrt", cuda_dev, 1, f"TensorRT {caps.tensorrt}"))
    elif kind == "engine":
        skipped.append("tensorrt: needs a CUDA device")
    # tier 2: CUDA onnxruntime / torch
    if cuda_dev is not None:
        if kind in ("onnx", "checkpoint"):
            if caps.ort_cuda:
                out.append(Candidate("onnxruntime", cuda_dev, 2, "CUDA execution provider"
                                     + (" (checkpoint exported to ONNX)" if kind == "checkpoint" else "")))
            elif caps.ort_problem and caps.cuda:
                skipped.append(f"onnxruntime on CUDA: {caps.ort_problem}")
            else:
                skipped.append("onnxruntime on CUDA: this onnxruntime has no CUDAExecutionProvider "
                               "(install onnxruntime-gpu)")
        if kind == "checkpoint":
            out.append(Candidate("torch", cuda_dev, 2, "fp16, channels_last, CUDA graphs"))
            if caps.torch_compile:
                out.append(Candidate("torch", cuda_dev, 2, "fp16, channels_last, torch.compile "
                                     "+ CUDA graphs", compiled=True))
            else:
                skipped.append("torch (compiled): torch.compile needs Triton for CUDA kernels "
                               "(not importable here)")
        else:
            skipped.append(f"torch: runs a checkpoint, and the model is an exported {kind} file")
    # tiers 3-4: CPU
    if "cpu" in devices:
        if kind in ("onnx", "checkpoint"):
            out.append(Candidate("onnxruntime", "cpu", 3, "CPU execution provider"
                                 + (" (checkpoint exported to ONNX)" if kind == "checkpoint" else "")))
        if kind == "checkpoint":
            out.append(Candidate("torch", "cpu", 4, "fp32 eager"))
        if kind == "engine":
            skipped.append("CPU backends: a TensorRT engine runs on CUDA only")
    return out, skipped


def select_backend(req: EngineRequest, caps: Capabilities,
                   timings_ms: dict[str, float] | None = None) -> Selection | list[Candidate]:
    """Pick the candidate for ``req``. For ``auto`` with two candidates in the best tier, give
    ``timings_ms`` (label -> ms per frame) to decide; without it the tied candidates are
    returned as a list for the caller to measure."""
    if req.backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {list(BACKENDS)}, got {req.backend!r}")
    cands, skipped = rank_candidates(req, caps)
    if cands and cands[0].backend == "identity":
        return Selection(cands[0], "identity model: crops pass through unchanged", skipped)
    if req.backend != "auto":
        mine = [c for c in cands if c.backend == req.backend]
        if not mine:
            why = [s for s in skipped if s.startswith(req.backend)] or \
                [f"it cannot run a {model_kind(req)} model on {req.device}"]
            raise BackendUnavailableError(f"--backend {req.backend}: " + "; ".join(why))
        c = mine[0]
        return Selection(c, f"{c.label} as asked ({c.note})", skipped)
    if not cands:
        raise BackendUnavailableError("no backend can run this model here: " + "; ".join(skipped))
    best = [c for c in cands if c.tier == cands[0].tier]
    if len(best) == 1:
        c = best[0]
        reason = {1: "TensorRT is the fastest backend",
                  2: "the only CUDA backend for this model",
                  3: "no CUDA backend allowed or available; onnxruntime beats PyTorch on the CPU "
                     "(1.2-1.5x the baked model, 1.5-3x the eager one: benchmarks/engines.py)",
                  4: "the only backend left"}[c.tier]
        return Selection(c, f"auto: {c.label} — {reason} ({c.note})", skipped)
    if timings_ms is None:
        return best
    measured = [c for c in best if c.label in timings_ms]
    if not measured:
        raise ValueError(f"no timings for any of {[c.label for c in best]}")
    c = min(measured, key=lambda c: timings_ms[c.label])
    other = ", ".join(f"{lbl} {ms:.2f} ms" for lbl, ms in sorted(timings_ms.items(), key=lambda kv: kv[1]))
    return Selection(c, f"auto: {c.label} — measured fastest here per frame ({other})", skipped,
                     dict(timings_ms))


# ---------------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------------
def resolve_style(req: EngineRequest, latent_dim: int = 8) -> StyleCode | None:
    """The style the request names, or None when it names none."""
    if req.style is not None:
        return req.style
    if req.style_seed is not None:
        return StyleCode.from_seed(req.style_seed, latent_dim)
    if req.style_vector is not None:
        return StyleCode.from_file(req.style_vector, latent_dim)
    if req.style_image is not None:
        if req.checkpoint is None:
            raise ValueError("--style-image needs --checkpoint: the style encoder (G_B2A_ema) "
                             "lives in the checkpoint")
        return StyleCode.from_image(req.style_image, req.checkpoint)
    return None


def onnx_cache_dir(req: EngineRequest | None = None) -> Path:
    if req is not None and req.onnx_cache is not None:
        return Path(req.onnx_cache)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gnr-anime" / "onnx"


def _cached_onnx(req: EngineRequest, style: StyleCode | None, device: str,
                 log: Callable[[str], None]) -> Path:
    """Export the checkpoint once for onnxruntime on ``device`` (cached by content). A student
    on the CPU is cached as int8 (:func:`_student_int8`), its fast and close form."""
    from training.fileio import sha256_file
    from training.student import is_student_file
    from export.onnx import export_checkpoint

    gpu = device.startswith("cuda")
    ck = Path(req.checkpoint)
    if not ck.exists():
        raise FileNotFoundError(f"checkpoint not found: {ck}")
    digest = sha256_file(ck)
    kwargs = dict(dynamic_style=True) if req.dynamic_style else dict(style=style)
    int8 = not gpu and is_student_file(ck) and _has_calibration_faces(log)
    flavour = "gpu-fp16" if gpu else ("cpu-int8" if int8 else "cpu-fp32")
    key = hashlib.sha256(repr((digest, req.which, None if req.dynamic_style else style.vector,
                               req.dynamic_style, gpu) + (("int8",) if int8 else ())).encode()
                         ).hexdigest()[:16]
    path = onnx_cache_dir(req) / f"{ck.stem}-{flavour}-{key}.onnx"
    if path.exists():
        return path
    log(f"exporting {ck.name} to ONNX{' int8' if int8 else ''} for onnxruntime ({path})")
    if int8:
        _student_int8(ck, path, **kwargs)
    else:
        export_checkpoint(ck, path, which=req.which, precision="fp16" if gpu else "fp32",
                          target="gpu" if gpu else "cpu", **kwargs)
    return path


STUDENT_CALIBRATION = dict(n=8, seed=0)    # astronaut crops for a student's int8 ranges


def _has_calibration_faces(log: Callable[[str], None]) -> bool:
    """The int8 calibration crops come from scikit-image's astronaut photo (a dev dependency):
    without it a student runs in fp32, and the user is told."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        log("student on the CPU: int8 needs scikit-image for its calibration crops (pip install "
            "scikit-image); running it in fp32")
        return False
    return True


def _student_int8(checkpoint: Path, path: Path, **style) -> None:
    """A student's int8 graph (static QDQ, calibrated on the astronaut's aligned face crops:
    :func:`export.verify.astronaut_crops`), written atomically to ``path``."""
    import tempfile

    from export.onnx import export_checkpoint, quantize_onnx
    from export.verify import astronaut_crops

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".fp32-") as d:
        fp32 = Path(d) / "student-fp32.onnx"
        info = export_checkpoint(checkpoint, fp32, **style)
        calib = astronaut_crops(info.size, **STUDENT_CALIBRATION).numpy()
        quantize_onnx(fp32, path, calibration=calib)


def _open(c: Candidate, req: EngineRequest, style: StyleCode | None,
          log: Callable[[str], None], latent_dim: int = 8) -> BaseEngine:
    kind = model_kind(req)
    if c.backend == "identity":
        return IdentityEngine(size=req.crop_size or 256, device=c.device)
    if c.backend == "torch":
        from .torch import open_torch
        if c.compiled:
            log(f"compiling the model with torch.compile for {c.device} (tens of seconds the "
                "first time, seconds once cached)")
        eng = open_torch(req.checkpoint, style, dynamic_style=req.dynamic_style, device=c.device,
                         which=req.which, max_batch=req.max_batch, compiled=c.compiled)
    elif c.backend == "onnxruntime":
        from .onnxruntime import open_onnx
        path = Path(req.engine_file) if kind == "onnx" else _cached_onnx(
            req, style if style is not None else StyleCode.default(latent_dim), c.device, log)
        eng = open_onnx(path, device=c.device, expected_size=req.crop_size,
                        max_batch=req.max_batch, threads=req.threads, style=style)
    elif c.backend == "tensorrt":
        from .tensorrt import open_tensorrt
        eng = open_tensorrt(req.engine_file, device=c.device, expected_size=req.crop_size,
                            style=style)
    else:  # pragma: no cover
        raise ValueError(c.backend)
    try:
        _check_opened(eng, req, style)
    except BaseException:
        eng.close()
        raise
    return eng


def _check_opened(eng: BaseEngine, req: EngineRequest, style: StyleCode | None) -> None:
    """What no backend can change: the model's crop size and a style baked into the file."""
    if req.crop_size is not None and eng.size != req.crop_size:
        raise ModelSizeError(f"the model takes {eng.size}x{eng.size} crops, the aligner makes "
                             f"{req.crop_size}x{req.crop_size}")
    model = req.engine_file or req.checkpoint
    if style is not None and not eng.dynamic_style and eng.style is not None and \
            tuple(round(v, 5) for v in eng.style.vector) != tuple(round(v, 5) for v in style.vector):
        raise EngineRequestError(
            f"{model} has its style baked in ({eng.style.source}); the style asked for "
            f"({style.source}) differs: export it with that style, or with --dynamic-style to "
            "change styles at run time")
    if req.dynamic_style and not hasattr(eng, "set_style"):
        raise EngineRequestError(
            f"{model} has its style baked in, and live style changes were asked for: "
            "export it with `python -m export onnx --dynamic-style`")


def check_student_request(ckpt: dict, req: EngineRequest, style: StyleCode | None) -> None:
    """What no backend can do with a locked-style student (:mod:`training.student`): another
    style than its own, or live style changes. Raised before any backend is tried."""
    from training.student import describe_student_checkpoint

    if (ckpt.get("student_config") or {}).get("dynamic_style"):
        return
    what = f"{req.checkpoint} is a {describe_student_checkpoint(ckpt)}"
    if req.dynamic_style:
        raise EngineRequestError(f"{what}, distilled for one style: live style changes need a "
                                 "student distilled with --dynamic-style")
    own = StyleCode.from_dict(dict(ckpt["style"])) if ckpt.get("style") else None
    if style is None or own is None:
        return
    if tuple(round(v, 5) for v in style.vector) != tuple(round(v, 5) for v in own.vector):
        raise EngineRequestError(f"{what}, distilled for {own.source}: it cannot render "
                                 f"{style.source} (distil with --dynamic-style for every style)")


def is_backend_failure(e: BaseException) -> bool:
    """An error that rules out one backend but not the request: a backend that cannot start or
    fails on its first run (CUDA errors and out of memory are RuntimeError, onnxruntime raises
    its own Fail/RuntimeException types). Request errors (ModelSizeError, EngineRequestError)
    are not."""
    from .onnxruntime import is_onnxruntime_error

    if isinstance(e, (ModelSizeError, EngineRequestError)):
        return False
    return isinstance(e, (RuntimeError, ImportError, OSError)) or is_onnxruntime_error(e)


def _sync(eng: BaseEngine) -> None:
    if eng.device.type == "cuda":
        torch.cuda.synchronize(eng.device)


def _time_engine(eng: BaseEngine, batch: int, repeats: int = 5, warmup: int = 3) -> float:
    """Median ms per frame at ``batch`` (the first call is the engine's first run)."""
    x = torch.zeros(batch, 3, eng.size, eng.size, device=eng.device)
    for _ in range(warmup):
        eng(x)
    _sync(eng)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        eng(x)
        _sync(eng)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2] * 1000 / batch


def _tier_reason(c: Candidate, alone: bool) -> str:
    if not alone:
        return "the other candidates of its tier failed (see above)"
    return {1: "TensorRT is the fastest backend",
            2: "the only CUDA backend for this model",
            3: "no CUDA backend allowed or available; onnxruntime beats PyTorch on the CPU "
               "(1.2-1.5x the baked model, 1.5-3x the eager one: benchmarks/engines.py)",
            4: "the only backend left"}.get(c.tier, "the only candidate")


def open_engine(req: EngineRequest, caps: Capabilities | None = None,
                log: Callable[[str], None] = lambda msg: None,
                opener: Callable[..., BaseEngine] | None = None) -> tuple[BaseEngine, str]:
    """Open the engine ``req`` asks for; returns (engine, why) — ``why`` names the backend
    choice and its reason, for the app to print. ``opener(candidate, req, style, log,
    latent_dim)`` opens one candidate (default: the real backends)."""
    caps = caps or Capabilities.detect()
    opener = opener or _open
    kind = model_kind(req)
    if req.checkpoint is not None and not Path(req.checkpoint).exists():
        raise FileNotFoundError(f"checkpoint not found: {req.checkpoint}")
    if req.engine_file is not None and not Path(req.engine_file).exists():
        raise FileNotFoundError(f"model file not found: {req.engine_file}")
    latent = 8
    if kind == "checkpoint":
        from training.checkpoint import checkpoint_config, read_checkpoint
        from training.student import is_student_checkpoint
        ckpt = read_checkpoint(req.checkpoint)
        latent = checkpoint_config(ckpt, req.checkpoint).latent_dim
        style = resolve_style(req, latent)
        if is_student_checkpoint(ckpt):
            check_student_request(ckpt, req, style)
        del ckpt
    else:
        style = None if kind == "identity" else resolve_style(req, latent)
    sel = select_backend(req, caps)
    if isinstance(sel, Selection) and (req.backend != "auto" or sel.chosen.backend == "identity"):
        engine = opener(sel.chosen, req, style, log, latent)
        return engine, _why(engine, sel)
    cands, skipped = rank_candidates(req, caps)
    failures: list[tuple[Candidate, BaseException]] = []
    for tier in sorted({c.tier for c in cands}):
        group = [c for c in cands if c.tier == tier]
        engines, timings = {}, {}
        for c in group:
            # alone in its tier: one first run at batch 1; tied: timed, as the choice needs
            timing = (min(4, req.max_batch), 3, 5) if len(group) > 1 else (1, 0, 1)
            eng, ms = _try(c, req, style, log, latent, opener, failures, *timing)
            if eng is not None:
                engines[c.label], timings[c.label] = eng, ms
        if not engines:
            continue
        notes = skipped + [f"{c.label}: {one_line(e)}" for c, e in failures]
        if len(engines) > 1:
            sel = select_backend(req, caps, timings)
            sel.skipped = notes
        else:
            chosen = next(c for c in group if c.label in engines)
            sel = Selection(chosen, f"auto: {chosen.label} — {_tier_reason(chosen, len(group) == 1)}"
                                    f" ({chosen.note})", notes, dict(timings))
        for label, eng in engines.items():
            if label != sel.chosen.label:
                eng.close()
        engine = engines[sel.chosen.label]
        return engine, _why(engine, sel)
    if len(failures) == 1:
        raise failures[0][1]
    raise BackendUnavailableError("no backend can run this model here: " + "; ".join(
        [f"{c.label}: {one_line(e)}" for c, e in failures] + skipped))


def _try(c: Candidate, req, style, log, latent, opener, failures, batch: int, warmup: int,
         repeats: int):
    """Open candidate ``c`` and time its first runs; (engine, ms per frame), or (None, None)
    with the failure recorded and logged (request errors are raised)."""
    eng = None
    try:
        eng = opener(c, req, style, log, latent)
        return eng, _time_engine(eng, batch, repeats=repeats, warmup=warmup)
    except Exception as e:  # noqa: BLE001 - sorted by is_backend_failure below
        if eng is not None:
            try:
                eng.close()
            except Exception:  # noqa: BLE001 - already failing; the first error is reported
                pass
        if not is_backend_failure(e):
            raise
        what = "failed on its first run" if eng is not None else "failed to start"
        log(f"{c.label} {what}: {one_line(e)}; trying the next backend")
        failures.append((c, e))
        return None, None


def _why(engine: BaseEngine, sel: Selection) -> str:
    why = sel.reason
    if sel.skipped:
        why += "; not used: " + "; ".join(sel.skipped)
    return f"{engine.describe()} — {why}"
