"""``python -m realtime.doctor`` on this machine: exit 0, every CPU check passing, the CUDA
checks skipped with their reason where there is no GPU (said in one line), and the JSON report.
Also the ``--amp`` refusal the doctor's machine report relates to (native bf16)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from realtime.doctor import SCHEMA, VERDICTS, main
from training.loop import amp_problem

REPO = Path(__file__).resolve().parents[1]
CPU_ITEMS = ("onnxruntime install", "video encoders", "mediapipe", "torch-cpu fp32 parity",
             "onnxruntime-cpu fp32 parity", "--backend auto (style as input)", "convert a clip")
LIVE = "live pipeline, looped clip, headless"


@pytest.fixture(scope="module")
def doctor_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("doctor") / "doctor.json"
    run = subprocess.run([sys.executable, "-m", "realtime.doctor", "--json", str(out),
                          "--frames", "30"], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return run, out


def test_doctor_exits_0_and_every_cpu_check_passes(doctor_run):
    run, out = doctor_run
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["schema"] == SCHEMA and report["verdict"] == "ok"
    items = {i["name"]: i for i in report["items"]}
    assert all(i["verdict"] in VERDICTS for i in items.values())
    for name in CPU_ITEMS:
        assert items[name]["verdict"] == "ok", items[name]
        assert f"[ ok ] {name}:" in run.stdout
    for name in ("torch-cpu fp32 parity", "onnxruntime-cpu fp32 parity"):
        assert items[name]["data"]["max_abs"] <= 1e-4
    convert = items["convert a clip"]["data"]
    assert convert["summary"]["frames_out"] == 24 and convert["face_diff"] > 2
    # live mode drops frames when the machine falls behind (a busy 2-core CPU does): a warning
    assert items[LIVE]["verdict"] in ("ok", "warn"), items[LIVE]
    live = items[LIVE]["data"]["summary"]
    assert live["frames_in"] == 30 and live["frames_out"] >= 1 and live["faces"] > 0
    assert report["counts"] == {v: sum(i["verdict"] == v for i in items.values()) for v in VERDICTS}


def test_doctor_reports_the_machine(doctor_run):
    run, out = doctor_run
    m = json.loads(out.read_text())["machine"]
    assert m["gpu"]["torch"] == torch.__version__ and m["gpu"]["cuda"] == torch.cuda.is_available()
    assert m["onnxruntime"]["distributions"] and m["onnxruntime"]["problem"] is None
    assert m["encoders"]["size"] == [1920, 1080] and m["encoders"]["libx264"] is True
    assert m["mediapipe"]["face_models_bundled"] and m["pyav"]["version"]
    assert "torch on cpu" in m["auto_candidates"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_in_one_line_and_skips_the_gpu_checks(doctor_run):
    run, out = doctor_run
    assert sum("no CUDA" in line for line in run.stdout.splitlines()) >= 1
    items = {i["name"]: i for i in json.loads(out.read_text())["items"]}
    assert items["CUDA backends"]["verdict"] == "skip"
    assert "no CUDA GPU here" in items["CUDA backends"]["detail"]
    assert not any(name.startswith(("torch-cuda", "onnxruntime-cuda", "tensorrt"))
                   for name in items)


def test_bad_option_exits_2(capsys, tmp_path):
    assert main(["--frames", "3", "--json", str(tmp_path / "d.json")]) == 2
    assert "--frames must be at least 10" in capsys.readouterr().out
    assert not (tmp_path / "d.json").exists()


def test_amp_is_refused_without_native_bf16():
    assert "needs a CUDA device" in amp_problem("cpu", False)
    msg = amp_problem("cuda", False)
    assert "native bf16" in msg and "is_bf16_supported() is False" in msg
    assert amp_problem("cuda", True) is None
