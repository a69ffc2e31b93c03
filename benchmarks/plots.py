"""PNG plots of a latency result (the JSON of ``python -m benchmarks.latency``), drawn with
matplotlib's Agg backend (no display needed):

* ``stages.png``: per pipeline run, the mean time of each stage per frame as stacked bars, plus
  the time a frame spent waiting between stages (end-to-end mean minus the sum of the stage
  means); the end-to-end p95 is marked;
* ``throughput.png``: frames/s against batch size, one line per backend, one panel per model
  config (log-log axes; the baseline dashed).

    python -m benchmarks.plots results/latency.json [--out DIR]
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Sequence

from .latency_schema import STAGES

STAGE_COLORS = {"decode": "#8c8c8c", "track": "#4c72b0", "align": "#55a868", "engine": "#c44e52",
                "paste": "#dd8452", "encode": "#8172b3", "wait": "#e5e5e5"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _machine(m: dict) -> str:
    cores = m.get("cpu_affinity") or m.get("cpu_count")
    cpu = f"{m.get('cpu')}, {cores} cores" if m.get("cpu") else "unknown machine"
    return f"{m['gpu']} · {cpu}" if m.get("gpu") else cpu


def _stage_panel(ax, rows: list[dict], stages: Sequence[str], legend: bool) -> None:
    labels = [f"{r['resolution']} · {r['faces']} face{'s' if r['faces'] > 1 else ''}"
              + ("" if r.get("parallel", 1) == 1 else f" · {r['parallel']} files at once")
              for r in rows]
    y = list(range(len(rows)))[::-1]
    left = [0.0] * len(rows)
    for stage in (*stages, "wait"):
        if stage == "wait":
            vals = [r.get("wait_mean_ms") if _finite(r.get("wait_mean_ms")) else 0.0 for r in rows]
            name = "waiting between stages"
        else:
            vals = [r["stages"][stage]["mean"] if _finite(r["stages"][stage]["mean"]) else 0.0
                    for r in rows]
            name = stage
        ax.barh(y, vals, left=left, color=STAGE_COLORS[stage], label=name, height=0.7,
                edgecolor="white", linewidth=0.5)
        left = [a + b for a, b in zip(left, vals)]
    p95 = [r["end_to_end"]["p95"] for r in rows]
    ax.scatter([v for v in p95 if _finite(v)], [yy for yy, v in zip(y, p95) if _finite(v)],
               marker="|", s=250, color="black", label="end to end p95", zorder=3)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)


def plot_stages(result: dict, path: str | os.PathLike) -> Path | None:
    """Stacked bars of per-stage mean ms per frame for every pipeline row, one panel per mode
    (live, file: their scales differ, file mode's frames wait in full queues); None if no rows."""
    pipe = result.get("pipeline") or {}
    rows = pipe.get("rows") or []
    if not rows:
        return None
    plt = _pyplot()
    panels = [(mode, [r for r in rows if r["mode"] == mode]) for mode in ("live", "file")]
    panels = [(m, rs) for m, rs in panels if rs]
    heights = [len(rs) + 1.5 for _, rs in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 0.4 * sum(heights) + 1.2),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    what = {"live": "live: camera capture → frame ready; stale frames dropped",
            "file": "file: start of decode → frame encoded; decode runs ahead into bounded queues"}
    for i, (ax, (mode, rs)) in enumerate(zip(axes[:, 0], panels)):
        _stage_panel(ax, rs, STAGES, legend=i == 0)
        ax.set_title(what[mode], fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("ms per frame (stage means, stacked)")
    m = result.get("machine", {})
    fig.suptitle(f"Pipeline latency per stage · {pipe.get('model')} model, {pipe.get('engine')} "
                 f"on {pipe.get('device')} · {_machine(m)}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_throughput(result: dict, path: str | os.PathLike) -> Path | None:
    """Frames/s vs batch per backend, a panel per config; None if there are no engine rows."""
    eng = result.get("engine") or {}
    rows = [r for r in eng.get("rows") or [] if _finite(r.get("frames_per_s"))]
    if not rows:
        return None
    plt = _pyplot()
    from matplotlib.ticker import NullLocator
    configs = [c for c in (eng.get("configs") or {}) if any(r["config"] == c for r in rows)]
    fig, axes = plt.subplots(1, len(configs), figsize=(6.2 * len(configs), 4.4), squeeze=False)
    for ax, cfg in zip(axes[0], configs):
        labels = sorted({r["label"] for r in rows if r["config"] == cfg},
                        key=lambda lb: (not lb.endswith("(baseline)"), lb))
        for label in labels:
            pts = sorted((r["batch"], r["frames_per_s"], r["role"]) for r in rows
                         if r["config"] == cfg and r["label"] == label)
            role = pts[0][2]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=4,
                    linestyle="--" if role != "engine" else "-",
                    linewidth=2.2 if role == "baseline" else 1.4, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        batches = sorted({r["batch"] for r in rows if r["config"] == cfg})
        ax.set_xticks(batches)
        ax.set_xticklabels([str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("batch size")
        ax.set_ylabel("frames / s")
        info = (eng.get("configs") or {}).get(cfg, {})
        gf = (info.get("flops_per_frame") or {}).get("total")
        ax.set_title(f"{cfg} config" + (f" ({gf / 1e9:.2f} GFLOP a frame)" if _finite(gf) else ""),
                     fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    m = result.get("machine", {})
    fig.suptitle(f"Engine throughput vs batch · {_machine(m)}", fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_plots(result: dict, out_dir: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Write every plot the result has data for into ``out_dir``. Returns (paths written,
    notes on plots not written)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, notes = [], []
    try:
        _pyplot()
    except ImportError as e:
        return [], [f"matplotlib is not importable ({e}); no plots written"]
    for name, fn, what in (("throughput.png", plot_throughput, "engine"),
                           ("stages.png", plot_stages, "pipeline")):
        p = fn(result, out_dir / name)
        if p is None:
            notes.append(f"{name}: no {what} rows in this result")
        else:
            written.append(str(p))
    return written, notes


def main(argv: Sequence[str] | None = None) -> int:
    from .common import read_json
    ap = argparse.ArgumentParser(prog="python -m benchmarks.plots",
                                 description="Redraw the plots of a latency result.")
    ap.add_argument("result", type=Path, help="latency.json written by python -m benchmarks.latency")
    ap.add_argument("--out", type=Path, default=None, help="folder (default: the JSON's folder)")
    a = ap.parse_args(argv)
    if not a.result.is_file():
        ap.error(f"argument result: {a.result} is not a file")
    written, notes = write_plots(read_json(a.result), a.out or a.result.parent)
    for n in notes:
        print(f"note: {n}")
    for p in written:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
