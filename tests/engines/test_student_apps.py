"""A student checkpoint in the apps, end to end through the composition root: `realtime.convert
--checkpoint student.pt --style 3`, and `realtime.webcam --checkpoint student.pt` headless on a
clip synthesized from the astronaut photo, with each CPU backend; a locked-style student in the
webcam (which asks every checkpoint for live style changes) runs its one style."""
from __future__ import annotations

import json

import pytest

from realtime.compose import DEMO_STUDENT
from realtime.synthetic import read_back, synth_clip
from tests.export.test_student_export import tiny_student, write_student


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return synth_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 320, 240, 1, 12)


@pytest.fixture(autouse=True)
def _own_onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_convert_with_a_student_checkpoint_and_a_style(clip, tmp_path, capsys):
    from realtime.convert import main
    out = tmp_path / "anime.mp4"
    code = main([str(clip), "--checkpoint", str(DEMO_STUDENT), "--style", "3", "-o", str(out)])
    text = capsys.readouterr().err                  # the console writes to stderr
    assert code == 0, text[-2000:]
    assert "engine: onnxruntime-cpu int8 on cpu, 64x64, demo_student.pt" in text
    back = read_back(out)
    assert back["frames"] == 12 and (back["width"], back["height"]) == (320, 240)
    assert "12 faces" in text                     # every frame's face went through the student


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_webcam_with_a_student_checkpoint(clip, tmp_path, capsys, backend):
    from realtime.webcam import main
    summary = tmp_path / "s.json"
    code = main(["--checkpoint", str(DEMO_STUDENT), "--input", str(clip), "--no-window",
                 "--max-frames", "12", "--backend", backend, "--json", str(summary)])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    name = {"torch": "torch-cpu fp32 student", "onnxruntime": "onnxruntime-cpu int8"}[backend]
    assert f"engine: {name} on cpu, 64x64, demo_student.pt" in err
    s = json.loads(summary.read_text())
    assert s["frames_in"] == 12 and s["frames_out"] >= 1 and s["faces"] >= 1


def test_webcam_runs_a_locked_student_with_its_one_style(clip, tmp_path, capsys):
    from realtime.webcam import main
    locked = write_student(tmp_path / "locked.pt", tiny_student(dynamic=False))   # seed 5
    code = main(["--checkpoint", str(locked), "--input", str(clip), "--no-window",
                 "--max-frames", "6"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert "locked-style student" in err and "live style changes are off" in err
    code = main(["--checkpoint", str(locked), "--input", str(clip), "--no-window",
                 "--max-frames", "6", "--style", "4"])
    err = capsys.readouterr().err
    assert code == 2 and "distilled for seed 5" in err
