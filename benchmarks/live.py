"""Live-mode soak: a looped 1280×720 file fed faster than the engine can keep up.

Checks what live mode promises: latency stays bounded (p95 per 10 s window does not grow),
stale frames are dropped and counted, memory is flat (RSS after 60 s within 5% of after 10 s).

    python -m benchmarks.live --seconds 60 --out results/live.json
    python -m benchmarks.live --checkpoint ckpt.pt --seconds 60      # a real model
    python -m benchmarks.live --quick                                 # 12 s, for a smoke test

Without --checkpoint it builds a random-weight model of --model-size (default 128, channel
divisor 2): slower than the 25 fps source on a CPU, which is the point.
"""
from __future__ import annotations

import argparse
import json
import os
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


def make_clip(path: Path, seconds: float = 4.0, fps: int = 25) -> Path:
    """A 1280×720 clip of the astronaut's face (about 20% of the width) drifting sideways."""
    import av
    import cv2
    from skimage import data
    photo = data.astronaut()
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = 1280, 720, "yuv420p"
    for i in range(int(seconds * fps)):
        m = cv2.getRotationMatrix2D((255.0, 165.0), 5 * np.sin(i / 20), 1.6)
        m[:, 2] += (640 - 255 + 80 * np.sin(i / 30), 330 - 165)
        img = cv2.warpAffine(photo, m, (1280, 720), borderValue=(60, 80, 100))
        for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)
    out.close()
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--model-size", type=int, default=128)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--window", type=float, default=10.0, help="seconds per latency window")
    p.add_argument("--backend", default="auto")
    p.add_argument("--quick", action="store_true", help="12 s with 4 s windows")
    p.add_argument("--out", type=Path, default=Path("results/live.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.window = 12.0, 4.0

    import torch
    from rich.console import Console
    from rich.table import Table
    from realtime.engines.select import EngineRequest, open_engine
    from realtime.faces import Aligner, Compositor, CropTemplate, FaceTracker
    from realtime.pipeline import Pipeline, PipelineStats
    from realtime.sources import LoopingFileSource
    from training import ModelConfig, build_networks, make_checkpoint, save_checkpoint

    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="gnr-live-"))
    ckpt = args.checkpoint
    if ckpt is None:
        torch.manual_seed(0)
        cfg = ModelConfig(size=args.model_size, num_down=min(4, int(np.log2(args.model_size)) - 3),
                          channel_divisor=2)
        ckpt = save_checkpoint(make_checkpoint({"G_A2B_ema": build_networks(cfg)["G_A2B_ema"]}, cfg),
                               tmp / "random.pt")
    engine, why = open_engine(EngineRequest(checkpoint=ckpt, backend=args.backend, device="cpu",
                                            style_seed=0))
    console.print(f"engine: {engine.name} — {why}", soft_wrap=True)
    torch.set_num_threads(1)
    clip = make_clip(tmp / "clip.mp4")
    source = LoopingFileSource(clip, loop=True, paced=True)
    template = CropTemplate.default(engine.size)
    stats = PipelineStats(window=100_000)
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
        while not stop.wait(args.window):
            sample()

    pipe = Pipeline(source, FaceTracker(template=template), Aligner(template), engine,
                    Compositor(template), [], live=True, stats=stats)
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    pipe.run(idle=lambda: False if time.monotonic() - t0 > args.seconds else None)
    stop.set()
    th.join()
    s = stats.summary()
    full = [w for w in windows if w["p95_ms"] is not None]
    first, last = (full[0], full[-1]) if full else ({}, {})
    result = {
        "benchmark": "live", "engine": engine.name, "checkpoint": str(args.checkpoint or "random"),
        "model_size": engine.size, "input": "1280x720 @ 25 fps, looped", "seconds": args.seconds,
        "windows": windows, "summary": s,
        "rss_growth_pct": (100 * (last["rss_mb"] / first["rss_mb"] - 1)) if full else None,
        "p95_growth_pct": (100 * (last["p95_ms"] / first["p95_ms"] - 1)) if full else None,
    }
    t = Table(title=f"live soak — {engine.name}, {engine.size}px model, 1280×720 looped at 25 fps")
    for col in ("t (s)", "frames out", "p50 ms", "p95 ms", "dropped so far", "RSS MB"):
        t.add_column(col, justify="right")
    for w in windows:
        t.add_row(str(w["t_s"]), str(w["frames"]), f"{w['p50_ms']:.0f}" if w["p50_ms"] else "-",
                  f"{w['p95_ms']:.0f}" if w["p95_ms"] else "-", str(w["dropped_so_far"]), str(w["rss_mb"]))
    console.print(t)
    console.print(f"frames read {s['frames_in']}, shown {s['frames_out']}, dropped {s['dropped_total']}; "
                  f"RSS growth first→last window {result['rss_growth_pct']:.1f}%, "
                  f"p95 growth {result['p95_growth_pct']:.1f}%" if full else "no full window")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
