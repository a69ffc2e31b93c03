"""The student in the latency benchmark: its rows beside the teacher's in the engine section
(timed in the same turns), the student-vs-teacher table and targets, and the pipeline section
running the shipped demo student. Nothing here asserts on a time."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from benchmarks.latency_engines import STUDENT_KINDS, run_engine_section, student_label
from benchmarks.latency_pipeline import DEMO_STUDENT_MODEL, run_pipeline_section
from benchmarks.latency_report import (STUDENT_INT8, TEACHER_INT8, evaluate_targets,
                                       print_report, student_comparison)
from benchmarks.latency_schema import validate, write_roundtrip
from benchmarks.latency_settings import Settings
from training.student import StudentConfig, student_flops

from .test_latency import _engine_row, make_result


def _console() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture(scope="module")
def demo_section(tmp_path_factory):
    s = Settings(sections=("engine",), configs=("demo",), batches=(1,), reps=2, warmup=0,
                 max_seconds=5, authors_blur=False, int8=True, threads=1)
    section, kept = run_engine_section(s, _console(), tmp_path_factory.mktemp("eng"))
    assert kept == {}
    return section


def test_student_rows_beside_the_teacher(demo_section):
    rows = {r["label"]: r for r in demo_section["rows"]}
    for kind in STUDENT_KINDS:
        for backend in ("torch-cpu fp32", "onnxruntime-cpu fp32", "onnxruntime-cpu int8"):
            r = rows[student_label(kind, backend)]
            assert r["config"] == "demo" and r["batch"] == 1 and r["reps"] == 2
            assert r["exact"] is False and r["max_abs_vs_baseline"] is None
            assert r["speedup_vs_baseline"] > 0 and r["role"] == "engine"
    assert rows[student_label("locked", "onnxruntime-cpu int8")]["precision"] == "int8"
    st = demo_section["students"]["demo"]
    assert st["source"].startswith("the shipped demo_student.pt")
    cfg = StudentConfig.from_dict(st["config"])
    assert st["flops_per_frame"]["styled"] == student_flops(cfg)
    assert 0 < st["flops_per_frame"]["locked"] < st["flops_per_frame"]["styled"]
    # a student row's TFLOP/s is its own work, not the teacher's
    r = rows[student_label("locked", "torch-cpu fp32")]
    assert r["tflops"] == pytest.approx(st["flops_per_frame"]["locked"] * r["frames_per_s"] / 1e12)
    result = make_result()
    result["engine"] = demo_section
    assert validate(write_roundtrip(result)) == []
    con = _console()
    print_report(result, con)
    text = con.file.getvalue()
    assert "Student vs teacher · demo" in text and "× teacher" in text


def test_student_comparison_and_targets():
    rows = [_engine_row("torch eager fp32 (baseline)", "baseline", 1, 1000.0, cfg="released"),
            _engine_row(TEACHER_INT8, "engine", 1, 120.0, cfg="released"),
            _engine_row(STUDENT_INT8, "engine", 1, 30.0, cfg="released"),
            _engine_row(student_label("styled", "torch-cpu fp32"), "engine", 1, 80.0,
                        cfg="released")]
    cmp = {c["student"]: c for c in student_comparison(rows, "released", 1)}
    assert cmp[STUDENT_INT8]["teacher"] == TEACHER_INT8
    assert cmp[STUDENT_INT8]["speedup"] == pytest.approx(4.0)
    assert cmp[student_label("styled", "torch-cpu fp32")]["teacher"] is None   # not measured
    result = make_result()
    result["engine"]["rows"] = rows
    student = [t for t in evaluate_targets(result) if t["target"].startswith("CPU student")]
    assert [t["met"] for t in student] == [True, True]
    assert student[0]["value"] == pytest.approx(30.0) and student[1]["value"] == pytest.approx(4.0)
    rows[2] = _engine_row(STUDENT_INT8, "engine", 1, 40.0, cfg="released")
    student = [t for t in evaluate_targets(result) if t["target"].startswith("CPU student")]
    assert [t["met"] for t in student] == [False, False]          # 40 ms; 3.0x


def test_pipeline_section_runs_the_demo_student(tmp_path):
    s = Settings(sections=("pipeline",), pipeline_model=DEMO_STUDENT_MODEL,
                 resolutions=("640x480",), faces=(1,), modes=("live",), frames=8,
                 warmup_frames=2, threads=1)
    section = run_pipeline_section(s, _console(), tmp_path, None, {})
    assert section["model"] == DEMO_STUDENT_MODEL and section["engine"] == "onnxruntime-cpu int8"
    assert "demo_student.pt" in section["engine_choice"]
    [row] = section["rows"]
    assert row["measured_frames"] > 0 and row["stages"]["engine"]["n"] > 0
