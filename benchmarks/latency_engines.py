"""Engine section of the latency benchmark: every backend variant side by side, timed in turns.

For each model config (``released``: the authors' 256x256 model; ``demo``: the small demo
model, see :func:`demo_config`), random weights, one style, and batch sizes 1, 2, 4, 8 (on a GPU
doubled further while a backend's throughput still grows by 3 %):

* ``torch eager fp32 (baseline)``: our Generator's content encoder + decoder with a per-image
  N x 8 style, i.e. the authors' modulated, grouped-conv decoder, as their predict.py runs it
  (fp32, ``cudnn.benchmark`` on under CUDA);
* ``torch eager fp32, authors' CPU blur`` (CPU only): the same with the blur computed the way the
  authors' pure-PyTorch ``upfirdn2d_native`` does on a CPU (per channel at full resolution, then
  decimated): what the authors' code costs on a CPU (FACTS.md: about 1 s a frame);
* every engine of :mod:`realtime.engines` this machine can run (what it can run is
  :meth:`realtime.engines.select.Capabilities.detect`'s answer): torch baked (CPU fp32; CUDA fp32,
  fp16, fp16 + CUDA graphs), onnxruntime (CPU fp32 and int8; CUDA fp16; its TensorRT provider),
  TensorRT FP16. Those that cannot run are listed with the reason.

* the config's **student** (:mod:`training.student`, what ``python -m training.distill`` makes
  of a teacher of that size; :func:`student_for`), timed in the same turns as its teacher:
  locked-style (a style folded into its convolutions, :meth:`~training.student.Student.lock_style`,
  exactly what a student distilled with ``--style`` runs) and style-conditioned (the style as an
  input), each in torch fp32 and onnxruntime fp32 and int8 on the CPU (torch fp16 + CUDA graphs
  on CUDA). Labels ``student locked · ...`` / ``student styled · ...``; ``exact`` is false (a
  student approximates its teacher) and ``max_abs_vs_baseline`` null (random weights for the
  released size: speed only). The student's own FLOPs give its TFLOP/s; the section's
  ``students`` entry holds its config, FLOPs and parameters, and
  :func:`benchmarks.latency_report.evaluate_targets` compares it with the teacher's int8 row.

Per (backend, batch): ms per batch p50/p95/p99, frames/s, speed-up over the baseline at the
same batch *in the same run*, and achieved TFLOP/s of useful work (the generator's FLOPs per
frame from :func:`training.summary.count_flops`; a blur-folded graph executes about twice that).
"""
from __future__ import annotations

import copy
import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .common import error_line, is_cuda, percentiles, ratio, round_robin
from .latency_settings import CONFIG_NAMES, Settings

BASELINE = "torch eager fp32 (baseline)"
AUTHORS_CPU = "torch eager fp32, authors' CPU blur"
GROWTH = 1.03          # keep doubling a GPU batch while throughput grows by at least 3 %
STYLE_SEED = 7

# The demo model's architecture: what `python -m training` trained for the shipped demo
# (runs/demo64/config.json: 64x64, num_down 2, every width divided by 8). Used when
# realtime/assets/demo_model.pt is absent; when it is there, its own config is read.
DEMO_CONFIG_DICT = dict(size=64, num_down=2, channel_divisor=8)


# =============================================================================================
# Model configs
# =============================================================================================
def demo_config():
    """(ModelConfig, where it came from) for the demo model."""
    from realtime.compose import DEMO_CHECKPOINT
    from training import ModelConfig
    if DEMO_CHECKPOINT.exists():
        from training.checkpoint import checkpoint_config, read_checkpoint
        return checkpoint_config(read_checkpoint(DEMO_CHECKPOINT), DEMO_CHECKPOINT), \
            f"config of {DEMO_CHECKPOINT.name}"
    return ModelConfig(**DEMO_CONFIG_DICT), \
        "demo architecture (64x64, num_down 2, channel_divisor 8; " \
        "realtime/assets/demo_model.pt absent)"


def model_config(name: str):
    """(ModelConfig, where it came from) for a config name of :data:`CONFIG_NAMES`."""
    from training import RELEASED
    if name == "released":
        return RELEASED, "the authors' released checkpoint's architecture"
    if name == "demo":
        return demo_config()
    raise ValueError(f"unknown config {name!r}; known: {CONFIG_NAMES}")


def random_generator(cfg):
    """The generator of ``cfg`` with random weights (seed 0), on the CPU, for inference."""
    import torch
    from training import Generator
    torch.manual_seed(0)
    return Generator.from_config(cfg).eval().requires_grad_(False)


def model_cost(cfg) -> dict:
    """FLOPs per frame (encode, decode, total) and parameter counts, from the model itself
    (built on the meta device: no memory, no weights)."""
    import torch
    from training import Generator
    from training.summary import count_flops, count_parameters
    try:
        with torch.device("meta"):
            G = Generator.from_config(cfg)
        flops = count_flops(G)
    except (RuntimeError, NotImplementedError):     # an op without a meta kernel: count on the CPU
        G = Generator.from_config(cfg)
        flops = count_flops(G)
    return {"flops_per_frame": flops, "parameters": count_parameters(G)}


# =============================================================================================
# Variants
# =============================================================================================
@dataclass
class Variant:
    label: str
    backend: str                      # torch-eager | torch | onnxruntime | tensorrt
    device: str                       # cpu | cuda
    precision: str
    fn: Callable                      # crops (on `device`) -> crops
    role: str = "engine"              # baseline | reference | engine
    exact: bool = True                # False: lossy (int8); never picked for the pipeline
    engine: object | None = None      # the realtime.engines engine, when there is one
    note: str = ""
    max_batch: int | None = None      # largest batch to try
    flops: float | None = None        # FLOPs a frame when not the config's (a student's)
    parity: bool = True               # compare its output with the baseline's


def _engine_variant(engine, backend: str, label: str, max_batch: int | None = None) -> Variant:
    import torch
    names = {torch.float16: "fp16", torch.float32: "fp32", torch.bfloat16: "bf16"}
    prec = "int8" if "int8" in label else names.get(engine.dtype, "?")
    return Variant(label, backend, engine.device.type, prec, engine, engine=engine,
                   max_batch=max_batch or engine.max_batch, note=engine.name)


def build_variants(G, style, cfg_name: str, s: Settings, tmp: Path, caps,
                   log: Callable[[str], None]) -> tuple[list[Variant], list[dict]]:
    """Every backend this machine can run (``caps``: a
    :class:`~realtime.engines.select.Capabilities`) for generator ``G`` (on the CPU, random
    weights) with ``style`` baked in, and the reasons for those it cannot."""
    import torch
    from export.onnx import export_onnx, quantize_onnx
    from realtime.engines.onnxruntime import OnnxRuntimeEngine
    from realtime.engines.torch import TorchEngine

    cuda = s.device == "cuda"
    dev = "cuda" if cuda else "cpu"
    max_gpu = s.max_gpu_batch
    small = [b for b in s.batches if b <= 8]
    max_cpu = max(small) if small else max(s.batches)
    maxb = max_gpu if cuda else max(s.batches)
    cpu_too = not cuda or s.cpu_on_gpu
    variants: list[Variant] = []
    skipped: list[dict] = []

    def skip(label, reason):
        skipped.append({"config": cfg_name, "backend": label, "reason": reason})
        log(f"  [yellow]skip[/] {label}: {reason}")

    def attempt(label, make: Callable[[], Variant]):
        if s.backends and not any(b in label.lower() for b in s.backends):
            return
        try:
            variants.append(make())
        except Exception as e:  # noqa: BLE001 - a backend that fails to build is reported, not fatal
            skip(label, f"failed to build: {error_line(e)}")

    # -- baseline and reference: the authors' way, eager fp32, per-image styles ------------
    G_dev = copy.deepcopy(G).to(dev).eval().requires_grad_(False)
    z_dev = style.tensor().to(dev)
    if cuda:
        torch.backends.cudnn.benchmark = True       # as the authors' predict.py

    def eager(x):
        return G_dev.decode(G_dev.encoder(x).content, z_dev.expand(x.shape[0], -1))

    variants.append(Variant(BASELINE, "torch-eager", dev, "fp32", eager, role="baseline",
                            note="modulated grouped conv, per-image N x 8 style"
                                 + (", cudnn.benchmark on" if cuda else ""), max_batch=maxb))
    if cuda:
        skip(AUTHORS_CPU, "a CPU reference: on CUDA the authors use their compiled upfirdn2d "
                          "kernel, for which our depthwise-conv blur stands in")
    elif not s.authors_blur:
        skip(AUTHORS_CPU, "--no-authors-blur")
    else:
        from .engines import authors_blur

        def eager_authors(x):
            with authors_blur():
                return eager(x)
        variants.append(Variant(AUTHORS_CPU, "torch-eager", "cpu", "fp32", eager_authors,
                                role="reference",
                                note="the authors' upfirdn2d_native blur on the CPU",
                                max_batch=maxb))

    # -- torch baked ----------------------------------------------------------------------
    if cuda:
        for label, kw in (("torch-cuda fp32", dict(dtype=torch.float32, cuda_graphs=False)),
                          ("torch-cuda fp16", dict(dtype=torch.float16, cuda_graphs=False)),
                          ("torch-cuda fp16 +cudagraphs",
                           dict(dtype=torch.float16, cuda_graphs=True)),
                          ("torch-cuda fp16 +compile +cudagraphs",
                           dict(dtype=torch.float16, cuda_graphs=True, compiled=True))):
            attempt(label, lambda kw=kw, label=label: _engine_variant(
                TorchEngine(G, style, device="cuda", max_batch=max_gpu, **kw), "torch", label))
    if cpu_too:
        attempt("torch-cpu fp32", lambda: _engine_variant(
            TorchEngine(G, style, device="cpu", max_batch=max_cpu), "torch", "torch-cpu fp32",
            max_batch=max_cpu))

    # -- onnxruntime ----------------------------------------------------------------------
    paths: dict[str, Path] = {}

    def exported(key: str, **kw) -> Path:
        if key not in paths:
            t0 = time.perf_counter()
            p = tmp / f"{cfg_name}-{key}.onnx"
            export_onnx(G, p, style=style, **kw)
            paths[key] = p
            log(f"  exported {p.name} in {time.perf_counter() - t0:.1f} s")
        return paths[key]

    def int8():
        from export.verify import astronaut_crops
        src = exported("cpu-int8-src", target="cpu-int8")
        dst = tmp / f"{cfg_name}-int8.onnx"
        t0 = time.perf_counter()
        quantize_onnx(src, dst, calibration=astronaut_crops(G.config.size, n=8, seed=2).numpy())
        log(f"  quantized {dst.name} in {time.perf_counter() - t0:.1f} s")
        v = _engine_variant(OnnxRuntimeEngine(dst, device="cpu", threads=s.threads,
                                              max_batch=max_cpu),
                            "onnxruntime", "onnxruntime-cpu int8", max_batch=max_cpu)
        v.exact = False
        v.note = "static QDQ, per-channel, calibrated on astronaut crops"
        return v

    if cpu_too:
        attempt("onnxruntime-cpu fp32", lambda: _engine_variant(
            OnnxRuntimeEngine(exported("cpu", target="cpu"), device="cpu", threads=s.threads,
                              max_batch=max_cpu), "onnxruntime", "onnxruntime-cpu fp32",
            max_batch=max_cpu))
        if s.int8:
            attempt("onnxruntime-cpu int8", int8)
        else:
            skip("onnxruntime-cpu int8", "--quick" if s.quick else "--no-int8")
    else:
        skip("onnxruntime-cpu fp32", "--no-cpu-on-gpu")
    if not cuda:
        skip("onnxruntime-cuda fp16", "no CUDA device")
    else:
        if not caps.ort_cuda:
            skip("onnxruntime-cuda fp16", f"this onnxruntime has no CUDAExecutionProvider "
                                          f"({', '.join(caps.ort_providers)}): install "
                                          "onnxruntime-gpu")
        else:
            attempt("onnxruntime-cuda fp16", lambda: _engine_variant(
                OnnxRuntimeEngine(exported("gpu-fp16", target="gpu", precision="fp16"),
                                  device="cuda", max_batch=max_gpu),
                "onnxruntime", "onnxruntime-cuda fp16"))
        if "TensorrtExecutionProvider" not in caps.ort_providers:
            skip("onnxruntime-tensorrt fp16", "this onnxruntime has no TensorrtExecutionProvider")
        else:
            attempt("onnxruntime-tensorrt fp16", lambda: _engine_variant(
                OnnxRuntimeEngine(exported("gpu-fp16", target="gpu", precision="fp16"),
                                  device="cuda", max_batch=max_gpu, tensorrt_ep=True,
                                  trt_cache_dir=tmp / "ort-trt-cache"),
                "onnxruntime", "onnxruntime-tensorrt fp16"))

    # -- TensorRT ---------------------------------------------------------------------------
    def tensorrt():
        from export.tensorrt import build_engine
        from realtime.engines.tensorrt import open_tensorrt
        engine_path = tmp / f"{cfg_name}-fp16.engine"
        t0 = time.perf_counter()
        build_engine(exported("gpu-fp16", target="gpu", precision="fp16"), engine_path,
                     fp16=True, batch=(1, min(8, max_gpu), max_gpu),
                     timing_cache=tmp / "trt-timing.cache")
        log(f"  built {engine_path.name} in {time.perf_counter() - t0:.0f} s")
        return _engine_variant(open_tensorrt(engine_path, device="cuda"), "tensorrt",
                               "tensorrt fp16")

    if not cuda:
        skip("tensorrt fp16", "no CUDA device")
    elif caps.tensorrt is None:
        skip("tensorrt fp16", "`import tensorrt` fails here; TensorRT wheels come from NVIDIA's "
                              "own index")
    else:
        attempt("tensorrt fp16", tensorrt)
    return variants, skipped


# =============================================================================================
# Students: the teacher's CPU replacement, timed beside it
# =============================================================================================
STUDENT_KINDS = ("locked", "styled")


def student_label(kind: str, engine_label: str) -> str:
    return f"student {kind} · {engine_label}"


def student_for(cfg_name: str, cfg):
    """(style-conditioned Student, where it came from) for a model config: the shipped demo
    student for ``demo`` (trained, when it is there and fits), else the default CPU design
    (:class:`training.student.StudentConfig`) at the config's size, random weights (seed 0)."""
    import torch
    from realtime.compose import DEMO_STUDENT
    from training.student import Student, StudentConfig, load_student
    if cfg_name == "demo" and DEMO_STUDENT.exists():
        st = load_student(DEMO_STUDENT)
        if st.size == cfg.size and st.config.dynamic_style:
            return st, f"the shipped {DEMO_STUDENT.name} (trained)"
    torch.manual_seed(0)
    sc = StudentConfig(size=cfg.size, latent_dim=cfg.latent_dim, dynamic_style=True)
    return Student(sc).eval().requires_grad_(False), "the default CPU design, random weights"


def student_cost(student) -> dict:
    """FLOPs a frame of the student locked (no style path) and style-conditioned, and its
    parameters (:func:`training.student.student_flops`)."""
    from dataclasses import replace
    from training.student import student_flops, student_parameters
    cfg = student.config
    return {"config": cfg.to_dict(), "description": cfg.describe(),
            "flops_per_frame": {"locked": student_flops(replace(cfg, dynamic_style=False)),
                                "styled": student_flops(cfg)},
            "parameters": student_parameters(cfg)}


def build_student_variants(student, style, cost: dict, cfg_name: str, s: Settings, tmp: Path,
                           log: Callable[[str], None]) -> tuple[list[Variant], list[dict]]:
    """The student's rows: locked (``style`` folded in) and styled (style as input), in torch
    and onnxruntime fp32/int8 on the CPU, torch fp16 on CUDA."""
    from export.onnx import export_student, quantize_onnx
    from export.verify import astronaut_crops
    from realtime.engines.onnxruntime import open_onnx
    from realtime.engines.torch import open_torch

    cuda = s.device == "cuda"
    small = [b for b in s.batches if b <= 8]
    max_cpu = max(small) if small else max(s.batches)
    variants: list[Variant] = []
    skipped: list[dict] = []
    locked = student.lock_style(style)

    def add(kind: str, engine_label: str, make: Callable[[], Variant]) -> None:
        label = student_label(kind, engine_label)
        if s.backends and not any(b in label.lower() for b in s.backends):
            return
        try:
            v = make()
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            skipped.append({"config": cfg_name, "backend": label,
                            "reason": f"failed to build: {error_line(e)}"})
            log(f"  [yellow]skip[/] {label}: failed to build: {error_line(e)}")
            return
        v.label, v.exact, v.parity = label, False, False
        v.flops = cost["flops_per_frame"][kind]
        variants.append(v)

    def onnx(kind: str, int8: bool) -> Variant:
        t0 = time.perf_counter()
        src = tmp / f"{cfg_name}-student-{kind}.onnx"
        if not src.exists():
            if kind == "locked":
                export_student(locked, src)
            else:
                export_student(student, src, dynamic_style=True)
        path = src
        if int8:
            path = tmp / f"{cfg_name}-student-{kind}-int8.onnx"
            quantize_onnx(src, path, calibration=astronaut_crops(student.size, n=8, seed=2).numpy())
        log(f"  exported {path.name} in {time.perf_counter() - t0:.1f} s")
        eng = open_onnx(path, device="cpu", threads=s.threads, max_batch=max_cpu, style=style)
        prec = "onnxruntime-cpu int8" if int8 else "onnxruntime-cpu fp32"
        return _engine_variant(eng, "onnxruntime", prec, max_batch=max_cpu)

    for kind in STUDENT_KINDS:
        dyn = kind == "styled"
        if cuda:
            add(kind, "torch-cuda fp16 +cudagraphs", lambda dyn=dyn: _engine_variant(
                open_torch(student if dyn else locked, style, dynamic_style=dyn, device="cuda",
                           max_batch=s.max_gpu_batch), "torch", "torch-cuda fp16 +cudagraphs"))
        if not cuda or s.cpu_on_gpu:
            add(kind, "torch-cpu fp32", lambda dyn=dyn: _engine_variant(
                open_torch(student if dyn else locked, style, dynamic_style=dyn, device="cpu",
                           max_batch=max_cpu), "torch", "torch-cpu fp32", max_batch=max_cpu))
            add(kind, "onnxruntime-cpu fp32", lambda kind=kind: onnx(kind, False))
            if s.int8:
                add(kind, "onnxruntime-cpu int8", lambda kind=kind: onnx(kind, True))
    return variants, skipped


def release(variants: Sequence[Variant], keep=None) -> None:
    """Close every engine but ``keep`` (frees GPU memory: CUDA graph pools, weights)."""
    for v in variants:
        if v.engine is not None and v.engine is not keep:
            try:
                v.engine.close()
            except Exception:  # noqa: BLE001 - closing after the measurements
                pass


# =============================================================================================
# Timing
# =============================================================================================
def _no_grad(fn, x):
    import torch
    with torch.no_grad():
        return fn(x)


def _parity(out, ref) -> float | None:
    try:
        return float((out.detach().float().cpu() - ref.detach().float().cpu()).abs().max())
    except Exception:  # noqa: BLE001 - parity is informative only
        return None


def _engine_row(cfg_name: str, v: Variant, batch: int, timed, flops: float) -> dict:
    flops = v.flops if v.flops is not None else flops
    st = percentiles(timed.wall_ms)
    gpu = percentiles(timed.gpu_ms) if timed.gpu_ms else None
    p50 = st["p50"]
    fps = batch * 1000.0 / p50 if st["n"] and p50 > 0 else float("nan")
    return {
        "config": cfg_name, "label": v.label, "backend": v.backend, "device": v.device,
        "precision": v.precision, "role": v.role, "exact": v.exact, "batch": batch,
        "reps": st["n"], "ms_per_batch": st,
        "gpu_ms_per_batch": gpu,
        "ms_per_frame": p50 / batch if st["n"] else float("nan"),
        "frames_per_s": fps,
        "tflops": flops * fps / 1e12 if np.isfinite(fps) else float("nan"),
        "speedup_vs_baseline": None, "speedup_vs_authors_cpu": None,
        "max_abs_vs_baseline": None, "error": timed.error, "note": v.note,
    }


def _batches(s: Settings) -> list[int]:
    """The asked batch sizes, then (on a GPU) doublings up to --max-gpu-batch."""
    batches = list(s.batches)
    if s.device == "cuda":
        b = max(batches) * 2
        while b <= s.max_gpu_batch:
            batches.append(b)
            b *= 2
    return batches


def _time_batch(cfg_name: str, batch: int, dev: str, group: list[Variant], x, base, ref: dict,
                s: Settings, section: dict, done: set, flops: float, console) -> list[dict]:
    """One round-robin block: ``group`` (one device) at ``batch``. Returns the rows; a variant
    that fails is recorded in ``section["skipped"]`` and added to ``done``. The baseline's
    output is kept in ``ref["out"]`` for the parity of every variant at this batch (the
    baseline's device is timed first)."""
    import torch

    def stops(v_label: str, why: str) -> None:
        done.add(v_label)
        section["skipped"].append({"config": cfg_name, "backend": v_label,
                                   "reason": f"batch {batch}: {why}"})
        if is_cuda(dev):
            torch.cuda.empty_cache()

    t0 = time.perf_counter()
    parity: dict[str, float | None] = {}
    calls = []
    for v in group:               # first call: parity against the baseline
        try:
            out = _no_grad(v.fn, x)
            if v is base:
                ref["out"] = out
            parity[v.label] = None if "out" not in ref or v is base or not v.parity \
                else _parity(out, ref["out"])
            calls.append((v.label, (lambda v=v: _no_grad(v.fn, x))))
        except Exception as e:  # noqa: BLE001 - recorded; the others go on
            stops(v.label, error_line(e))
            console.print(f"  [yellow]{v.label}: stops at batch {batch}: {error_line(e)}[/]",
                          highlight=False)

    def on_error(name, e):
        done.add(name)
        if is_cuda(dev):
            torch.cuda.empty_cache()
        return True
    timed = round_robin(calls, device=dev, warmup=max(0, s.warmup_for(dev) - 1),
                        reps=s.reps_for(cfg_name, dev),
                        max_seconds=s.max_seconds_for(cfg_name, dev), on_error=on_error)
    rows = []
    for v in group:
        if v.label not in timed:
            continue
        row = _engine_row(cfg_name, v, batch, timed[v.label], flops)
        row["max_abs_vs_baseline"] = parity.get(v.label)
        if timed[v.label].error:
            section["skipped"].append({"config": cfg_name, "backend": v.label,
                                       "reason": f"batch {batch}: {timed[v.label].error}"})
        if row["reps"]:
            rows.append(row)
    console.print(f"  batch {batch:>3} on {dev}: {len(group)} backends, "
                  f"{max((len(t.wall_ms) for t in timed.values()), default=0)} "
                  f"timed calls each, {time.perf_counter() - t0:.0f} s", highlight=False)
    return rows


def run_engine_section(s: Settings, console, tmp: Path) -> tuple[dict, dict]:
    """The engine rows of every config; returns (section JSON, {config: [Variant]}): the
    variants still open, for the pipeline section to pick its engine from."""
    import torch
    from export.verify import astronaut_crops
    from realtime.engines.select import Capabilities
    from training.style import StyleCode

    section: dict = {"configs": {}, "rows": [], "skipped": [], "peaks": {}, "students": {}}
    kept: dict[str, list[Variant]] = {}
    style = StyleCode.from_seed(STYLE_SEED)
    caps = Capabilities.detect()
    for cfg_name in s.configs:
        cfg, source = model_config(cfg_name)
        cost = model_cost(cfg)
        flops = cost["flops_per_frame"]["total"]
        section["configs"][cfg_name] = {"config": cfg.to_dict(), "source": source,
                                        "description": cfg.describe(), **cost}
        console.print(f"[bold]engines · {cfg_name}[/] ({cfg.describe()}, {source}): "
                      f"{flops / 1e9:.2f} GFLOP a frame, "
                      f"{cost['parameters']['total'] / 1e6:.2f} M parameters, random weights, "
                      f"style seed {STYLE_SEED}")
        G = random_generator(cfg)

        def log(m: str) -> None:
            console.print(m, highlight=False)
        variants, skipped = build_variants(G, style, cfg_name, s, tmp, caps, log)
        section["skipped"] += skipped
        student, student_source = student_for(cfg_name, cfg)
        scost = student_cost(student)
        section["students"][cfg_name] = {"source": student_source, **scost}
        console.print(f"  student: {scost['description']}, {student_source}: "
                      f"{scost['flops_per_frame']['locked'] / 1e9:.2f} GFLOP a frame locked, "
                      f"{scost['flops_per_frame']['styled'] / 1e9:.2f} styled, "
                      f"{scost['parameters'] / 1e6:.2f} M parameters", highlight=False)
        more, skipped = build_student_variants(student, style, scost, cfg_name, s, tmp, log)
        variants += more
        section["skipped"] += skipped
        faces = astronaut_crops(cfg.size, n=8, seed=1)
        history: dict[str, list[float]] = {v.label: [] for v in variants}
        base = next((v for v in variants if v.role == "baseline"), None)
        done: set[str] = set()
        for batch in _batches(s):
            extra = batch > max(s.batches)
            groups: dict[str, list[Variant]] = {}
            for v in variants:
                if v.label in done or batch > (v.max_batch or batch):
                    continue
                h = history[v.label]      # beyond the asked batches: only while still growing
                if extra and (v.device != "cuda" or len(h) < 2 or h[-1] < GROWTH * h[-2]):
                    continue
                groups.setdefault(v.device, []).append(v)
            if not groups:
                break
            x_host = faces[torch.arange(batch) % faces.shape[0]].contiguous()
            ref: dict = {}
            for dev, group in sorted(groups.items(), key=lambda kv: kv[0] != s.device):
                rows = _time_batch(cfg_name, batch, dev, group, x_host.to(dev), base, ref, s,
                                   section, done, flops, console)
                section["rows"] += rows
                for row in rows:
                    history[row["label"]].append(row["frames_per_s"])
        _fill_speedups(section["rows"], cfg_name)
        section["peaks"][cfg_name] = peaks(section["rows"], cfg_name)
        if "pipeline" in s.sections and s.pipeline_config() == cfg_name:
            kept[cfg_name] = [v for v in variants if v.engine is not None]
        else:
            release(variants)                 # free the memory before the next config
        del G, variants
        gc.collect()
        if s.device == "cuda":
            torch.cuda.empty_cache()
    return section, kept


def _fill_speedups(rows: list[dict], cfg_name: str) -> None:
    """Speed-up = reference ms per frame / row ms per frame at the same config and batch."""
    ref = {(r["batch"], r["role"]): r["ms_per_frame"] for r in rows if r["config"] == cfg_name}
    for r in rows:
        if r["config"] != cfg_name:
            continue
        r["speedup_vs_baseline"] = ratio(ref.get((r["batch"], "baseline")), r["ms_per_frame"])
        r["speedup_vs_authors_cpu"] = ratio(ref.get((r["batch"], "reference")), r["ms_per_frame"])


def peaks(rows: list[dict], cfg_name: str) -> dict:
    """Per backend: the batch with the highest frames/s (where throughput stops growing)."""
    best: dict[str, dict] = {}
    for r in rows:
        if r["config"] != cfg_name or not np.isfinite(r["frames_per_s"] or float("nan")):
            continue
        cur = best.get(r["label"])
        if cur is None or r["frames_per_s"] > cur["frames_per_s"]:
            best[r["label"]] = {"batch": r["batch"], "frames_per_s": r["frames_per_s"],
                                "ms_per_batch_p50": r["ms_per_batch"]["p50"], "tflops": r["tflops"]}
    return best
