"""CPU engine benchmark at the released config (256 x 256, random weights), all variants side by
side in one run:

    python -m benchmarks.engines [--quick] [--out results/engines.json] [--threads N]

Variants (the same style for every variant; PSNR and max error against the eager float32 output
on real face crops — the astronaut photo's aligned face, mirrored and jittered):

* ``eager``: our Generator's ``encode`` + ``decode`` with a per-image N x 8 style (the authors'
  modulated grouped-conv path) — the baseline;
* ``eager, authors' upfirdn2d``: the same with the blur computed as the authors' code does on
  the CPU (every channel as a separate single-channel image, blurred at full resolution, then
  decimated) — what FACTS.md measured as the authors' eager cost;
* ``torch baked``: the locked-style model (:func:`export.bake.bake`, CPU layout) in PyTorch;
* ``ort baked``: its ONNX graph (CPU layout: separate depthwise blurs) on onnxruntime's CPU EP;
* ``ort baked, blur folded``: the GPU layout (blurs folded: 6x6/4x4 convs) on the CPU EP;
* ``ort style-as-input``: the dynamic-style graph (one graph for every style);
* ``ort int8``: ``ort baked`` quantized (static QDQ, per-channel, calibrated on other crops).

Timing: warm-up, then the variants are timed in turns (round-robin) so drift from other jobs on
a shared machine hits them all alike; ms per frame p50/p95 at batch 1 and 4; speed-up = baseline
p50 / variant p50 at the same batch. Results as a rich table and JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import cpu_model

import numpy as np
import torch
from torch.nn import functional as F

BATCHES = (1, 4)


def authors_style_upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """The blur as the authors' CPU path computes it: zero insertion, padding, then every channel
    convolved as its own single-channel image at full resolution, decimated afterwards. Same
    result as training.networks.upfirdn2d; benchmark reference only."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1)).reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (p0, p1, p0, p1))
    kh, kw = kernel.shape
    k = torch.flip(kernel, (0, 1)).to(x.dtype).reshape(1, 1, kh, kw)
    y = F.conv2d(x.reshape(n * c, 1, *x.shape[-2:]), k)
    y = y[:, :, ::down, ::down]
    return y.reshape(n, c, *y.shape[-2:])


@contextmanager
def authors_blur():
    import training.networks as nets
    saved = nets.upfirdn2d
    nets.upfirdn2d = authors_style_upfirdn2d
    try:
        yield
    finally:
        nets.upfirdn2d = saved


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed runs (iterating)")
    ap.add_argument("--out", type=Path, default=Path("results/engines.json"), help="JSON output")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per variant and batch")
    ap.add_argument("--skip-authors", action="store_true", help="skip the authors'-upfirdn2d row")
    args = ap.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        ap.error(f"argument --threads: must be >= 1, got {args.threads}")
    if args.runs is not None and args.runs < 1:
        ap.error(f"argument --runs: must be >= 1, got {args.runs}")

    import onnxruntime as ort
    from rich.console import Console
    from rich.table import Table

    from export.bake import bake
    from export.onnx import export_onnx, quantize_onnx
    from export.verify import astronaut_crops, compare
    from training.style import StyleCode
    from training import Generator, RELEASED

    console = Console(width=max(Console().width, 120))
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    runs = args.runs or (3 if args.quick else 10)
    load_start = os.getloadavg()
    console.print(f"[bold]engines benchmark[/]: released config {RELEASED.size}x{RELEASED.size}, "
                  f"random weights, {threads} threads, {runs} timed runs per variant and batch "
                  f"(batch 4: {max(2, runs // 2)}), CPU {cpu_model()}, load average "
                  f"{load_start[0]:.1f} (other jobs on the machine skew every timing)")

    torch.manual_seed(0)
    G = Generator.from_config(RELEASED).eval().requires_grad_(False)
    style = StyleCode.from_seed(7)
    z = style.tensor()
    faces = astronaut_crops(RELEASED.size, n=4, seed=1)           # evaluation crops
    calib = astronaut_crops(RELEASED.size, n=8, seed=2)           # calibration crops (others)

    tmp = Path(tempfile.mkdtemp(prefix="gnr-bench-"))
    t0 = time.perf_counter()
    paths = {"cpu": tmp / "baked_cpu.onnx", "gpu": tmp / "baked_folded.onnx",
             "dyn": tmp / "dynamic_cpu.onnx", "int8src": tmp / "baked_cpu_int8_layout.onnx",
             "int8": tmp / "baked_int8.onnx"}
    export_onnx(G, paths["cpu"], style=style, target="cpu")
    export_onnx(G, paths["gpu"], style=style, target="gpu")
    export_onnx(G, paths["dyn"], dynamic_style=True, target="cpu")
    export_onnx(G, paths["int8src"], style=style, target="cpu-int8")
    quantize_onnx(paths["int8src"], paths["int8"], calibration=calib.numpy())
    console.print(f"exported 4 fp32 graphs and quantized one in {time.perf_counter() - t0:.0f} s")

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = {k: ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
            for k, p in paths.items() if k != "int8src"}
    baked = bake(G, style, device="cpu")
    zn = z.numpy()

    def ort_fn(key, dynamic=False):
        s = sess[key]

        def f(x):
            feed = {"input": x.numpy()}
            if dynamic:
                feed["style"] = zn
            return torch.from_numpy(s.run(None, feed)[0])
        return f

    def eager(x):
        return G.decode(G.encode(x).content, z.expand(x.shape[0], -1))

    def eager_authors(x):
        with authors_blur():
            return eager(x)

    variants = [("eager (baseline)", eager), ("eager, authors' upfirdn2d", eager_authors),
                ("torch baked", baked), ("ort baked", ort_fn("cpu")),
                ("ort baked, blur folded", ort_fn("gpu")),
                ("ort style-as-input", ort_fn("dyn", dynamic=True)), ("ort int8", ort_fn("int8"))]
    if args.skip_authors:
        variants = [v for v in variants if "authors" not in v[0]]

    rows = []
    with torch.no_grad():
        ref = {b: eager(faces[:b]) for b in BATCHES}
        for b in BATCHES:
            x = faces[:b].contiguous()
            n_runs = runs if b == 1 else max(2, runs // 2)
            times = {name: [] for name, _ in variants}
            quality = {}
            for name, fn in variants:                       # warm-up + parity
                out = fn(x)
                fn(x)
                quality[name] = compare(ref[b], out)
            for _ in range(n_runs):                         # round-robin timing
                for name, fn in variants:
                    t = time.perf_counter()
                    fn(x)
                    times[name].append((time.perf_counter() - t) * 1000 / b)
            base = float(np.median(times[variants[0][0]]))
            authors = float(np.median(times["eager, authors' upfirdn2d"])) \
                if "eager, authors' upfirdn2d" in times else None
            for name, _ in variants:
                p50 = float(np.median(times[name]))
                p95 = float(np.percentile(times[name], 95))
                q = quality[name]
                rows.append({"variant": name, "batch": b, "runs": n_runs,
                             "ms_per_frame_p50": round(p50, 1), "ms_per_frame_p95": round(p95, 1),
                             "speedup_vs_eager": round(base / p50, 2),
                             "speedup_vs_authors_upfirdn2d": round(authors / p50, 2) if authors else None,
                             "psnr_db_vs_fp32": None if not np.isfinite(q.psnr_db) else round(q.psnr_db, 1),
                             "max_abs_vs_fp32": float(f"{q.max_abs:.3g}")})
            console.print(f"batch {b} done")

    table = Table(title=f"CPU ms per frame, released config, {threads} threads (random weights)")
    for col in ("variant", "batch", "p50 ms", "p95 ms", "× vs eager", "× vs authors' blur",
                "PSNR dB", "max abs"):
        table.add_column(col, no_wrap=True, justify="left" if col == "variant" else "right")
    for r in rows:
        table.add_row(r["variant"], str(r["batch"]), f"{r['ms_per_frame_p50']:.1f}",
                      f"{r['ms_per_frame_p95']:.1f}", f"{r['speedup_vs_eager']:.2f}",
                      "" if r["speedup_vs_authors_upfirdn2d"] is None else f"{r['speedup_vs_authors_upfirdn2d']:.2f}",
                      "exact" if r["psnr_db_vs_fp32"] is None else f"{r['psnr_db_vs_fp32']:.1f}",
                      f"{r['max_abs_vs_fp32']:.2g}")
    console.print(table)
    load_end = os.getloadavg()
    console.print("PSNR peak = max(2, range of the fp32 output); random weights overshoot [-1, 1]. "
                  f"Load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end.")
    result = {
        "benchmark": "engines", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "threads": threads, "torch": torch.__version__,
                    "onnxruntime": ort.__version__, "python": platform.python_version(),
                    "loadavg_start": [round(v, 2) for v in load_start],
                    "loadavg_end": [round(v, 2) for v in load_end]},
        "config": RELEASED.to_dict(), "weights": "random (torch.manual_seed(0))",
        "style": style.to_dict(), "faces": "astronaut aligned crops (export.verify.astronaut_crops)",
        "runs": runs, "quick": args.quick, "rows": rows,
    }
    from training.fileio import write_bytes_atomic
    write_bytes_atomic(args.out, json.dumps(result, indent=1).encode())
    console.print(f"wrote {args.out}")
    for p in paths.values():
        p.unlink(missing_ok=True)
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
