"""Live-mode soak: a looped 1280×720 file fed faster than the engine can keep up.

Checks what live mode promises: latency stays bounded (p95 per 10 s window does not grow),
stale frames are dropped and counted, memory is flat (RSS after 60 s within 5% of after 10 s).

    python -m benchmarks.live --seconds 60 --out results/live.json
    python -m benchmarks.live --checkpoint ckpt.pt --seconds 60      # a real model
    python -m benchmarks.live --quick                                 # 12 s, for a smoke test

Without --checkpoint it builds a random-weight model of --model-size (default 128, channel
divisor 2): slower than the 25 fps source on a CPU, which is the point. The input is a 4 s
1280×720 clip of the astronaut's head drifting (:func:`realtime.synthetic.synth_clip`), played as
a camera; the pipeline is built like the webcam app's (:func:`realtime.compose.build_pipeline`,
live mode, no sink).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, help="a GNR checkpoint (default: random weights)")
    p.add_argument("--model-size", type=int, default=128,
                   help="size of the random-weight model (default 128)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--window", type=float, default=10.0, help="seconds per latency window")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"))
    p.add_argument("--quick", action="store_true", help="12 s with 4 s windows")
    p.add_argument("--out", type=Path, default=Path("results/live.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.window = 12.0, 4.0
    if args.checkpoint is not None and not args.checkpoint.is_file():
        p.error(f"argument --checkpoint: {args.checkpoint} is not a file")
    if args.model_size not in (32, 64, 128, 256, 512):
        p.error(f"argument --model-size: one of 32, 64, 128, 256, 512, got {args.model_size}")
    if not 0 < args.window <= args.seconds:
        p.error(f"argument --window: must be within 0..--seconds ({args.seconds:g}), "
                f"got {args.window:g}")

    import torch
    from rich.console import Console

    from export.errors import EngineError
    from realtime.engines.select import EngineRequest, open_engine
    from realtime.pipeline import PipelineStats
    from realtime.synthetic import synth_clip
    from training import Generator, ModelConfig, make_checkpoint, save_checkpoint
    from training.messages import one_line

    from .common import write_json

    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="gnr-live-"))
    try:
        ckpt = args.checkpoint
        if ckpt is None:
            torch.manual_seed(0)
            cfg = ModelConfig(size=args.model_size, channel_divisor=2,
                              num_down=min(4, int(np.log2(args.model_size)) - 3))
            ckpt = save_checkpoint(make_checkpoint({"G_A2B_ema": Generator.from_config(cfg)}, cfg),
                                   tmp / "random.pt")
        try:
            engine, why = open_engine(EngineRequest(
                checkpoint=ckpt, backend=args.backend, device="cpu", style_seed=0,
                onnx_cache=tmp if args.checkpoint is None else None))
        except (EngineError, ValueError, OSError) as e:     # CheckpointError is a ValueError
            console.print(f"[red]error:[/] {one_line(e)}", highlight=False)
            return 2
        console.print(f"engine: {engine.name} — {why}", soft_wrap=True)
        torch.set_num_threads(1)
        clip = synth_clip(tmp / "clip.mp4", 1280, 720, faces=1, frames=100, fps=25)
        result = soak(clip, engine, args.seconds, args.window, PipelineStats(window=100_000))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["checkpoint"] = str(args.checkpoint or "random")
    report(result, console)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    console.print(f"wrote {args.out}")
    return 0


def soak(clip: Path, engine, seconds: float, window: float, stats) -> dict:
    """Play ``clip`` as a camera into a live pipeline for ``seconds``; latency, drops and memory
    sampled every ``window`` seconds."""
    from realtime.compose import LoopedInput, PipelineConfig, build_pipeline, open_source
    source = open_source(LoopedInput(clip, loop=True, paced=True))
    windows: list[dict] = []
    t0 = time.monotonic()
    marks = {"seen": 0}

    def sample():
        lat = list(stats.latency)
        new = lat[marks["seen"]:]
        marks["seen"] = len(lat)
        drops = sum(ch.dropped for ch in pipe.channels.values())
        windows.append({"t_s": round(time.monotonic() - t0, 1), "frames": len(new),
                        "p50_ms": float(np.percentile(new, 50) * 1000) if new else None,
                        "p95_ms": float(np.percentile(new, 95) * 1000) if new else None,
                        "dropped_so_far": drops, "rss_mb": round(rss_mb(), 1)})

    stop = threading.Event()

    def sampler():
        while not stop.wait(window):
            sample()

    pipe = build_pipeline(PipelineConfig(live=True), source, engine, [], stats=stats)
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    pipe.run(idle=lambda: False if time.monotonic() - t0 > seconds else None)
    stop.set()
    th.join()
    s = stats.summary()
    full = [w for w in windows if w["p95_ms"] is not None]
    first, last = (full[0], full[-1]) if full else ({}, {})
    return {
        "benchmark": "live", "engine": engine.name, "model_size": engine.size,
        "input": "1280x720 @ 25 fps, looped", "seconds": seconds,
        "windows": windows, "summary": s,
        "rss_growth_pct": (100 * (last["rss_mb"] / first["rss_mb"] - 1)) if full else None,
        "p95_growth_pct": (100 * (last["p95_ms"] / first["p95_ms"] - 1)) if full else None,
    }


def report(result: dict, console) -> None:
    """The windows as a table, then one summary line."""
    from rich.table import Table
    windows, s = result["windows"], result["summary"]
    t = Table(title=f"live soak — {result['engine']}, {result['model_size']}px model, "
                    "1280×720 looped at 25 fps")
    for col in ("t (s)", "frames out", "p50 ms", "p95 ms", "dropped so far", "RSS MB"):
        t.add_column(col, justify="right")
    for w in windows:
        t.add_row(str(w["t_s"]), str(w["frames"]), f"{w['p50_ms']:.0f}" if w["p50_ms"] else "-",
                  f"{w['p95_ms']:.0f}" if w["p95_ms"] else "-", str(w["dropped_so_far"]), str(w["rss_mb"]))
    console.print(t)
    console.print(f"frames read {s['frames_in']}, shown {s['frames_out']}, dropped {s['dropped_total']}; "
                  f"RSS growth first→last window {result['rss_growth_pct']:.1f}%, "
                  f"p95 growth {result['p95_growth_pct']:.1f}%"
                  if result["rss_growth_pct"] is not None else "no full window")


if __name__ == "__main__":
    raise SystemExit(main())
