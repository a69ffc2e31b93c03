"""Ratios between two latency results (``python -m benchmarks.latency`` JSON) of one machine, so a
regression is visible:

    python -m benchmarks.compare results/before.json results/after.json
    python -m benchmarks.compare A.json B.json --threshold 0.05 --fail-above 1.2   # for CI

Every ratio is B / A of a *time* (ms per frame p50, end-to-end p50/p95, stage p50): above 1 means
B is slower. Rows are matched by (config, backend, batch) for the engines and by (input, faces,
mode) for the pipeline; rows found in only one file are listed. Runs from different machines
(CPU model, GPU, core count) are compared but flagged, since their ratios mean little.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Sequence

from .common import ratio, read_json
from .latency_schema import SCHEMA

MACHINE_KEYS = ("cpu", "cpu_affinity", "gpu", "driver", "torch", "threads")


def _engine_key(r: dict) -> tuple:
    return (r["config"], r["label"], r["batch"])


def _pipe_key(r: dict) -> tuple:
    return (r["resolution"], r["faces"], r["mode"], r.get("parallel", 1))


def machine_differences(a: dict, b: dict) -> list[str]:
    ma, mb = a.get("machine", {}), b.get("machine", {})
    return [f"{k}: {ma.get(k)!r} vs {mb.get(k)!r}" for k in MACHINE_KEYS if ma.get(k) != mb.get(k)]


def compare(a: dict, b: dict) -> dict:
    """The matched rows with their ratios (B / A of times, B / A of frames/s)."""
    out: dict = {"machine_differences": machine_differences(a, b), "engine": [], "pipeline": [],
                 "only_a": [], "only_b": []}
    ea = {_engine_key(r): r for r in (a.get("engine") or {}).get("rows", [])}
    eb = {_engine_key(r): r for r in (b.get("engine") or {}).get("rows", [])}
    for key in sorted(set(ea) | set(eb), key=lambda k: (k[0], k[2], k[1])):
        if key not in eb:
            out["only_a"].append({"section": "engine", "key": list(key)})
            continue
        if key not in ea:
            out["only_b"].append({"section": "engine", "key": list(key)})
            continue
        ra, rb = ea[key], eb[key]
        out["engine"].append({
            "config": key[0], "label": key[1], "batch": key[2],
            "a_ms_per_frame": ra["ms_per_frame"], "b_ms_per_frame": rb["ms_per_frame"],
            "time_ratio": ratio(rb["ms_per_frame"], ra["ms_per_frame"]),
            "p95_ratio": ratio(rb["ms_per_batch"]["p95"], ra["ms_per_batch"]["p95"]),
            "fps_ratio": ratio(rb["frames_per_s"], ra["frames_per_s"]),
            "a_speedup": ra.get("speedup_vs_baseline"), "b_speedup": rb.get("speedup_vs_baseline"),
        })
    pa = {_pipe_key(r): r for r in (a.get("pipeline") or {}).get("rows", [])}
    pb = {_pipe_key(r): r for r in (b.get("pipeline") or {}).get("rows", [])}
    for key in sorted(set(pa) | set(pb), key=str):
        if key not in pb:
            out["only_a"].append({"section": "pipeline", "key": list(key)})
            continue
        if key not in pa:
            out["only_b"].append({"section": "pipeline", "key": list(key)})
            continue
        ra, rb = pa[key], pb[key]
        stages = {s: ratio(rb["stages"][s]["p50"], ra["stages"][s]["p50"])
                  for s in ra.get("stages", {}) if s in rb.get("stages", {})}
        out["pipeline"].append({
            "resolution": key[0], "faces": key[1], "mode": key[2], "parallel": key[3],
            "a_e2e_p50": ra["end_to_end"]["p50"], "b_e2e_p50": rb["end_to_end"]["p50"],
            "e2e_p50_ratio": ratio(rb["end_to_end"]["p50"], ra["end_to_end"]["p50"]),
            "e2e_p95_ratio": ratio(rb["end_to_end"]["p95"], ra["end_to_end"]["p95"]),
            "fps_ratio": ratio(rb["fps"], ra["fps"]),
            "stage_p50_ratios": stages,
        })
    return out


def worst_time_ratio(cmp: dict) -> float | None:
    vals = [r["time_ratio"] for r in cmp["engine"]] + \
        [r["e2e_p50_ratio"] for r in cmp["pipeline"]]
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return max(vals) if vals else None


def _fmt_ratio(v, threshold: float) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    text = f"{v:.2f}"
    if v > 1 + threshold:
        return f"[red]{text}[/]"
    if v < 1 - threshold:
        return f"[green]{text}[/]"
    return text


def _fmt(v, fmt="{:.2f}") -> str:
    return "—" if v is None or not math.isfinite(v) else fmt.format(v)


def print_comparison(cmp: dict, a_name: str, b_name: str, console, threshold: float = 0.1) -> None:
    from rich.table import Table
    if cmp["machine_differences"]:
        console.print("[yellow]warning:[/] the two runs come from different machines or setups "
                      "(" + "; ".join(cmp["machine_differences"]) + "): ratios compare machines, "
                      "not code", highlight=False)
    if cmp["engine"]:
        t = Table(title=f"Engines: B / A of ms per frame (p50) · A = {a_name}, B = {b_name} · "
                        ">1 = B slower")
        for col in ("config", "backend", "batch", "A ms/frame", "B ms/frame", "time ×", "p95 ×",
                    "A × baseline", "B × baseline"):
            t.add_column(col, justify="left" if col in ("config", "backend") else "right",
                         no_wrap=True)
        for r in cmp["engine"]:
            t.add_row(r["config"], r["label"], str(r["batch"]), _fmt(r["a_ms_per_frame"]),
                      _fmt(r["b_ms_per_frame"]), _fmt_ratio(r["time_ratio"], threshold),
                      _fmt_ratio(r["p95_ratio"], threshold), _fmt(r["a_speedup"]),
                      _fmt(r["b_speedup"]))
        console.print(t)
    if cmp["pipeline"]:
        stages = sorted({s for r in cmp["pipeline"] for s in r["stage_p50_ratios"]},
                        key=("decode", "track", "align", "engine", "paste", "encode").index)
        t = Table(title="Pipeline: B / A of end-to-end and per-stage p50 · >1 = B slower")
        for col in ("input", "faces", "mode", "A e2e p50", "B e2e p50", "e2e p50 ×", "e2e p95 ×",
                    "fps B/A", *stages):
            t.add_column(col, justify="left" if col in ("input", "mode") else "right", no_wrap=True)
        for r in cmp["pipeline"]:
            mode = r["mode"] if r["parallel"] == 1 else f"file ×{r['parallel']}"
            t.add_row(r["resolution"], str(r["faces"]), mode, _fmt(r["a_e2e_p50"], "{:.1f}"),
                      _fmt(r["b_e2e_p50"], "{:.1f}"), _fmt_ratio(r["e2e_p50_ratio"], threshold),
                      _fmt_ratio(r["e2e_p95_ratio"], threshold), _fmt(r["fps_ratio"]),
                      *[_fmt_ratio(r["stage_p50_ratios"].get(s), threshold) for s in stages])
        console.print(t)
    for side, name in (("only_a", a_name), ("only_b", b_name)):
        items = cmp[side]
        for item in items[:8]:
            console.print(f"only in {name}: {item['section']} {tuple(item['key'])}", highlight=False)
        if len(items) > 8:
            console.print(f"only in {name}: … and {len(items) - 8} more rows", highlight=False)
    if not cmp["engine"] and not cmp["pipeline"]:
        console.print("[yellow]no rows in common[/]")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("a", type=Path, help="the reference run (latency.json)")
    ap.add_argument("b", type=Path, help="the run compared with it")
    ap.add_argument("--threshold", type=float, default=0.10,
                    help="colour ratios beyond 1 ± this (default 0.10)")
    ap.add_argument("--fail-above", type=float, default=None,
                    help="exit 1 when any time ratio (engine ms/frame or end-to-end p50) "
                         "exceeds this")
    ap.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = ap.parse_args(argv)
    for flag, p in (("a", args.a), ("b", args.b)):
        if not p.is_file():
            ap.error(f"argument {flag}: {p} is not a file")
    if args.threshold < 0:
        ap.error(f"argument --threshold: must be >= 0, got {args.threshold}")
    if args.fail_above is not None and args.fail_above <= 0:
        ap.error(f"argument --fail-above: must be > 0, got {args.fail_above}")
    try:
        a, b = read_json(args.a), read_json(args.b)
    except ValueError as e:
        ap.error(f"not a JSON file: {e}")
    for flag, d, p in (("a", a, args.a), ("b", b, args.b)):
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            ap.error(f"argument {flag}: {p} is not a result of python -m benchmarks.latency")
    cmp = compare(a, b)
    if args.json:
        import json
        print(json.dumps(cmp, indent=1))
    else:
        from rich.console import Console
        print_comparison(cmp, str(args.a), str(args.b), Console(width=160), args.threshold)
    worst = worst_time_ratio(cmp)
    if args.fail_above is not None and worst is not None and worst > args.fail_above:
        print(f"regression: the worst time ratio is {worst:.2f} (> {args.fail_above:g})")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
