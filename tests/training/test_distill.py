"""Distillation on tiny configs: the run directory is complete, resuming continues exactly,
``--iters 1`` works, a style-conditioned student reacts to the style (and the shipped demo
student follows its teacher's styles), and bad input gives one line and exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.distill import main
from training.student import (Student, StudentConfig, is_student_checkpoint, load_student,
                              student_flops)

from ..export.fixtures import TINY, write_checkpoint
from ._train_fixtures import tiny_data  # noqa: F401

TINY_STUDENT = ["--widths", "8,16", "--mid-blocks", "1", "--batch", "2", "--workers", "0",
                "--log-every", "1", "--no-lpips", "--device", "cpu"]
ASSETS = Path(__file__).resolve().parents[2] / "realtime" / "assets"


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("teacher") / "teacher.pt", TINY)


def _run(argv, capsys=None):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err if capsys is not None else ""
    return code, err


def _losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["total"] for r in rows}


def test_run_directory_ctrl_c_and_resume_continue_exactly(teacher, tiny_data, tmp_path):
    import os
    import signal

    from training.distill import load_teacher, run_distill
    from training.distill_config import DistillConfig

    common = ["--teacher", teacher, "--dynamic-style", "--data-a", tiny_data / "A", *TINY_STUDENT,
              "--checkpoint-every", "2", "--sample-every", "2", "--iters", "3"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _run([*common, "--run-dir", straight])[0] == 0
    # the same run, stopped by a real Ctrl-C after step 2: it saves, then exits 130
    cfg = DistillConfig.load_json(straight / "config.json")
    split.mkdir()
    cfg.save_json(split / "config.json")

    def interrupt(step, logs):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        res = run_distill(cfg, split, load_teacher(teacher), torch.device("cpu"), on_step=interrupt)
    finally:
        signal.signal(signal.SIGINT, old)
    assert (res.reason, res.exit_code, res.step) == ("interrupted", 130, 2)
    assert sorted(p.name for p in (split / "checkpoints").iterdir()) == ["000002.pt"]
    assert _run(["--resume", split, "--workers", "0"])[0] == 0

    for name in ("config.json", "train.log", "metrics.jsonl", "samples/000000.png",
                 "samples/000002.png", "checkpoints/000003.pt"):
        assert (split / name).is_file(), name
    assert any((split / "tensorboard").iterdir())
    assert "resumed from" in (split / "train.log").read_text()
    # the resumed step 3 is the uninterrupted run's step 3 (weights, optimizer, RNG, data order)
    assert _losses(split)[3] == pytest.approx(_losses(straight)[3], rel=1e-5)
    a = load_student(straight / "checkpoints" / "000003.pt").state_dict()
    b = load_student(split / "checkpoints" / "000003.pt").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    ckpt = torch.load(split / "checkpoints" / "000003.pt", weights_only=True)
    assert is_student_checkpoint(ckpt) and ckpt["iter"] == 3
    assert ckpt["teacher"]["name"] == "teacher.pt" and ckpt["config"]["size"] == 32
    assert "G_B2A_ema" in ckpt                       # --style-image works with the student
    # the samples put teacher and student side by side: face + (teacher, student) x 3 styles
    from PIL import Image
    assert Image.open(split / "samples" / "000002.png").size == (32 * 7, 32 * 4)   # 4 faces


def test_iters_1_and_a_locked_student(teacher, tiny_data, tmp_path, face_batch):
    run = tmp_path / "one"
    assert _run(["--teacher", teacher, "--style", 3, "--data-a", tiny_data / "A", *TINY_STUDENT,
                 "--run-dir", run, "--iters", 1])[0] == 0
    s = load_student(run / "checkpoints" / "000001.pt")
    assert not s.config.dynamic_style and s.style.source == "seed 3"
    assert s(face_batch).shape == face_batch.shape
    with pytest.raises(ValueError, match="locked"):
        s(face_batch, torch.zeros(1, 8))
    assert "G_B2A_ema" not in torch.load(run / "checkpoints" / "000001.pt", weights_only=True)


def test_style_conditioned_student_reacts_to_the_style(face_batch):
    torch.manual_seed(0)
    s = Student(StudentConfig(size=32, widths=(8, 16), mid_blocks=1, dynamic_style=True)).eval()
    with torch.no_grad():
        s.style_mlp[-1].weight.normal_(0, 0.05)     # as after training (it starts at zero)
    z1, z2 = torch.randn(1, 8), torch.randn(1, 8)
    with torch.no_grad():
        y1, y2 = s(face_batch, z1), s(face_batch, z2)
        assert (y1 - y2).abs().mean() > 1e-3
        # one style folded into the convolutions gives the same output, without a style path
        locked = s.lock_style(z1[0].tolist())
        assert locked.style_mlp is None
        assert torch.allclose(locked(face_batch), y1, atol=1e-5)
        # per-image styles: each image gets its own
        y12 = s(face_batch, torch.cat([z1, z2]))
        assert torch.allclose(y12[0], y1[0], atol=1e-5) and torch.allclose(y12[1], y2[1], atol=1e-5)


def test_shipped_demo_student_follows_its_teachers_styles():
    """Each style's student output is closest to the teacher's output with THAT style."""
    from export.verify import astronaut_crops
    from training.checkpoint import load_generator
    from training.style import StyleCode

    s = load_student(ASSETS / "demo_student.pt")
    G = load_generator(ASSETS / "demo_model.pt")
    x = astronaut_crops(64, n=2)
    zs = [StyleCode.from_seed(k).tensor() for k in range(1, 5)]
    with torch.no_grad():
        t = [G.decode(G.encode(x).content, z).clamp(-1, 1) for z in zs]
        y = [s(x, z).clamp(-1, 1) for z in zs]
    err = torch.tensor([[float((y[i] - t[j]).pow(2).mean()) for j in range(4)] for i in range(4)])
    assert all(int(err[i].argmin()) == i for i in range(4)), err
    psnr = 10 * torch.log10(4 / err.diagonal())
    assert psnr.min() > 22, psnr                   # 23.8-27.0 dB for the shipped student


def test_flops_counted_on_the_model():
    # the 256x256 CPU design sits in the 2-4 GFLOP budget
    assert 2e9 < student_flops(StudentConfig()) < 4e9
    assert student_flops(StudentConfig(dynamic_style=True)) < 4e9


def test_bad_inputs_give_one_line(teacher, tiny_data, tmp_path, capsys):
    base = ["--style", 0, *TINY_STUDENT, "--iters", 1]
    code, err = _run(["--teacher", tmp_path / "nope.pt", "--data-a", tiny_data / "A",
                      "--run-dir", tmp_path / "r1", *base], capsys)
    assert code == 2 and err.strip().count("\n") == 0
    assert "--teacher" in err and "not found" in err and "nope.pt" in err

    # weights of another shape than the config stored beside them
    ck = torch.load(teacher, weights_only=True)
    ck["config"] = {**ck["config"], "channel_divisor": 8}
    wrong = tmp_path / "wrong.pt"
    torch.save(ck, wrong)
    code, err = _run(["--teacher", wrong, "--data-a", tiny_data / "A", "--run-dir", tmp_path / "r2",
                      *base], capsys)
    assert code == 2 and err.strip().count("\n") == 0
    assert "--teacher" in err and "shape" in err and "channel_divisor=16" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    code, err = _run(["--teacher", teacher, "--data-a", empty, "--run-dir", tmp_path / "r3", *base],
                     capsys)
    assert code == 2 and err.strip().count("\n") == 0
    assert "--data-a" in err and "no images" in err
    assert not (tmp_path / "r3").exists()            # nothing was started

    # a student is not a teacher
    assert _run(["--teacher", teacher, "--data-a", tiny_data / "A", "--run-dir", tmp_path / "r4",
                 *base])[0] == 0
    capsys.readouterr()
    code, err = _run(["--teacher", tmp_path / "r4" / "checkpoints" / "000001.pt", "--data-a",
                      tiny_data / "A", "--run-dir", tmp_path / "r5", *base], capsys)
    assert code == 2 and "student checkpoint" in err and err.strip().count("\n") == 0

    # an existing run is continued with --resume, never overwritten
    code, err = _run(["--teacher", teacher, "--data-a", tiny_data / "A", "--run-dir",
                      tmp_path / "r4", *base], capsys)
    assert code == 2 and "--resume" in err
