"""Latency and throughput: the engines alone, and the whole pipeline per stage and end to end.

    python -m benchmarks.latency                       # everything this machine can run
    python -m benchmarks.latency --quick               # a small subset, under a minute on 2 cores
    python -m benchmarks.latency --sections engine --configs released --batches 1,4
    python -m benchmarks.latency --sections pipeline --resolutions 1280x720 --faces 1 --modes live
    python -m benchmarks.compare results/A.json results/B.json

Writes ``latency.json``, ``throughput.png`` and ``stages.png`` to ``--out`` (default
``results/``) and prints the tables.

This file is the command line and the order of a run; each part lives in its own module:

* :mod:`benchmarks.latency_settings` — :class:`Settings`, what a run measures;
* :mod:`benchmarks.latency_engines` — the engine section: every backend variant (the authors'
  eager baseline, the authors'-CPU-blur reference, each engine this machine can run) at several
  batch sizes, timed in turns, with speed-ups over the baseline of the same run;
* :mod:`benchmarks.latency_pipeline` — the pipeline section: synthesized 1- and 4-face videos
  through pipelines built by :func:`realtime.compose.build_pipeline`, live and file mode, per
  stage and end to end, with the fastest exact engine of the engine section;
* :mod:`benchmarks.latency_schema` — the JSON's keys and :func:`validate`;
* :mod:`benchmarks.latency_report` — the printed tables and the targets;
  :mod:`benchmarks.plots` — the PNG plots.

Nothing here asserts on times: the tests check the logic and the JSON's structure.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from .common import describe_machine, machine_info, write_json
from .latency_engines import release, run_engine_section
from .latency_pipeline import run_pipeline_section
from .latency_report import evaluate_targets, print_report
from .latency_schema import MODES, SCHEMA, SCHEMA_VERSION, validate, write_roundtrip
from .latency_settings import (CONFIG_NAMES, PIPELINE_MODELS, RESOLUTIONS, SECTIONS,
                               BenchmarkError, Settings)


# =============================================================================================
# Command line
# =============================================================================================
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
                   choices=PIPELINE_MODELS,
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
    from training.device import DeviceError, resolve_device
    ap = build_parser()
    a = ap.parse_args(argv)
    s = Settings(out=a.out, quick=a.quick)
    s.sections = _choice_list(a.sections, "--sections", SECTIONS, ap)
    try:
        s.device = resolve_device(a.device).type
    except DeviceError as e:
        ap.error(f"argument --device: {str(e).removeprefix('--device ')}")
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
# A run
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
    """The sections ``s`` asks for, in order (the pipeline section may reuse an engine the
    engine section opened); returns the result (the JSON, before plots)."""
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
            release(variants)
        shutil.rmtree(tmp, ignore_errors=True)
    result["targets"] = evaluate_targets(result)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result["machine"]["loadavg_end"] = [round(v, 2) for v in load] if load else None
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    return result


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
