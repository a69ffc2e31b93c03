"""The JSON a latency run writes (``latency.json``): its name and version, the keys of its rows,
and :func:`validate`, which checks a result read back from the file.

Top level: ``schema``, ``schema_version``, ``date``, ``command``, ``quick``, ``device``,
``machine`` (:data:`MACHINE_KEYS` at least), ``settings``, ``engine`` (``configs``, ``rows`` of
:data:`ENGINE_ROW_KEYS`, ``skipped``, ``peaks``), ``pipeline`` (``model``, ``engine``,
``device``, ``rows`` of :data:`PIPELINE_ROW_KEYS`, ``skipped``), ``targets`` and ``plots``.
Times are ms; every statistic is an object of :data:`STAT_KEYS` (null where nothing was
measured). A change to any of this is a new :data:`SCHEMA_VERSION`.
"""
from __future__ import annotations

import json

from .common import json_safe

SCHEMA = "gnr-anime/benchmarks.latency"
SCHEMA_VERSION = 1
# The stage columns of a pipeline row: stages :class:`realtime.pipeline.Pipeline` times (its
# ``STAGES``, which may name more: ``segment`` is the head paste's mask, which the benchmark's
# pipelines do not use). A stage added here is a new schema version.
STAGES = ("decode", "track", "align", "engine", "paste", "encode")
MODES = ("live", "file")
ROLES = ("baseline", "reference", "engine")
STAT_KEYS = ("p50", "p95", "p99", "mean", "min", "max", "n")
ENGINE_ROW_KEYS = ("config", "label", "backend", "device", "precision", "role", "exact", "batch",
                   "reps", "ms_per_batch", "ms_per_frame", "frames_per_s", "tflops",
                   "speedup_vs_baseline", "speedup_vs_authors_cpu", "max_abs_vs_baseline")
PIPELINE_ROW_KEYS = ("resolution", "width", "height", "faces", "mode", "parallel", "frames_in",
                     "frames_out", "measured_frames", "dropped", "faces_found_mean", "fps",
                     "stages", "end_to_end", "engine_busy_fraction")
MACHINE_KEYS = ("cpu", "cpu_count", "threads", "torch", "gpu", "driver", "libraries", "loadavg")
TOP_KEYS = ("date", "command", "quick", "device", "machine", "settings", "engine", "pipeline",
            "targets", "plots")

__all__ = ["SCHEMA", "SCHEMA_VERSION", "STAGES", "MODES", "ROLES", "STAT_KEYS", "ENGINE_ROW_KEYS",
           "PIPELINE_ROW_KEYS", "MACHINE_KEYS", "validate", "write_roundtrip"]


def write_roundtrip(result: dict) -> dict:
    """The result as its JSON will read back (NaN -> null, tuples -> lists)."""
    return json.loads(json.dumps(json_safe(result), allow_nan=False))


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


def _complete_rows(rows, keys: tuple[str, ...], section: str, problems: list[str]):
    """(where, row) for each row of ``section`` that holds every key; the others are reported."""
    for i, r in enumerate(rows or []):
        where = f"{section}.rows[{i}]"
        missing = [k for k in keys if k not in r]
        if missing:
            problems.append(f"{where}: missing {missing}")
        else:
            yield where, r


def _check_engine(eng: dict, problems: list[str]) -> None:
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
    for where, r in _complete_rows(eng.get("rows"), ENGINE_ROW_KEYS, "engine", problems):
        if r["config"] not in (eng.get("configs") or {}):
            problems.append(f"{where}: config {r['config']!r} not in engine.configs")
        if not isinstance(r["batch"], int) or r["batch"] < 1:
            problems.append(f"{where}: batch must be a positive integer")
        if r["role"] not in ROLES:
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


def _check_pipeline(pipe: dict, problems: list[str]) -> None:
    for k in ("model", "engine", "device", "rows", "skipped"):
        if k not in pipe:
            problems.append(f"pipeline: missing {k!r}")
    for where, r in _complete_rows(pipe.get("rows"), PIPELINE_ROW_KEYS, "pipeline", problems):
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


def validate(result: dict) -> list[str]:
    """Problems with the structure of a latency result (as read back from its JSON); empty
    when it is well formed. Checks keys and types, not times."""
    if not isinstance(result, dict):
        return [f"the result must be an object, got {type(result).__name__}"]
    problems: list[str] = []
    if result.get("schema") != SCHEMA:
        problems.append(f"schema must be {SCHEMA!r}, got {result.get('schema')!r}")
    if result.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version must be {SCHEMA_VERSION}, "
                        f"got {result.get('schema_version')!r}")
    for k in TOP_KEYS:
        if k not in result:
            problems.append(f"missing top-level key {k!r}")
    for k in MACHINE_KEYS:
        if k not in (result.get("machine") or {}):
            problems.append(f"machine: missing {k!r}")
    if result.get("engine") is not None:
        _check_engine(result["engine"], problems)
    if result.get("pipeline") is not None:
        _check_pipeline(result["pipeline"], problems)
    for i, tg in enumerate(result.get("targets") or []):
        if not {"target", "value", "goal", "met"} <= set(tg):
            problems.append(f"targets[{i}]: needs target, value, goal and met")
    return problems
