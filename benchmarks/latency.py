"""Latency and throughput: the engines alone, and the whole pipeline per stage and end to end.

    python -m benchmarks.latency                       # everything this machine can run
    python -m benchmarks.latency --quick               # a small subset, under a minute on 2 cores
    python -m benchmarks.latency --sections engine --configs released --batches 1,4
    python -m benchmarks.latency --sections pipeline --resolutions 1280x720 --faces 1 --modes live
    python -m benchmarks.compare results/A.json results/B.json

Writes ``latency.json``, ``throughput.png`` and ``stages.png`` to ``--out`` (default
``results/``) and prints the tables.

**Engine section.** For each model config (``released``: the authors' 256x256 model;
``demo``: the small demo model, see :data:`DEMO_CONFIG`), random weights, one style, and batch
sizes 1, 2, 4, 8 (on a GPU doubled further while a backend's throughput still grows by 3 %):

* ``torch eager fp32 (baseline)``: our Generator's content encoder + decoder with a per-image
  N x 8 style, i.e. the authors' modulated, grouped-conv decoder, as their predict.py runs it
  (fp32, ``cudnn.benchmark`` on under CUDA);
* ``torch eager fp32, authors' CPU blur`` (CPU only): the same with the blur computed the way the
  authors' pure-PyTorch ``upfirdn2d_native`` does on a CPU (per channel at full resolution, then
  decimated): what the authors' code costs on a CPU (FACTS.md: about 1 s a frame);
* every engine of :mod:`realtime.engines` this machine has: torch baked (CPU fp32; CUDA fp32,
  fp16, fp16 + CUDA graphs), onnxruntime (CPU fp32 and int8; CUDA fp16; its TensorRT provider),
  TensorRT FP16. Those that cannot run are listed with the reason.

Per (backend, batch): ms per batch p50/p95/p99, frames/s, speed-up over the baseline at the
same batch *in the same run*, and achieved TFLOP/s of useful work (the generator's FLOPs per
frame from :func:`training.summary.count_flops`; a blur-folded graph executes about twice that).

**Pipeline section.** Synthesized videos of the astronaut photo (tests/media.py) with 1 and 4
moving faces at 640x480, 1280x720 and 1920x1080, run through :class:`realtime.pipeline.Pipeline`
with the fastest exact engine of the engine section:

* ``file`` mode: decode (PyAV) -> track -> align -> engine (faces of up to 4 frames batched)
  -> paste -> encode (libx264 veryfast, or NVENC where it opens) into a temporary file;
  end to end = from the start of a frame's decode to its encoded write;
* ``live`` mode: the clip played as a camera at ``--live-fps`` (frame i is captured at
  t0 + i/fps on the monotonic clock, then decoded), the newest frame wins, no encoder (the frame
  is ready to show); end to end = capture timestamp -> frame ready. Dropped frames are counted.

Per-stage times are per frame (a batched engine call is shared among its frames by face count);
the first ``--warmup-frames`` frames (tracker start-up, first detection) are left out.
On CUDA, ``--parallel-files N`` also converts N 1080p files at once sharing one engine and
reports the aggregate frames/s and the engine's (GPU's) share of the wall time.

Nothing here asserts on times: the tests check the logic and the JSON's structure.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .common import (describe_machine, is_cuda, machine_info, percentiles, ratio, round_robin,
                     write_json)

SCHEMA = "gnr-anime/benchmarks.latency"
SCHEMA_VERSION = 1
STAGES = ("decode", "track", "align", "engine", "paste", "encode")
RESOLUTIONS = {"640x480": (640, 480), "1280x720": (1280, 720), "1920x1080": (1920, 1080)}
MODES = ("live", "file")
SECTIONS = ("engine", "pipeline")
CONFIG_NAMES = ("released", "demo")
BASELINE = "torch eager fp32 (baseline)"
AUTHORS_CPU = "torch eager fp32, authors' CPU blur"
GROWTH = 1.03          # keep doubling a GPU batch while throughput grows by at least 3 %
STYLE_SEED = 7

# The demo model's architecture: what `python -m training` trained for the shipped demo
# (runs/demo64/config.json: 64x64, num_down 2, every width divided by 8). Used when
# realtime/assets/demo_model.pt is absent; when it is there, its own config is read.
DEMO_CONFIG_DICT = dict(size=64, num_down=2, channel_divisor=8)


class BenchmarkError(RuntimeError):
    """A benchmark that cannot run as asked (the message says what to change)."""


# =============================================================================================
# Settings
# =============================================================================================
@dataclass
class Settings:
    out: Path = Path("results")
    quick: bool = False
    sections: tuple[str, ...] = SECTIONS
    device: str = "cpu"                       # resolved: cpu | cuda
    threads: int = 1
    configs: tuple[str, ...] = CONFIG_NAMES
    batches: tuple[int, ...] = (1, 2, 4, 8)
    max_gpu_batch: int = 256
    backends: tuple[str, ...] = ()            # substrings; empty = all
    reps: int | None = None                   # None: per config/device defaults
    warmup: int | None = None
    max_seconds: float | None = None
    authors_blur: bool = True
    int8: bool = True
    cpu_on_gpu: bool = True
    pipeline_model: str = "auto"              # auto | released | demo | identity
    resolutions: tuple[str, ...] = tuple(RESOLUTIONS)
    faces: tuple[int, ...] = (1, 4)
    modes: tuple[str, ...] = MODES
    frames: int = 90
    warmup_frames: int = 10
    live_fps: float = 30.0
    batch_frames: int = 4
    parallel_files: int = 0
    plots: bool = True

    def reps_for(self, config: str, device: str) -> int:
        if self.reps is not None:
            return self.reps
        if is_cuda(device):
            return 100
        if self.quick:
            return 3
        return 5 if config == "released" else 20

    def warmup_for(self, device: str) -> int:
        if self.warmup is not None:
            return self.warmup
        return 3 if is_cuda(device) else 1

    def max_seconds_for(self, config: str, device: str) -> float:
        if self.max_seconds is not None:
            return self.max_seconds
        if self.quick:
            return 5.0
        if is_cuda(device):
            return 15.0
        return 90.0 if config == "released" else 20.0


def _int_list(text: str, flag: str, ap: argparse.ArgumentParser, lo: int = 1, hi: int = 4096):
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        ap.error(f"argument {flag}: expected comma-separated integers, got {text!r}")
    if not vals or any(not lo <= v <= hi for v in vals):
        ap.error(f"argument {flag}: every value must be within {lo}..{hi}, got {text!r}")
    return tuple(sorted(set(vals)))


def _choice_list(text: str, flag: str, choices: Sequence[str], ap) -> tuple[str, ...]:
    vals = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in vals if v not in choices]
    if not vals or bad:
        ap.error(f"argument {flag}: choose from {', '.join(choices)} (comma-separated), got {text!r}")
    return tuple(dict.fromkeys(vals))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.latency",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:3]))
    ap.add_argument("--out", type=Path, default=Path("results"),
                    help="results folder: latency.json and the PNG plots (default results/)")
    ap.add_argument("--quick", action="store_true",
                    help="a small subset (demo model, batch 1-2, 640x480, one face): under a "
                         "minute on a 2-core CPU; used by the CI smoke test")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="engine,pipeline (default both)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch and onnxruntime "
                         "(default: every core this process may use)")
    g = ap.add_argument_group("engine section")
    g.add_argument("--configs", default=None, help="released,demo (default both; --quick: demo)")
    g.add_argument("--batches", default=None, help="batch sizes (default 1,2,4,8; --quick: 1,2)")
    g.add_argument("--max-gpu-batch", type=int, default=256,
                   help="largest batch tried on a GPU while throughput grows (default 256)")
    g.add_argument("--backends", default="",
                   help="only backends whose label contains one of these comma-separated "
                        "words (the baseline always runs), e.g. onnxruntime,tensorrt")
    g.add_argument("--reps", type=int, default=None,
                   help="timed calls per backend and batch (default: GPU 100; CPU released 5, "
                        "demo 20; --quick 3)")
    g.add_argument("--warmup", type=int, default=None,
                   help="untimed calls per backend and batch (default: GPU 3, CPU 1)")
    g.add_argument("--max-seconds", type=float, default=None,
                   help="stop timing a batch after this many seconds once 3 calls are in "
                        "(default: GPU 15; CPU released 90, demo 20; --quick 5)")
    g.add_argument("--no-authors-blur", action="store_true",
                   help="skip the authors'-CPU-blur reference row (CPU only; the slowest row)")
    g.add_argument("--no-int8", action="store_true",
                   help="skip onnxruntime int8 (quantization: ~10 s)")
    g.add_argument("--no-cpu-on-gpu", action="store_true",
                   help="on a CUDA machine, skip the CPU backends")
    g = ap.add_argument_group("pipeline section")
    g.add_argument("--pipeline-model", default="auto",
                   choices=["auto", "released", "demo", "identity"],
                   help="model in the pipeline (auto: released on CUDA, demo on the CPU)")
    g.add_argument("--resolutions", default=None,
                   help=f"{','.join(RESOLUTIONS)} (default all; --quick: 640x480)")
    g.add_argument("--faces", default=None, help="faces per frame (default 1,4; --quick: 1)")
    g.add_argument("--modes", default=",".join(MODES), help="live,file (default both)")
    g.add_argument("--frames", type=int, default=None,
                   help="measured frames per run, after the warm-up (default 90; --quick 16)")
    g.add_argument("--warmup-frames", type=int, default=None,
                   help="frames left out at the start of each run (default 10; --quick 4)")
    g.add_argument("--live-fps", type=float, default=None,
                   help="camera rate in live mode (default: CUDA 120, CPU 30)")
    g.add_argument("--batch-frames", type=int, default=4,
                   help="file mode batches the faces of up to this many frames (default 4)")
    g.add_argument("--parallel-files", type=int, default=None,
                   help="also convert this many 1080p files at once (default: CUDA min(8, cores/2), "
                        "CPU 0 = skip)")
    ap.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")
    return ap


def parse_settings(argv=None) -> Settings:
    import torch
    ap = build_parser()
    a = ap.parse_args(argv)
    s = Settings(out=a.out, quick=a.quick)
    s.sections = _choice_list(a.sections, "--sections", SECTIONS, ap)
    dev = a.device.strip().lower()
    if dev == "auto":
        s.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif dev == "cpu":
        s.device = "cpu"
    elif dev.startswith("cuda"):
        if not torch.cuda.is_available():
            ap.error(f"argument --device: {a.device} asked for, but PyTorch sees no CUDA GPU "
                     f"(torch {torch.__version__}); use --device cpu")
        s.device = "cuda"
    else:
        ap.error(f"argument --device: expected auto, cpu or cuda, got {a.device!r}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    if a.threads is not None and a.threads < 1:
        ap.error(f"argument --threads: must be >= 1, got {a.threads}")
    s.threads = a.threads or cores
    s.configs = _choice_list(a.configs, "--configs", CONFIG_NAMES, ap) if a.configs else \
        (("demo",) if a.quick else CONFIG_NAMES)
    s.batches = _int_list(a.batches, "--batches", ap) if a.batches else \
        ((1, 2) if a.quick else (1, 2, 4, 8))
    if a.max_gpu_batch < 1:
        ap.error(f"argument --max-gpu-batch: must be >= 1, got {a.max_gpu_batch}")
    s.max_gpu_batch = max(a.max_gpu_batch, max(s.batches))
    s.backends = tuple(b.strip().lower() for b in a.backends.split(",") if b.strip())
    for flag, val in (("--reps", a.reps), ("--frames", a.frames)):
        if val is not None and val < 1:
            ap.error(f"argument {flag}: must be >= 1, got {val}")
    for flag, val in (("--warmup", a.warmup), ("--warmup-frames", a.warmup_frames)):
        if val is not None and val < 0:
            ap.error(f"argument {flag}: must be >= 0, got {val}")
    if a.max_seconds is not None and a.max_seconds <= 0:
        ap.error(f"argument --max-seconds: must be > 0, got {a.max_seconds}")
    if a.live_fps is not None and not 1 <= a.live_fps <= 1000:
        ap.error(f"argument --live-fps: must be within 1..1000, got {a.live_fps}")
    if a.batch_frames < 1:
        ap.error(f"argument --batch-frames: must be >= 1, got {a.batch_frames}")
    s.reps, s.warmup, s.max_seconds = a.reps, a.warmup, a.max_seconds
    s.authors_blur = not a.no_authors_blur
    s.int8 = not (a.no_int8 or a.quick)
    s.cpu_on_gpu = not a.no_cpu_on_gpu
    s.pipeline_model = a.pipeline_model
    s.resolutions = _choice_list(a.resolutions, "--resolutions", tuple(RESOLUTIONS), ap) \
        if a.resolutions else (("640x480",) if a.quick else tuple(RESOLUTIONS))
    s.faces = _int_list(a.faces, "--faces", ap, 1, 16) if a.faces else ((1,) if a.quick else (1, 4))
    s.modes = _choice_list(a.modes, "--modes", MODES, ap)
    s.frames = a.frames or (16 if a.quick else 90)
    s.warmup_frames = a.warmup_frames if a.warmup_frames is not None else (4 if a.quick else 10)
    s.live_fps = a.live_fps or (120.0 if s.device == "cuda" else 30.0)
    s.batch_frames = a.batch_frames
    if a.parallel_files is not None and a.parallel_files < 0:
        ap.error(f"argument --parallel-files: must be >= 0, got {a.parallel_files}")
    s.parallel_files = a.parallel_files if a.parallel_files is not None else \
        (min(8, max(2, cores // 2)) if s.device == "cuda" and not a.quick else 0)
    s.plots = not a.no_plots
    return s


# =============================================================================================
# Model configs
# =============================================================================================
def demo_config():
    """(ModelConfig, where it came from) for the demo model."""
    from training import ModelConfig
    from realtime.compose import DEMO_CHECKPOINT
    if DEMO_CHECKPOINT.exists():
        from training.checkpoint import checkpoint_config, read_checkpoint
        return checkpoint_config(read_checkpoint(DEMO_CHECKPOINT), DEMO_CHECKPOINT), \
            f"config of {DEMO_CHECKPOINT.name}"
    return ModelConfig(**DEMO_CONFIG_DICT), \
        "demo architecture (64x64, num_down 2, channel_divisor 8; " \
        "realtime/assets/demo_model.pt absent)"


def model_config(name: str):
    from training import RELEASED
    if name == "released":
        return RELEASED, "the authors' released checkpoint's architecture"
    if name == "demo":
        return demo_config()
    raise ValueError(f"unknown config {name!r}; known: {CONFIG_NAMES}")


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
# Engine section
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


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _wanted(label: str, s: Settings) -> bool:
    return not s.backends or any(b in label.lower() for b in s.backends)


def build_variants(G, style, cfg_name: str, s: Settings, tmp: Path,
                   log: Callable[[str], None]) -> tuple[list[Variant], list[dict]]:
    """Every backend this machine can run for generator ``G`` (on the CPU, random weights) with
    ``style`` baked in, and the reasons for those it cannot."""
    import torch
    from realtime.engines.onnxruntime import OnnxRuntimeEngine, ort_providers
    from realtime.engines.torch import TorchEngine

    cuda = s.device == "cuda"
    dev = "cuda" if cuda else "cpu"
    max_gpu = s.max_gpu_batch
    small = [b for b in s.batches if b <= 8]
    max_cpu = max(small) if small else max(s.batches)
    maxb = max_gpu if cuda else max(s.batches)
    variants: list[Variant] = []
    skipped: list[dict] = []
    z = style.tensor()

    def skip(label, reason):
        skipped.append({"config": cfg_name, "backend": label, "reason": reason})
        log(f"  [yellow]skip[/] {label}: {reason}")

    def attempt(label, make: Callable[[], Variant | None]):
        if not _wanted(label, s):
            return
        try:
            v = make()
        except Exception as e:  # noqa: BLE001 - a backend that fails to build is reported, not fatal
            skip(label, f"failed to build: {_first_line(e)}")
            return
        if v is not None:
            variants.append(v)

    # -- baseline and reference: the authors' way, eager fp32, per-image styles ------------
    G_dev = copy.deepcopy(G).to(dev).eval().requires_grad_(False)
    z_dev = z.to(dev)
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
        from benchmarks.engines import authors_blur

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
                           dict(dtype=torch.float16, cuda_graphs=True))):
            attempt(label, lambda kw=kw, label=label: _engine_variant(
                TorchEngine(G, style, device="cuda", max_batch=max_gpu, **kw), "torch", label))
    if not cuda or s.cpu_on_gpu:
        attempt("torch-cpu fp32", lambda: _engine_variant(
            TorchEngine(G, style, device="cpu", max_batch=max_cpu), "torch", "torch-cpu fp32",
            max_batch=max_cpu))

    # -- onnxruntime ----------------------------------------------------------------------
    from export.onnx import export_onnx, quantize_onnx
    providers = ort_providers()
    paths: dict[str, Path] = {}

    def exported(key: str, **kw) -> Path:
        if key not in paths:
            t0 = time.perf_counter()
            p = tmp / f"{cfg_name}-{key}.onnx"
            export_onnx(G, p, style=style, **kw)
            paths[key] = p
            log(f"  exported {p.name} in {time.perf_counter() - t0:.1f} s")
        return paths[key]

    if not cuda or s.cpu_on_gpu:
        attempt("onnxruntime-cpu fp32", lambda: _engine_variant(
            OnnxRuntimeEngine(exported("cpu", target="cpu"), device="cpu", threads=s.threads,
                              max_batch=max_cpu), "onnxruntime", "onnxruntime-cpu fp32",
            max_batch=max_cpu))
        if not s.int8:
            skip("onnxruntime-cpu int8", "--quick" if s.quick else "--no-int8")
        else:
            def make_int8():
                from export.verify import astronaut_crops
                src = exported("cpu-int8-src", target="cpu-int8")
                dst = tmp / f"{cfg_name}-int8.onnx"
                t0 = time.perf_counter()
                calib = astronaut_crops(G.config.size, n=8, seed=2).numpy()
                quantize_onnx(src, dst, calibration=calib)
                log(f"  quantized {dst.name} in {time.perf_counter() - t0:.1f} s")
                v = _engine_variant(OnnxRuntimeEngine(dst, device="cpu", threads=s.threads,
                                                      max_batch=max_cpu),
                                    "onnxruntime", "onnxruntime-cpu int8", max_batch=max_cpu)
                v.exact = False
                v.note = "static QDQ, per-channel, calibrated on astronaut crops"
                return v
            attempt("onnxruntime-cpu int8", make_int8)
    else:
        skip("onnxruntime-cpu fp32", "--no-cpu-on-gpu")
    if cuda:
        if "CUDAExecutionProvider" not in providers:
            skip("onnxruntime-cuda fp16", f"this onnxruntime has no CUDAExecutionProvider "
                                          f"({', '.join(providers)}): install onnxruntime-gpu")
        else:
            attempt("onnxruntime-cuda fp16", lambda: _engine_variant(
                OnnxRuntimeEngine(exported("gpu-fp16", target="gpu", precision="fp16"),
                                  device="cuda", max_batch=max_gpu),
                "onnxruntime", "onnxruntime-cuda fp16"))
        if "TensorrtExecutionProvider" not in providers:
            skip("onnxruntime-tensorrt fp16", "this onnxruntime has no TensorrtExecutionProvider")
        else:
            attempt("onnxruntime-tensorrt fp16", lambda: _engine_variant(
                OnnxRuntimeEngine(exported("gpu-fp16", target="gpu", precision="fp16"),
                                  device="cuda", max_batch=max_gpu, tensorrt_ep=True,
                                  trt_cache_dir=tmp / "ort-trt-cache"),
                "onnxruntime", "onnxruntime-tensorrt fp16"))
    else:
        skip("onnxruntime-cuda fp16", "no CUDA device")

    # -- TensorRT ---------------------------------------------------------------------------
    if not cuda:
        skip("tensorrt fp16", "no CUDA device")
    else:
        try:
            import tensorrt  # noqa: F401
            trt_ok = True
        except ImportError as e:
            trt_ok = False
            skip("tensorrt fp16", f"`import tensorrt` fails ({e}); TensorRT wheels come from "
                                  "NVIDIA's own index")
        if trt_ok:
            def make_trt():
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
            attempt("tensorrt fp16", make_trt)
    return variants, skipped


def _engine_variant(engine, backend: str, label: str, max_batch: int | None = None) -> Variant:
    import torch
    names = {torch.float16: "fp16", torch.float32: "fp32", torch.bfloat16: "bf16"}
    prec = names.get(engine.dtype, "?")
    if "int8" in label:
        prec = "int8"

    def run(x):
        with torch.no_grad():
            return engine(x)
    return Variant(label, backend, engine.device.type, prec, run, engine=engine,
                   max_batch=max_batch or engine.max_batch, note=engine.name)


def _engine_row(cfg_name: str, v: Variant, batch: int, timed, flops: float) -> dict:
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


def _parity(out, ref) -> float | None:
    try:
        return float((out.detach().float().cpu() - ref.detach().float().cpu()).abs().max())
    except Exception:  # noqa: BLE001 - parity is informative only
        return None


def _is_oom(e: BaseException) -> bool:
    return "out of memory" in str(e).lower() or type(e).__name__ == "OutOfMemoryError"


def run_engine_section(s: Settings, console, tmp: Path) -> tuple[dict, dict]:
    """The engine rows of every config; returns (section JSON, {config: [Variant]})."""
    import torch
    from export.verify import astronaut_crops
    from training.style import StyleCode
    from training import Generator

    section: dict = {"configs": {}, "rows": [], "skipped": [], "peaks": {}}
    kept: dict[str, list[Variant]] = {}
    style = StyleCode.from_seed(STYLE_SEED)
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
        torch.manual_seed(0)
        G = Generator.from_config(cfg).eval().requires_grad_(False)
        variants, skipped = build_variants(G, style, cfg_name, s, tmp,
                                           lambda m: console.print(m, highlight=False))
        section["skipped"] += skipped
        kept[cfg_name] = variants
        faces = astronaut_crops(cfg.size, n=8, seed=1)
        history: dict[str, list[tuple[int, float]]] = {v.label: [] for v in variants}
        batches = list(s.batches)
        if s.device == "cuda":
            b = max(batches) * 2
            while b <= s.max_gpu_batch:
                batches.append(b)
                b *= 2
        done: set[str] = set()
        for batch in batches:
            extra = batch > max(s.batches)
            groups: dict[str, list[Variant]] = {}
            for v in variants:
                if v.label in done or batch > (v.max_batch or batch):
                    continue
                if extra:                 # beyond the asked batches: only while still growing
                    h = history[v.label]
                    if v.device != "cuda" or len(h) < 2 or h[-1][1] < GROWTH * h[-2][1]:
                        continue
                groups.setdefault(v.device, []).append(v)
            if not groups:
                break
            x_host = faces[torch.arange(batch) % faces.shape[0]].contiguous()
            ref_out = None
            base = next((v for v in variants if v.role == "baseline"), None)
            for dev, group in sorted(groups.items(), key=lambda kv: kv[0] != s.device):
                x = x_host.to(dev)
                t0 = time.perf_counter()
                parity: dict[str, float | None] = {}
                calls = []
                for v in group:               # first call: parity against the baseline
                    try:
                        with torch.no_grad():
                            out = v.fn(x)
                        if v.role == "baseline":
                            ref_out = out
                        parity[v.label] = None if ref_out is None or v is base else \
                            _parity(out, ref_out)
                        calls.append((v.label, (lambda v=v, x=x: _no_grad(v.fn, x))))
                    except Exception as e:  # noqa: BLE001 - recorded; the others go on
                        done.add(v.label)
                        section["skipped"].append({"config": cfg_name, "backend": v.label,
                                                   "reason": f"batch {batch}: {_first_line(e)}"})
                        console.print(f"  [yellow]{v.label}: stops at batch {batch}: "
                                      f"{_first_line(e)}[/]", highlight=False)
                        if is_cuda(dev):
                            torch.cuda.empty_cache()
                def on_error(name, e):
                    done.add(name)
                    if is_cuda(dev):
                        torch.cuda.empty_cache()
                    return True
                timed = round_robin(calls, device=dev, warmup=max(0, s.warmup_for(dev) - 1),
                                    reps=s.reps_for(cfg_name, dev),
                                    max_seconds=s.max_seconds_for(cfg_name, dev), on_error=on_error)
                for v in group:
                    if v.label not in timed:
                        continue
                    row = _engine_row(cfg_name, v, batch, timed[v.label], flops)
                    row["max_abs_vs_baseline"] = parity.get(v.label)
                    if timed[v.label].error:
                        section["skipped"].append({
                            "config": cfg_name, "backend": v.label,
                            "reason": f"batch {batch}: {timed[v.label].error}"})
                    if row["reps"]:
                        section["rows"].append(row)
                        history[v.label].append((batch, row["frames_per_s"]))
                console.print(f"  batch {batch:>3} on {dev}: {len(group)} backends, "
                              f"{max((t.wall_ms.__len__() for t in timed.values()), default=0)} "
                              f"timed calls each, {time.perf_counter() - t0:.0f} s", highlight=False)
                del x
        _fill_speedups(section["rows"], cfg_name)
        section["peaks"][cfg_name] = peaks(section["rows"], cfg_name)
        if "pipeline" not in s.sections or pipeline_model(s) != cfg_name:
            _release(variants)                # free the memory before the next config
            kept[cfg_name] = []
        else:                                 # the pipeline may use one of these engines
            kept[cfg_name] = [v for v in variants if v.engine is not None]
        del G, variants
        import gc
        gc.collect()
        if s.device == "cuda":
            torch.cuda.empty_cache()
    return section, kept


def _no_grad(fn, x):
    import torch
    with torch.no_grad():
        return fn(x)


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


# =============================================================================================
# Pipeline section: media
# =============================================================================================
def synth_frame(width: int, height: int, faces: int, i: int, fps: float, photo) -> np.ndarray:
    """Frame ``i``: ``faces`` astronaut heads (tests/media.py's face_scene) on a grid, each
    drifting slowly (a few % of its cell) with its own phase, so the tracker really tracks."""
    from realtime.synthetic import face_scene
    t = i / fps
    cols = math.ceil(math.sqrt(faces))
    rows = math.ceil(faces / cols)
    cw, ch = width // cols, height // rows
    img = np.full((height, width, 3), (70, 90, 110), np.uint8)
    frac = 0.45 if faces == 1 else 0.5
    for k in range(faces):
        r, c = divmod(k, cols)
        dx = 0.03 * cw * math.sin(2 * math.pi * t / 3.0 + k)
        dy = 0.02 * ch * math.sin(2 * math.pi * t / 2.2 + 2 * k)
        img[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = face_scene(cw, ch, frac, dx=dx, dy=dy,
                                                                   photo=photo)
    return img


def synth_clip(path: Path, width: int, height: int, faces: int, frames: int,
               fps: float = 30.0) -> Path:
    """Encode ``frames`` synthesized frames (H.264, yuv420p, crf 18, as a phone would) to ``path``."""
    import av
    try:
        from realtime.synthetic import astronaut
    except ImportError:
        raise BenchmarkError("the pipeline section synthesizes its videos with tests/media.py: "
                             "run it from the repository root "
                             "(python -m benchmarks.latency)") from None
    try:
        photo = astronaut()
    except ImportError:
        raise BenchmarkError("the pipeline section needs scikit-image for its face photo "
                             "(pip install -e '.[dev]')") from None
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "18"}
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(synth_frame(width, height, faces, i, fps, photo),
                                            format="rgb24")
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


class TimedFileSource:
    """A :class:`realtime.sources.VideoFileSource` that records, per frame index, when its
    decode started and how long it took (file mode)."""

    def __init__(self, path):
        from realtime.sources import VideoFileSource
        self.src = VideoFileSource(path)
        self.info = self.src.info
        self.decode_s: dict[int, float] = {}
        self.start_t: dict[int, float] = {}

    def __iter__(self):
        it = iter(self.src)
        while True:
            t0 = time.monotonic()
            try:
                f = next(it)
            except StopIteration:
                return
            self.decode_s[f.index] = time.monotonic() - t0
            self.start_t[f.index] = t0
            yield f


class SyntheticCamera:
    """A video file played as a camera: frame i is captured at t0 + i/fps (monotonic clock;
    later if decoding fell behind), then decoded; its timestamp is the capture time, as
    :class:`realtime.sources.CameraSource` stamps frames. Loops the file; stops after
    ``frames`` frames. Pacing happens before the capture, outside the decode time recorded."""

    def __init__(self, path, fps: float, frames: int):
        from realtime.sources import VideoFileSource
        self.src = VideoFileSource(path)
        self.info = self.src.info
        self.fps, self.frames = fps, frames
        self.decode_s: dict[int, float] = {}
        self.start_t: dict[int, float] = {}
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def _decoded(self):
        while True:
            n = 0
            for f in self.src:
                n += 1
                yield f.image
            if n == 0:
                return

    def __iter__(self):
        from realtime.types import Frame
        images = self._decoded()
        t0 = time.monotonic() + 0.01
        for i in range(self.frames):
            if self.stopped:
                return
            due = t0 + i / self.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            captured = max(due, time.monotonic())
            img = next(images)
            self.decode_s[i] = time.monotonic() - captured
            self.start_t[i] = captured
            yield Frame(img, captured, i)


class NullSink:
    """Live mode's sink: the frame is ready to show (a window or virtual camera would take it)."""

    def write(self, frame) -> None:
        pass

    def close(self) -> None:
        pass

    abort = close


class LockedEngine:
    """One engine shared by several pipelines: calls are serialised (CUDA-graph engines reuse
    static buffers and are not safe to call from two threads at once)."""

    def __init__(self, engine):
        self.engine = engine
        self.max_batch = engine.max_batch
        self.size = engine.size
        self._lock = threading.Lock()

    def __call__(self, crops):
        with self._lock:
            return self.engine(crops)


# =============================================================================================
# Pipeline section: runs
# =============================================================================================
def pipeline_model(s: Settings) -> str:
    if s.pipeline_model == "auto":
        return "released" if s.device == "cuda" else "demo"
    return s.pipeline_model


def _release(variants: Sequence[Variant], keep=None) -> None:
    """Close every engine but ``keep`` (frees GPU memory: CUDA graph pools, weights)."""
    for v in variants:
        if v.engine is not None and v.engine is not keep:
            try:
                v.engine.close()
            except Exception:  # noqa: BLE001 - closing after the measurements
                pass


def pick_pipeline_engine(s: Settings, engine_section: dict | None, kept: dict, tmp: Path, console):
    """(engine, model name, why): the fastest exact engine measured at batch 1 for the
    pipeline's model config, else the product's default for the device."""
    from realtime.engines import IdentityEngine
    model = pipeline_model(s)
    if model == "identity":
        return IdentityEngine(size=256, device=s.device), "identity", \
            "identity model: everything but the network"
    cands = [v for v in kept.get(model, []) if v.engine is not None and v.exact]
    if engine_section and cands:
        ms = {r["label"]: r["ms_per_frame"] for r in engine_section["rows"]
              if r["config"] == model and r["batch"] == 1 and r["reps"]}
        timed = [v for v in cands if v.label in ms and v.device == s.device]
        if timed:
            best = min(timed, key=lambda v: ms[v.label])
            return best.engine, model, f"fastest exact engine at batch 1 in the engine section " \
                                       f"({ms[best.label]:.2f} ms a frame)"
    # not measured here: build the product's choice for the device
    import torch
    from training.style import StyleCode
    from training import Generator
    cfg, _ = model_config(model)
    torch.manual_seed(0)
    G = Generator.from_config(cfg).eval().requires_grad_(False)
    style = StyleCode.from_seed(STYLE_SEED)
    if s.device == "cuda":
        from realtime.engines.torch import TorchEngine
        return TorchEngine(G, style, device="cuda", max_batch=16), model, \
            "torch fp16 + CUDA graphs (engine section not run)"
    from export.onnx import export_onnx
    from realtime.engines.onnxruntime import OnnxRuntimeEngine
    p = tmp / f"pipeline-{model}.onnx"
    export_onnx(G, p, style=style, target="cpu")
    return OnnxRuntimeEngine(p, device="cpu", threads=s.threads, max_batch=8), model, \
        "onnxruntime on the CPU, the product's auto choice there (engine section not run)"


def _prewarm(engine, device: str, sizes: Sequence[int]) -> None:
    """Call the engine once per batch size the run will use (CUDA graphs are captured per size,
    cuDNN autotunes per shape): none of that lands in the measured frames."""
    import torch
    for n in sizes:
        x = torch.zeros(n, 3, engine.size, engine.size, device=device)
        with torch.no_grad():
            engine(x)
    if is_cuda(device):
        torch.cuda.synchronize()


def run_pipeline_once(clip: Path, engine, s: Settings, *, mode: str, faces: int,
                      out_dir: Path, parallel: int = 1) -> dict:
    """One pipeline run (``parallel`` > 1: that many file conversions at once sharing the
    engine). Returns the row: per-stage and end-to-end percentiles over the measured frames."""
    from realtime.faces import Aligner, Compositor, CropTemplate, FaceTracker, TrackerConfig
    from realtime.pipeline import Pipeline
    from realtime.sinks import VideoFileSink, pick_video_codec

    live = mode == "live"
    device = s.device
    n_frames = s.frames + s.warmup_frames
    shared = LockedEngine(engine) if parallel > 1 else engine
    codec = pick_video_codec(None, device) if not live else None
    runs = []
    for j in range(parallel):
        template = CropTemplate.default(engine.size)
        tracker = FaceTracker(TrackerConfig(max_faces=faces), template=template)
        aligner = Aligner(template, device=None if device == "cpu" else device)
        if live:
            src = SyntheticCamera(clip, s.live_fps, n_frames)
            sinks = [NullSink()]
        else:
            src = TimedFileSource(clip)
            w, h = src.info.display_size
            sinks = [VideoFileSink(out_dir / f"out-{mode}-{j}.mp4", width=w, height=h,
                                   info=src.info, codec=codec, preset="veryfast", crf=18)]
        records: list[tuple[int, float, dict, int]] = []

        def on_output(frame, work, records=records):
            records.append((frame.index, time.monotonic(), dict(work.timings), len(work.tracks)))
        pipe = Pipeline(src, tracker, aligner, shared, Compositor(template), sinks, live=live,
                        device=device, batch_frames=s.batch_frames, on_output=on_output)
        runs.append((pipe, src, tracker, records))

    t_start = time.monotonic()
    errors: list[BaseException] = []
    if parallel == 1:
        try:
            runs[0][0].run()
        finally:
            runs[0][2].close()
    else:
        def go(r):
            try:
                r[0].run()
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)
            finally:
                r[2].close()
        threads = [threading.Thread(target=go, args=(r,), name=f"bench-file-{k}")
                   for k, r in enumerate(runs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    wall = time.monotonic() - t_start

    stage_ms: dict[str, list[float]] = {st: [] for st in STAGES}
    e2e, found, out_times = [], [], []
    frames_in = frames_out = dropped = 0
    engine_busy = 0.0
    for pipe, src, tracker, records in runs:
        summ = pipe.stats.summary()
        frames_in += summ["frames_in"]
        frames_out += summ["frames_out"]
        dropped += summ["dropped_total"]
        engine_busy += float(sum(pipe.stats.times["engine"]))
        for index, t_out, timings, n_tracks in records:
            if index < s.warmup_frames:
                continue
            stage_ms["decode"].append(src.decode_s.get(index, float("nan")) * 1000)
            for st in STAGES[1:]:
                stage_ms[st].append(timings.get(st, 0.0) * 1000)
            e2e.append((t_out - src.start_t[index]) * 1000)
            found.append(n_tracks)
            out_times.append(t_out)
    out_times.sort()
    measured = len(e2e)
    if live:     # delivered frames per second of camera time (= the camera rate when none drop)
        fps = measured / s.frames * s.live_fps
    else:        # output rate over the measured frames
        span = (out_times[-1] - out_times[0]) if measured > 1 else float("nan")
        fps = (measured - 1) / span if measured > 1 and span > 0 else float("nan")
    stages = {st: percentiles(v) for st, v in stage_ms.items()}
    stage_sum = sum(v["mean"] for v in stages.values() if np.isfinite(v["mean"]))
    e2e_st = percentiles(e2e)
    return {
        "mode": mode, "faces": faces, "parallel": parallel,
        "frames_in": frames_in, "frames_out": frames_out, "measured_frames": measured,
        "warmup_frames": s.warmup_frames, "dropped": dropped,
        "faces_found_mean": float(np.mean(found)) if found else 0.0,
        "fps": fps, "wall_s": wall,
        "stages": stages, "end_to_end": e2e_st,
        "stage_sum_mean_ms": stage_sum,
        "wait_mean_ms": max(0.0, e2e_st["mean"] - stage_sum) if measured else float("nan"),
        "engine_busy_fraction": engine_busy / wall if wall > 0 else float("nan"),
        "engine_share_of_stage_time": ratio(stages["engine"]["mean"], stage_sum),
        "codec": codec, "sink": "none (frame ready to show)" if live else f"file ({codec})",
    }


def run_pipeline_section(s: Settings, console, tmp: Path, engine_section, kept) -> dict:
    import torch
    engine, model, why = pick_pipeline_engine(s, engine_section, kept, tmp, console)
    for name in list(kept):                 # only the pipeline's engine stays alive
        _release(kept[name], keep=engine)
        kept[name] = [v for v in kept[name] if v.engine is engine]
    import gc
    gc.collect()
    if s.device == "cuda":
        torch.cuda.empty_cache()
    name = getattr(engine, "name", str(engine))
    console.print(f"[bold]pipeline[/] · model {model} · engine [bold]{name}[/] on {s.device} — "
                  f"{why}", highlight=False)
    section: dict = {"model": model, "engine": getattr(engine, "name", str(engine)),
                     "engine_choice": why, "device": s.device, "live_fps": s.live_fps,
                     "batch_frames": s.batch_frames, "rows": [], "skipped": []}
    sizes = sorted({min(engine.max_batch, n) for n in range(1, max(s.faces) * s.batch_frames + 1)}) \
        if s.device == "cuda" else [1]
    _prewarm(engine, s.device, sizes)
    clip_frames = s.frames + s.warmup_frames
    for res in s.resolutions:
        w, h = RESOLUTIONS[res]
        for faces in s.faces:
            t0 = time.perf_counter()
            clip = synth_clip(tmp / f"clip-{res}-{faces}.mp4", w, h, faces, clip_frames,
                              fps=s.live_fps)
            console.print(f"  {res}, {faces} face(s): clip of {clip_frames} frames made in "
                          f"{time.perf_counter() - t0:.1f} s", highlight=False)
            for mode in s.modes:
                out_dir = Path(tempfile.mkdtemp(prefix="out-", dir=tmp))
                row = run_pipeline_once(clip, engine, s, mode=mode, faces=faces, out_dir=out_dir)
                row.update(resolution=res, width=w, height=h)
                section["rows"].append(row)
                shutil.rmtree(out_dir, ignore_errors=True)
                e = row["end_to_end"]
                console.print(f"    {mode:4}: {row['fps']:.1f} fps, end to end p50 {e['p50']:.1f} ms "
                              f"p95 {e['p95']:.1f} ms, {row['faces_found_mean']:.2f} faces a frame, "
                              f"{row['dropped']} dropped", highlight=False)
                if faces and row["faces_found_mean"] < 0.5 * faces:
                    console.print(f"    [yellow]warning: the tracker found "
                                  f"{row['faces_found_mean']:.2f} of {faces} faces a frame on "
                                  "average[/]")
            clip.unlink(missing_ok=True)
    if s.parallel_files > 1 and "file" in s.modes:
        w, h = RESOLUTIONS["1920x1080"]
        clip = synth_clip(tmp / "clip-parallel.mp4", w, h, 1, clip_frames, fps=s.live_fps)
        out_dir = Path(tempfile.mkdtemp(prefix="out-par-", dir=tmp))
        row = run_pipeline_once(clip, engine, s, mode="file", faces=1, out_dir=out_dir,
                                parallel=s.parallel_files)
        row.update(resolution="1920x1080", width=w, height=h)
        section["rows"].append(row)
        shutil.rmtree(out_dir, ignore_errors=True)
        console.print(f"  1920x1080 file x{s.parallel_files} at once: {row['fps']:.1f} frames/s in "
                      f"aggregate, engine busy {100 * row['engine_busy_fraction']:.0f}% of the wall "
                      "time", highlight=False)
    elif s.parallel_files <= 1:
        section["skipped"].append({"what": "parallel file conversion",
                                   "reason": "--parallel-files is 0 (default on the CPU)"})
    if s.device == "cuda":
        torch.cuda.synchronize()
    return section


# =============================================================================================
# Targets (FACTS.md / issue) — only those the run measured
# =============================================================================================
def evaluate_targets(result: dict) -> list[dict]:
    out: list[dict] = []
    eng = result.get("engine") or {}
    rows = eng.get("rows", [])

    def row(cfg, label, batch):
        return next((r for r in rows if r["config"] == cfg and r["label"] == label
                     and r["batch"] == batch), None)

    for batch in (1, 4):
        for label, goal in (("onnxruntime-cpu fp32", 2.5), ("onnxruntime-cpu int8", 4.0)):
            r = row("released", label, batch)
            if r and r.get("speedup_vs_baseline") is not None:
                precision = label.split()[-1]
                out.append({"target": f"CPU: onnxruntime {precision} >= {goal:g}x the baseline per "
                                      f"frame, released, batch {batch}",
                            "value": r["speedup_vs_baseline"], "goal": goal,
                            "met": r["speedup_vs_baseline"] >= goal,
                            "note": (f"vs the authors' CPU blur: {r['speedup_vs_authors_cpu']:.2f}x"
                                     if r.get("speedup_vs_authors_cpu") else "")})
    for batch in (1, 8):
        cands = [r for r in rows if r["config"] == "released" and r["batch"] == batch
                 and r["device"] == "cuda" and r["role"] == "engine" and r.get("speedup_vs_baseline")]
        if cands:
            best = max(cands, key=lambda r: r["speedup_vs_baseline"])
            out.append({"target": f"GPU: best backend >= 10x the baseline, released, batch {batch}",
                        "value": best["speedup_vs_baseline"], "goal": 10.0,
                        "met": best["speedup_vs_baseline"] >= 10.0, "note": best["label"]})
    pipe = result.get("pipeline") or {}
    if pipe.get("device") == "cuda" and pipe.get("model") == "released":
        for r in pipe.get("rows", []):
            if r["resolution"] == "1280x720" and r["faces"] == 1 and r["mode"] == "live" \
                    and r["parallel"] == 1:
                p95 = r["end_to_end"]["p95"]
                out.append({"target": "GPU: 1280x720 live, one face: >= 120 fps, "
                                      "end-to-end p95 <= 12 ms",
                            "value": r["fps"], "goal": 120.0,
                            "met": bool(r["fps"] >= 120 and p95 is not None and p95 <= 12),
                            "note": f"p95 {p95:.1f} ms at a {pipe.get('live_fps')} fps camera"})
            if r["resolution"] == "1920x1080" and r["mode"] == "file" and r["parallel"] > 1:
                busy = 100 * r["engine_busy_fraction"]
                out.append({"target": f"GPU: 1920x1080 files, {r['parallel']} at once: "
                                      ">= 200 frames/s in aggregate",
                            "value": r["fps"], "goal": 200.0, "met": r["fps"] >= 200,
                            "note": f"engine busy {busy:.0f}% of the wall time"})
    return out


# =============================================================================================
# Schema
# =============================================================================================
STAT_KEYS = ("p50", "p95", "p99", "mean", "min", "max", "n")
ENGINE_ROW_KEYS = ("config", "label", "backend", "device", "precision", "role", "exact", "batch",
                   "reps", "ms_per_batch", "ms_per_frame", "frames_per_s", "tflops",
                   "speedup_vs_baseline", "speedup_vs_authors_cpu", "max_abs_vs_baseline")
PIPELINE_ROW_KEYS = ("resolution", "width", "height", "faces", "mode", "parallel", "frames_in",
                     "frames_out", "measured_frames", "dropped", "faces_found_mean", "fps",
                     "stages", "end_to_end", "engine_busy_fraction")
MACHINE_KEYS = ("cpu", "cpu_count", "threads", "torch", "gpu", "driver", "libraries", "loadavg")


def _num_or_none(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _check_stats(st, where: str, problems: list[str]) -> None:
    if not isinstance(st, dict):
        problems.append(f"{where}: expected a statistics object, got {type(st).__name__}")
        return
    for k in STAT_KEYS:
        if k not in st:
            problems.append(f"{where}: missing {k!r}")
        elif not _num_or_none(st[k]):
            problems.append(f"{where}.{k}: not a number")


def validate(result: dict) -> list[str]:
    """Problems with the structure of a latency result (as read back from its JSON); empty
    when it is well formed. Checks keys and types, not times."""
    problems: list[str] = []
    if not isinstance(result, dict):
        return [f"the result must be an object, got {type(result).__name__}"]
    if result.get("schema") != SCHEMA:
        problems.append(f"schema must be {SCHEMA!r}, got {result.get('schema')!r}")
    if result.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version must be {SCHEMA_VERSION}, "
                        f"got {result.get('schema_version')!r}")
    for k in ("date", "command", "quick", "device", "machine", "settings", "engine", "pipeline",
              "targets", "plots"):
        if k not in result:
            problems.append(f"missing top-level key {k!r}")
    for k in MACHINE_KEYS:
        if k not in (result.get("machine") or {}):
            problems.append(f"machine: missing {k!r}")
    eng = result.get("engine")
    if eng is not None:
        for k in ("configs", "rows", "skipped", "peaks"):
            if k not in eng:
                problems.append(f"engine: missing {k!r}")
        for name, c in (eng.get("configs") or {}).items():
            fl = (c or {}).get("flops_per_frame") or {}
            if not all(isinstance(fl.get(k), (int, float)) and fl.get(k) > 0
                       for k in ("encode", "decode", "total")):
                problems.append(f"engine.configs.{name}: flops_per_frame needs positive encode, "
                                "decode and total")
        seen_baseline: set = set()
        batches: set = set()
        for i, r in enumerate(eng.get("rows") or []):
            where = f"engine.rows[{i}]"
            missing = [k for k in ENGINE_ROW_KEYS if k not in r]
            if missing:
                problems.append(f"{where}: missing {missing}")
                continue
            if r["config"] not in (eng.get("configs") or {}):
                problems.append(f"{where}: config {r['config']!r} not in engine.configs")
            if not isinstance(r["batch"], int) or r["batch"] < 1:
                problems.append(f"{where}: batch must be a positive integer")
            if r["role"] not in ("baseline", "reference", "engine"):
                problems.append(f"{where}: role {r['role']!r}")
            _check_stats(r["ms_per_batch"], f"{where}.ms_per_batch", problems)
            for k in ("ms_per_frame", "frames_per_s", "tflops", "speedup_vs_baseline",
                      "speedup_vs_authors_cpu", "max_abs_vs_baseline"):
                if not _num_or_none(r[k]):
                    problems.append(f"{where}.{k}: not a number")
            batches.add((r["config"], r["batch"]))
            if r["role"] == "baseline":
                seen_baseline.add((r["config"], r["batch"]))
                if r["speedup_vs_baseline"] is not None and abs(r["speedup_vs_baseline"] - 1) > 1e-9:
                    problems.append(f"{where}: the baseline's speed-up over itself must be 1")
        for cfg, b in sorted(batches - seen_baseline):
            problems.append(f"engine: no baseline row for config {cfg!r} at batch {b}")
    pipe = result.get("pipeline")
    if pipe is not None:
        for k in ("model", "engine", "device", "rows", "skipped"):
            if k not in pipe:
                problems.append(f"pipeline: missing {k!r}")
        for i, r in enumerate(pipe.get("rows") or []):
            where = f"pipeline.rows[{i}]"
            missing = [k for k in PIPELINE_ROW_KEYS if k not in r]
            if missing:
                problems.append(f"{where}: missing {missing}")
                continue
            if r["mode"] not in MODES:
                problems.append(f"{where}: mode {r['mode']!r}")
            if set(r["stages"]) != set(STAGES):
                problems.append(f"{where}: stages must be {list(STAGES)}, got {sorted(r['stages'])}")
            for st in STAGES:
                if st in r["stages"]:
                    _check_stats(r["stages"][st], f"{where}.stages.{st}", problems)
            _check_stats(r["end_to_end"], f"{where}.end_to_end", problems)
            for k in ("fps", "faces_found_mean", "engine_busy_fraction"):
                if not _num_or_none(r[k]):
                    problems.append(f"{where}.{k}: not a number")
    for i, tg in enumerate(result.get("targets") or []):
        if not {"target", "value", "goal", "met"} <= set(tg):
            problems.append(f"targets[{i}]: needs target, value, goal and met")
    return problems


# =============================================================================================
# Report
# =============================================================================================
def _f(v, fmt="{:.1f}", none="—"):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return none
    return fmt.format(v)


def print_report(result: dict, console) -> None:
    from rich.table import Table
    m = result["machine"]
    console.print(f"[bold]machine[/]: {describe_machine(m)}; torch {m['torch']}, onnxruntime "
                  f"{m['libraries'].get('onnxruntime')}, load average at start "
                  f"{m['loadavg'][0] if m.get('loadavg') else '?'}", highlight=False)
    eng = result.get("engine")
    if eng:
        for cfg_name, cfg in eng["configs"].items():
            rows = [r for r in eng["rows"] if r["config"] == cfg_name]
            if not rows:
                continue
            gf = cfg["flops_per_frame"]["total"] / 1e9
            t = Table(title=f"Engines · {cfg_name} ({cfg['description']}, {gf:.2f} GFLOP a "
                            "frame) · ms per batch, speed-up over the baseline at the same batch")
            for col in ("backend", "batch", "p50", "p95", "p99", "ms/frame", "frames/s",
                        "× baseline", "TFLOP/s", "max |Δ|", "n"):
                t.add_column(col, justify="left" if col == "backend" else "right", no_wrap=True)
            for r in sorted(rows, key=lambda r: (r["batch"], r["role"] != "baseline",
                                                 r["role"] != "reference", r["label"])):
                mb = r["ms_per_batch"]
                style = {"baseline": "bold", "reference": "dim"}.get(r["role"])
                t.add_row(r["label"], str(r["batch"]), _f(mb["p50"], "{:.2f}"),
                          _f(mb["p95"], "{:.2f}"), _f(mb["p99"], "{:.2f}"),
                          _f(r["ms_per_frame"], "{:.2f}"),
                          _f(r["frames_per_s"], "{:.1f}"), _f(r["speedup_vs_baseline"], "{:.2f}"),
                          _f(r["tflops"], "{:.3f}"), _f(r["max_abs_vs_baseline"], "{:.1e}"),
                          str(r["reps"]), style=style)
            console.print(t)
        for sk in eng.get("skipped", []):
            console.print(f"  not measured: {sk['backend']} ({sk['config']}): {sk['reason']}",
                          highlight=False)
    pipe = result.get("pipeline")
    if pipe and pipe.get("rows"):
        t = Table(title=f"Pipeline · {pipe['model']} model, {pipe['engine']} on {pipe['device']} · "
                        "per-stage p50 ms per frame, end to end p50/p95/p99 ms")
        for col in ("input", "faces", "mode", *STAGES, "e2e p50", "p95", "p99", "fps", "dropped",
                    "found"):
            t.add_column(col, justify="left" if col in ("input", "mode") else "right", no_wrap=True)
        for r in pipe["rows"]:
            mode = r["mode"] if r["parallel"] == 1 else f"file ×{r['parallel']}"
            st = r["stages"]
            e = r["end_to_end"]
            t.add_row(r["resolution"], str(r["faces"]), mode,
                      *[_f(st[s_]["p50"], "{:.2f}") for s_ in STAGES],
                      _f(e["p50"]), _f(e["p95"]), _f(e["p99"]), _f(r["fps"]), str(r["dropped"]),
                      _f(r["faces_found_mean"], "{:.2f}"))
        console.print(t)
    for tg in result.get("targets", []):
        mark = "[green]met[/]" if tg["met"] else "[red]missed[/]"
        console.print(f"target: {tg['target']}: {tg['value']:.2f} (goal {tg['goal']:g}) {mark}"
                      + (f" — {tg['note']}" if tg.get("note") else ""), highlight=False)


# =============================================================================================
# Main
# =============================================================================================
def busy_warning(machine: dict) -> str | None:
    """A note when other jobs already load the CPU: multi-threaded PyTorch then stalls at every
    parallel region waiting for a core (seen here: a 0.55 GFLOP model took 1.5 s a frame with 2
    threads on 2 busy cores, 11 ms with 1 thread), so CPU timings become erratic."""
    load = (machine.get("loadavg") or [0])[0]
    cores = machine.get("cpu_affinity") or machine.get("cpu_count") or 1
    if load >= 0.5 * cores:
        return (f"the machine is already busy (load average {load:.1f} on {cores} cores): "
                f"CPU timings with {machine.get('threads')} threads will be erratic; compare runs "
                "made under a similar load, or time with --threads 1")
    return None


def run(s: Settings, console, argv: Sequence[str] | None = None) -> dict:
    import torch
    torch.set_num_threads(s.threads)
    t_start = time.perf_counter()
    result: dict = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.latency "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": s.quick, "device": s.device,
        "machine": machine_info(s.threads),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(s).items()},
        "engine": None, "pipeline": None, "targets": [], "plots": [], "skipped_sections": [],
        "warnings": [],
    }
    console.print(f"[bold]latency benchmark[/] on {describe_machine(result['machine'])}",
                  highlight=False)
    busy = busy_warning(result["machine"])
    if busy:
        result["warnings"].append(busy)
        console.print(f"[yellow]warning:[/] {busy}", highlight=False)
    tmp = Path(tempfile.mkdtemp(prefix="gnr-latency-"))
    kept: dict = {}
    try:
        if "engine" in s.sections:
            result["engine"], kept = run_engine_section(s, console, tmp)
        else:
            result["skipped_sections"].append({"section": "engine", "reason": "--sections"})
        if "pipeline" in s.sections:
            result["pipeline"] = run_pipeline_section(s, console, tmp, result["engine"], kept)
        else:
            result["skipped_sections"].append({"section": "pipeline", "reason": "--sections"})
    finally:
        for variants in kept.values():
            _release(variants)
        shutil.rmtree(tmp, ignore_errors=True)
    result["targets"] = evaluate_targets(result)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result["machine"]["loadavg_end"] = [round(v, 2) for v in load] if load else None
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    return result


def write_roundtrip(result: dict) -> dict:
    """The result as its JSON will read back (NaN -> null, tuples -> lists)."""
    import json
    from .common import json_safe
    return json.loads(json.dumps(json_safe(result), allow_nan=False))


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console
    s = parse_settings(argv)
    console = Console(width=max(Console().width, 150))
    try:
        result = run(s, console, argv)
    except BenchmarkError as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        return 2
    s.out.mkdir(parents=True, exist_ok=True)
    if s.plots:
        from .plots import write_plots
        result["plots"], notes = write_plots(result, s.out)
        for n in notes:
            console.print(f"[yellow]plots:[/] {n}", highlight=False)
    for problem in validate(write_roundtrip(result)):
        console.print(f"[red]schema problem:[/] {problem}", highlight=False)
    path = write_json(s.out / "latency.json", result)
    print_report(result, console)
    console.print(f"wrote {path}" + "".join(f", {p}" for p in result["plots"])
                  + f" ({result['seconds']:.0f} s)", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
