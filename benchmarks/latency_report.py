"""What a latency result says to a reader: the tables printed at the end of a run
(:func:`print_report`) and the targets of FACTS.md and the issues, for what the run measured
(:func:`evaluate_targets`)."""
from __future__ import annotations

import numpy as np

from .common import describe_machine, ratio
from .latency_schema import STAGES


# =============================================================================================
# Targets — only those the run measured
# =============================================================================================
def _cpu_targets(rows: list[dict]) -> list[dict]:
    out = []
    for batch in (1, 4):
        for label, goal in (("onnxruntime-cpu fp32", 2.5), ("onnxruntime-cpu int8", 4.0)):
            r = next((r for r in rows if r["config"] == "released" and r["label"] == label
                      and r["batch"] == batch), None)
            if r and r.get("speedup_vs_baseline") is not None:
                precision = label.split()[-1]
                out.append({"target": f"CPU: onnxruntime {precision} >= {goal:g}x the baseline per "
                                      f"frame, released, batch {batch}",
                            "value": r["speedup_vs_baseline"], "goal": goal,
                            "met": r["speedup_vs_baseline"] >= goal,
                            "note": (f"vs the authors' CPU blur: {r['speedup_vs_authors_cpu']:.2f}x"
                                     if r.get("speedup_vs_authors_cpu") else "")})
    return out


# The CPU student's targets (issue 18): at 256x256, batch 1, its int8 graph against the
# teacher's int8 graph measured in the same run.
STUDENT_MS_GOAL = 33.0
STUDENT_SPEEDUP_GOAL = 3.5
STUDENT_INT8 = "student locked · onnxruntime-cpu int8"
TEACHER_INT8 = "onnxruntime-cpu int8"


def student_comparison(rows: list[dict], cfg_name: str, batch: int) -> list[dict]:
    """Each student row of ``cfg_name`` at ``batch`` beside the teacher row of the same backend
    (the label after ``student KIND · ``): ms a frame of both and the speed-up."""
    teacher = {r["label"]: r for r in rows if r["config"] == cfg_name and r["batch"] == batch
               and not r["label"].startswith("student ")}
    out = []
    for r in rows:
        if r["config"] != cfg_name or r["batch"] != batch or not r["label"].startswith("student "):
            continue
        t = teacher.get(r["label"].split(" · ", 1)[-1])
        out.append({"student": r["label"], "ms_per_frame": r["ms_per_frame"],
                    "teacher": t["label"] if t else None,
                    "teacher_ms_per_frame": t["ms_per_frame"] if t else None,
                    "speedup": ratio(t["ms_per_frame"], r["ms_per_frame"]) if t else None})
    return out


def _student_targets(rows: list[dict]) -> list[dict]:
    cmp = {c["student"]: c for c in student_comparison(rows, "released", 1)}
    c = cmp.get(STUDENT_INT8)
    if c is None or c["ms_per_frame"] is None or not np.isfinite(c["ms_per_frame"]):
        return []
    out = [{"target": f"CPU student: locked int8 <= {STUDENT_MS_GOAL:g} ms a frame, 256x256, "
                      "batch 1", "value": c["ms_per_frame"], "goal": STUDENT_MS_GOAL,
            "met": c["ms_per_frame"] <= STUDENT_MS_GOAL,
            "note": f"{1000 / c['ms_per_frame']:.1f} frames/s"}]
    if c["speedup"] is not None:
        out.append({"target": f"CPU student: locked int8 >= {STUDENT_SPEEDUP_GOAL:g}x the "
                              "teacher's int8, 256x256, batch 1, same run",
                    "value": c["speedup"], "goal": STUDENT_SPEEDUP_GOAL,
                    "met": c["speedup"] >= STUDENT_SPEEDUP_GOAL,
                    "note": f"teacher int8 {c['teacher_ms_per_frame']:.1f} ms a frame"})
    return out


def _gpu_targets(rows: list[dict], pipe: dict) -> list[dict]:
    out = []
    for batch in (1, 8):
        cands = [r for r in rows if r["config"] == "released" and r["batch"] == batch
                 and r["device"] == "cuda" and r["role"] == "engine" and r.get("speedup_vs_baseline")]
        if cands:
            best = max(cands, key=lambda r: r["speedup_vs_baseline"])
            out.append({"target": f"GPU: best backend >= 10x the baseline, released, batch {batch}",
                        "value": best["speedup_vs_baseline"], "goal": 10.0,
                        "met": best["speedup_vs_baseline"] >= 10.0, "note": best["label"]})
    if pipe.get("device") != "cuda" or pipe.get("model") != "released":
        return out
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


def evaluate_targets(result: dict) -> list[dict]:
    """Each target the run has the rows for: what it asks, the value, the goal, met or not."""
    rows = (result.get("engine") or {}).get("rows", [])
    return _cpu_targets(rows) + _student_targets(rows) + \
        _gpu_targets(rows, result.get("pipeline") or {})


# =============================================================================================
# Tables
# =============================================================================================
def _f(v, fmt="{:.1f}", none="—"):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return none
    return fmt.format(v)


def _engine_tables(eng: dict, console) -> None:
    from rich.table import Table
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
    for cfg_name, st in (eng.get("students") or {}).items():
        _student_table(eng, cfg_name, st, console)
    for sk in eng.get("skipped", []):
        console.print(f"  not measured: {sk['backend']} ({sk['config']}): {sk['reason']}",
                      highlight=False)


def _student_table(eng: dict, cfg_name: str, st: dict, console) -> None:
    """The student beside its teacher, backend by backend, at every batch measured."""
    from rich.table import Table
    cfg = eng["configs"].get(cfg_name) or {}
    fl = st["flops_per_frame"]
    teacher_gf = (cfg.get("flops_per_frame") or {}).get("total", float("nan")) / 1e9
    t = Table(title=f"Student vs teacher · {cfg_name} · student {st['description']} "
                    f"({st['source']}), {fl['locked'] / 1e9:.2f} GFLOP locked / "
                    f"{fl['styled'] / 1e9:.2f} styled, teacher {teacher_gf:.2f} GFLOP · "
                    "ms a frame (p50), same run")
    for col in ("student", "batch", "ms/frame", "frames/s", "teacher", "ms/frame ", "× teacher"):
        t.add_column(col, justify="left" if col in ("student", "teacher") else "right",
                     no_wrap=True)
    for batch in sorted({r["batch"] for r in eng["rows"] if r["config"] == cfg_name}):
        for c in student_comparison(eng["rows"], cfg_name, batch):
            ms = c["ms_per_frame"]
            t.add_row(c["student"], str(batch), _f(ms, "{:.2f}"),
                      _f(1000 / ms if ms else None, "{:.1f}"), c["teacher"] or "—",
                      _f(c["teacher_ms_per_frame"], "{:.2f}"), _f(c["speedup"], "{:.2f}"))
    if t.row_count:
        console.print(t)


def _pipeline_table(pipe: dict, console) -> None:
    from rich.table import Table
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


def print_report(result: dict, console) -> None:
    """The machine line, the engine tables (one per config), the pipeline table, the targets."""
    m = result["machine"]
    console.print(f"[bold]machine[/]: {describe_machine(m)}; torch {m['torch']}, onnxruntime "
                  f"{m['libraries'].get('onnxruntime')}, load average at start "
                  f"{m['loadavg'][0] if m.get('loadavg') else '?'}", highlight=False)
    if result.get("engine"):
        _engine_tables(result["engine"], console)
    pipe = result.get("pipeline")
    if pipe and pipe.get("rows"):
        _pipeline_table(pipe, console)
    for tg in result.get("targets", []):
        mark = "[green]met[/]" if tg["met"] else "[red]missed[/]"
        console.print(f"target: {tg['target']}: {tg['value']:.2f} (goal {tg['goal']:g}) {mark}"
                      + (f" — {tg['note']}" if tg.get("note") else ""), highlight=False)
