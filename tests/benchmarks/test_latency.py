"""benchmarks/: percentiles, round-robin timing, the JSON schema, speed-ups, comparisons, plots,
and the `--quick` run end to end. Nothing here asserts on a time."""
from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import compare as cmp_mod
from benchmarks.common import json_safe, percentiles, ratio, read_json, round_robin, write_json
from benchmarks.latency import parse_settings
from benchmarks.latency_engines import _fill_speedups, peaks
from benchmarks.latency_report import evaluate_targets
from benchmarks.latency_schema import SCHEMA, SCHEMA_VERSION, STAGES, validate, write_roundtrip
from benchmarks.plots import write_plots

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# A small, well-formed result made by hand
# ---------------------------------------------------------------------------------------------
def _stats(ms: float) -> dict:
    return percentiles([ms * 0.98, ms, ms * 1.05])


def _engine_row(label, role, batch, ms_batch, cfg="demo", device="cpu"):
    st = _stats(ms_batch)
    return {"config": cfg, "label": label, "backend": "x", "device": device, "precision": "fp32",
            "role": role, "exact": True, "batch": batch, "reps": st["n"], "ms_per_batch": st,
            "gpu_ms_per_batch": None, "ms_per_frame": st["p50"] / batch,
            "frames_per_s": batch * 1000 / st["p50"], "tflops": 1e9 * batch / st["p50"] / 1e9,
            "speedup_vs_baseline": None, "speedup_vs_authors_cpu": None,
            "max_abs_vs_baseline": None, "error": None, "note": ""}


def _pipe_row(res, faces, mode, e2e, engine_ms=3.0):
    stages = {s: _stats(1.0) for s in STAGES}
    stages["engine"] = _stats(engine_ms)
    return {"resolution": res, "width": 640, "height": 480, "faces": faces, "mode": mode,
            "parallel": 1, "frames_in": 20, "frames_out": 20, "measured_frames": 16,
            "warmup_frames": 4, "dropped": 0, "faces_found_mean": 1.0, "fps": 30.0, "wall_s": 1.0,
            "stages": stages, "end_to_end": _stats(e2e), "stage_sum_mean_ms": 8.0,
            "wait_mean_ms": 2.0, "engine_busy_fraction": 0.1, "engine_share_of_stage_time": 0.4}


def make_result(scale: float = 1.0) -> dict:
    rows = []
    for b in (1, 2):
        rows.append(_engine_row("torch eager fp32 (baseline)", "baseline", b, 100.0 * b))
        rows.append(_engine_row("onnxruntime-cpu fp32", "engine", b, 25.0 * b * scale))
    _fill_speedups(rows, "demo")
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "date": "2026-11-25T00:00:00+00:00",
        "command": "python -m benchmarks.latency --quick", "quick": True, "device": "cpu",
        "machine": {"cpu": "Test CPU", "cpu_count": 2, "cpu_affinity": 2, "threads": 2,
                    "torch": "2.13", "gpu": None, "driver": None, "libraries": {},
                    "loadavg": [0.0, 0.0, 0.0]},
        "settings": {},
        "engine": {"configs": {"demo": {"config": {"size": 64}, "description": "size=64",
                                        "flops_per_frame": {"encode": 3e8, "decode": 2.5e8,
                                                            "total": 5.5e8},
                                        "parameters": {"total": 1}}},
                   "rows": rows, "skipped": [], "peaks": {"demo": peaks(rows, "demo")}},
        "pipeline": {"model": "demo", "engine": "onnxruntime-cpu fp32", "device": "cpu",
                     "rows": [_pipe_row("640x480", 1, "live", 20.0 * scale),
                              _pipe_row("640x480", 1, "file", 200.0 * scale)],
                     "skipped": []},
        "targets": [], "plots": [],
    }


# ---------------------------------------------------------------------------------------------
# Statistics and timing helpers
# ---------------------------------------------------------------------------------------------
def test_percentiles_match_numpy_and_handle_empty_input():
    v = list(range(1, 101))
    st = percentiles(v)
    assert st["p50"] == pytest.approx(50.5) and st["p95"] == pytest.approx(95.05)
    assert st["p99"] == pytest.approx(99.01) and st["mean"] == pytest.approx(50.5)
    assert (st["min"], st["max"], st["n"]) == (1, 100, 100)
    one = percentiles([7.0])
    assert one["p50"] == one["p99"] == 7.0 and one["n"] == 1
    empty = percentiles([])
    assert empty["n"] == 0 and math.isnan(empty["p50"])


def test_ratio_refuses_missing_and_non_positive_denominators():
    assert ratio(10, 4) == 2.5
    assert ratio(None, 1) is None and ratio(1, None) is None
    assert ratio(1, 0) is None and ratio(1, float("nan")) is None and ratio(float("inf"), 1) is None


def test_round_robin_warms_up_interleaves_and_drops_a_failing_variant():
    calls = []

    def make(name, fail_at=None):
        def f():
            calls.append(name)
            if fail_at is not None and calls.count(name) == fail_at:
                raise RuntimeError(f"{name} broke\nsecond line")
        return f

    out = round_robin([("a", make("a")), ("b", make("b")), ("c", make("c", fail_at=3))],
                      warmup=1, reps=4, on_error=lambda name, e: True)
    assert calls[:6] == ["a", "b", "c", "a", "b", "c"]       # warm-up, then turns
    assert len(out["a"].wall_ms) == len(out["b"].wall_ms) == 4
    assert len(out["c"].wall_ms) == 1 and out["c"].error == "RuntimeError: c broke"
    assert calls.count("c") == 3                               # not called after it failed
    with pytest.raises(RuntimeError):
        round_robin([("x", make("x", fail_at=1))], warmup=0, reps=2)


def test_round_robin_stops_at_the_time_budget_after_the_minimum_reps():
    out = round_robin([("a", lambda: None)], warmup=0, reps=1000, min_reps=3, max_seconds=0.0)
    assert len(out["a"].wall_ms) == 3


def test_json_is_written_atomically_with_nan_as_null(tmp_path):
    p = write_json(tmp_path / "sub" / "r.json", {"a": float("nan"), "b": (1, 2),
                                                  "c": np.float32(1.5), "d": np.int64(3),
                                                  "e": tmp_path})
    assert read_json(p) == {"a": None, "b": [1, 2], "c": 1.5, "d": 3, "e": str(tmp_path)}
    assert [f.name for f in p.parent.iterdir()] == ["r.json"]
    assert json_safe({"x": [float("inf")]}) == {"x": [None]}


# ---------------------------------------------------------------------------------------------
# Speed-ups, targets, schema
# ---------------------------------------------------------------------------------------------
def test_speedups_are_per_batch_against_the_baseline_of_the_same_run():
    r = make_result()
    rows = {(x["label"], x["batch"]): x for x in r["engine"]["rows"]}
    assert rows[("torch eager fp32 (baseline)", 1)]["speedup_vs_baseline"] == pytest.approx(1.0)
    assert rows[("onnxruntime-cpu fp32", 1)]["speedup_vs_baseline"] == pytest.approx(4.0)
    assert rows[("onnxruntime-cpu fp32", 2)]["speedup_vs_baseline"] == pytest.approx(4.0)
    assert rows[("onnxruntime-cpu fp32", 2)]["speedup_vs_authors_cpu"] is None   # no reference row
    pk = r["engine"]["peaks"]["demo"]
    assert pk["onnxruntime-cpu fp32"]["batch"] in (1, 2)


def test_targets_only_for_what_was_measured():
    r = make_result()
    assert evaluate_targets(r) == []            # demo config only: no released-config target
    for row in r["engine"]["rows"]:
        row["config"] = "released"
    _fill_speedups(r["engine"]["rows"], "released")
    tg = evaluate_targets(r)
    assert [t["met"] for t in tg] == [True]     # batch 1: 4x >= 2.5x
    assert tg[0]["value"] == pytest.approx(4.0) and tg[0]["goal"] == 2.5


def test_validate_accepts_a_good_result_and_names_what_is_wrong():
    good = write_roundtrip(make_result())
    assert validate(good) == []
    bad = copy.deepcopy(good)
    bad["schema_version"] = 99
    del bad["engine"]["rows"][0]["ms_per_batch"]["p95"]
    bad["pipeline"]["rows"][0]["stages"].pop("encode")
    bad["engine"]["rows"] = [r for r in bad["engine"]["rows"]
                             if not (r["role"] == "baseline" and r["batch"] == 2)]
    problems = "\n".join(validate(bad))
    assert "schema_version" in problems
    assert "ms_per_batch: missing 'p95'" in problems
    assert "stages must be" in problems
    assert "no baseline row for config 'demo' at batch 2" in problems


def test_schema_stages_are_stages_the_pipeline_times():
    """Every stage column of a pipeline row is one realtime.pipeline records (a renamed stage
    would otherwise be measured as zeros)."""
    from realtime.pipeline import STAGES as PIPELINE_STAGES
    assert set(STAGES) <= set(PIPELINE_STAGES)


def test_cli_errors_name_the_flag(capsys):
    for argv, flag in ((["--batches", "0"], "--batches"), (["--sections", "engines"], "--sections"),
                       (["--resolutions", "800x600"], "--resolutions"), (["--reps", "0"], "--reps"),
                       (["--device", "tpu"], "--device"), (["--threads", "0"], "--threads")):
        with pytest.raises(SystemExit) as e:
            parse_settings(argv)
        assert e.value.code == 2
        assert f"argument {flag}" in capsys.readouterr().err


def test_quick_defaults_are_a_small_subset():
    s = parse_settings(["--quick", "--device", "cpu"])
    assert s.configs == ("demo",) and s.batches == (1, 2) and s.resolutions == ("640x480",)
    assert s.faces == (1,) and not s.int8 and s.parallel_files == 0
    full = parse_settings(["--device", "cpu"])
    assert full.configs == ("released", "demo") and full.batches == (1, 2, 4, 8)
    assert full.resolutions == ("640x480", "1280x720", "1920x1080") and full.faces == (1, 4)


# ---------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------
def test_compare_gives_time_ratios_and_unmatched_rows():
    a, b = make_result(), make_result(scale=1.5)
    b["engine"]["rows"] = [r for r in b["engine"]["rows"] if r["batch"] == 1]
    b["machine"]["cpu"] = "Other CPU"
    c = cmp_mod.compare(a, b)
    eng = {(r["label"], r["batch"]): r for r in c["engine"]}
    assert eng[("onnxruntime-cpu fp32", 1)]["time_ratio"] == pytest.approx(1.5)
    assert eng[("torch eager fp32 (baseline)", 1)]["time_ratio"] == pytest.approx(1.0)
    assert {tuple(x["key"]) for x in c["only_a"]} == {("demo", "torch eager fp32 (baseline)", 2),
                                                       ("demo", "onnxruntime-cpu fp32", 2)}
    pipe = {r["mode"]: r for r in c["pipeline"]}
    assert pipe["live"]["e2e_p50_ratio"] == pytest.approx(1.5)
    assert pipe["file"]["stage_p50_ratios"]["engine"] == pytest.approx(1.0)
    assert any("cpu" in d for d in c["machine_differences"])
    assert cmp_mod.worst_time_ratio(c) == pytest.approx(1.5)


def test_compare_cli_prints_ratios_and_fails_above_a_limit(tmp_path, capsys):
    pa, pb = write_json(tmp_path / "a.json", make_result()), write_json(tmp_path / "b.json",
                                                                          make_result(1.3))
    assert cmp_mod.main([str(pa), str(pb)]) == 0
    text = capsys.readouterr().out
    assert "1.30" in text and "onnxruntime-cpu fp32" in text
    assert cmp_mod.main([str(pa), str(pb), "--fail-above", "1.2"]) == 1
    assert cmp_mod.main([str(pa), str(pb), "--fail-above", "1.5"]) == 0
    capsys.readouterr()
    assert cmp_mod.main([str(pa), str(pa), "--json"]) == 0
    assert all(r["time_ratio"] == pytest.approx(1.0)
               for r in json.loads(capsys.readouterr().out)["engine"])
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(SystemExit):
        cmp_mod.main([str(pa), str(tmp_path / "x.json")])
    assert "not a result of python -m benchmarks.latency" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------
def test_plots_are_written_as_png(tmp_path):
    written, notes = write_plots(make_result(), tmp_path)
    assert sorted(Path(p).name for p in written) == ["stages.png", "throughput.png"] and not notes
    for p in written:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = make_result()
    r["pipeline"] = None
    written, notes = write_plots(r, tmp_path / "only-engine")
    assert [Path(p).name for p in written] == ["throughput.png"]
    assert notes and "stages.png" in notes[0]


# ---------------------------------------------------------------------------------------------
# The --quick run, end to end (the CI smoke test)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.latency", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    return proc, out


def test_quick_run_writes_a_valid_json_table_and_plots(quick_run):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = read_json(out / "latency.json")
    assert validate(result) == []
    assert result["quick"] is True and result["machine"]["cpu"]
    eng = result["engine"]
    labels = {r["label"] for r in eng["rows"]}
    assert "torch eager fp32 (baseline)" in labels and "onnxruntime-cpu fp32" in labels
    assert {r["batch"] for r in eng["rows"]} == {1, 2}
    assert eng["configs"]["demo"]["flops_per_frame"]["total"] > 0
    assert any(s["backend"].startswith("tensorrt") for s in eng["skipped"]) or \
        result["machine"]["gpu"]
    pipe = result["pipeline"]
    assert {(r["resolution"], r["faces"], r["mode"]) for r in pipe["rows"]} == \
        {("640x480", 1, "live"), ("640x480", 1, "file")}
    for r in pipe["rows"]:
        assert r["measured_frames"] > 0 and r["faces_found_mean"] > 0.5
        assert r["stages"]["engine"]["n"] > 0           # faces really went through the engine
    assert sorted(Path(p).name for p in result["plots"]) == ["stages.png", "throughput.png"]
    for p in result["plots"]:
        assert Path(p).is_file()
    assert "Engines" in proc.stdout and "Pipeline" in proc.stdout


def test_quick_run_compares_with_itself(quick_run, capsys):
    proc, out = quick_run
    assert proc.returncode == 0
    j = out / "latency.json"
    assert cmp_mod.main([str(j), str(j), "--fail-above", "1.0001"]) == 0
    assert "Engines" in capsys.readouterr().out
