"""The training loop on a tiny config: every loss and regulariser runs, the run directory is
complete, resuming is exact, and NaN / Ctrl-C / disk-full end the way they should."""
from __future__ import annotations

import errno
import json
import math
import os
import signal

import pytest
import torch

from training import load_generator, read_checkpoint
from training.checkpoint import NETWORK_KEYS
from training.loop import DistInfo, Trainer, run_training

from ._train_fixtures import TINY_FLAGS, lpips_files, tiny_data, tiny_train_config  # noqa: F401


def _cfg(tiny_data, **kw):
    return tiny_train_config(tiny_data, **kw)


def _batches(tiny_data, size=32):
    from training.data import MixedFolders
    from training.train_config import DataSource
    a = MixedFolders([DataSource(str(tiny_data / "A"))], size)
    b = MixedFolders([DataSource(str(tiny_data / "B"))], size)
    return torch.stack([a.dataset[i] for i in range(2)]), torch.stack([b.dataset[i] for i in range(2)])


def test_steps_run_every_loss_r1_on_interval_and_ema_moves(tiny_data, lpips_files):
    from training.lpips import LPIPS
    cfg = tiny_train_config(lpips=True, d_reg_every=2)
    trainer = Trainer(cfg, DistInfo(), lpips=LPIPS.from_files(*lpips_files))
    A, B = _batches(tiny_data)
    ema0 = [p.clone() for p in trainer.nets["G_A2B_ema"].parameters()]
    d0 = [p.clone() for p in trainer.nets["D_L"].parameters()]
    for i in range(3):
        logs = trainer.step(A, B)       # steps 0..2
        for k in ("D_adv", "G_adv", "G_con", "G_cycle", "lpips", "G_style", "G_total"):
            assert k in logs and math.isfinite(logs[k]), (i, k)
        assert ("D_r1" in logs) == (i % 2 == 0), i                 # lazy R1 at steps 0 and 2
        if "D_r1" in logs:
            assert logs["D_r1"] > 0
        assert logs["lpips"] > 0 and logs["G_con"] >= 0
    assert trainer.step_count == 3
    moved = sum(float((p - q).abs().sum()) for p, q in zip(trainer.nets["G_A2B_ema"].parameters(), ema0))
    assert moved > 0                                                # EMA follows...
    live = trainer.nets["G_A2B"].state_dict()
    ema = trainer.nets["G_A2B_ema"].state_dict()
    assert any(not torch.equal(live[k], ema[k]) for k in live)     # ...but lags the live weights
    assert any(not torch.equal(p, q) for p, q in zip(trainer.nets["D_L"].parameters(), d0))
    # the authors' optimiser settings
    assert trainer.G_optim.param_groups[0]["betas"] == (0.0, 0.99)
    assert trainer.D_optim.param_groups[0]["betas"][1] == pytest.approx(0.99 ** (2 / 3))


def test_authors_default_weights():
    from training.train_config import TrainConfig
    c = TrainConfig()
    assert (c.adv_image, c.adv_latent, c.style_consistency, c.cycle_mse, c.cycle_lpips, c.style_recon) == (1, 2, 50, 20, 10, 5)
    assert (c.r1, c.d_reg_every, c.lr, c.betas, c.lr_step, c.lr_gamma, c.ema_decay, c.batch) == \
        (10, 16, 2e-3, (0.0, 0.99), 100_000, 0.5, 0.999, 4)
    assert c.d_betas[1] == pytest.approx(0.99 ** (16 / 17))


def test_cli_run_directory_and_checkpoint_format(tmp_path, tiny_data):
    from training.__main__ import main
    run = tmp_path / "run"
    rc = main(["--data-a", str(tiny_data / "A"), "--data-b", f"{tiny_data / 'B'}:1", "--run-dir", str(run),
               "--iters", "4", "--checkpoint-every", "2", "--sample-every", "2", "--keep", "1",
               "--no-lpips", *TINY_FLAGS])
    assert rc == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["lpips"] is False and cfg["model"]["size"] == 32 and cfg["style_consistency"] == 50
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all("it_per_s" in r and "lr" in r for r in rows)
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        f"{s:06d}{kind}.png" for s in (0, 2, 4) for kind in ("", "_live")]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["000004.pt"]     # keep 1
    assert (run / "training_curve.png").is_file()
    try:
        import tensorboard  # noqa: F401
        assert any((run / "tensorboard").iterdir())
    except ImportError:
        pass
    raw = torch.load(run / "checkpoints" / "000004.pt", weights_only=True)
    assert set(NETWORK_KEYS) | {"G_optim", "D_optim", "iter", "config"} <= set(raw)
    assert raw["iter"] == 4
    G = load_generator(run / "checkpoints" / "000004.pt")
    assert G.config.size == 32


def _losses(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: {k: v for k, v in r.items() if k not in ("it_per_s",)} for r in rows}


def test_resume_reproduces_the_same_losses(tmp_path, tiny_data):
    from training.__main__ import main
    common = ["--data-a", str(tiny_data / "A"), "--data-b", str(tiny_data / "B"), "--no-lpips",
              "--checkpoint-every", "2", "--sample-every", "100", "--d-reg-every", "2", *TINY_FLAGS]
    assert main([*common, "--run-dir", str(tmp_path / "straight"), "--iters", "4"]) == 0
    assert main([*common, "--run-dir", str(tmp_path / "split"), "--iters", "2"]) == 0
    assert main(["--resume", str(tmp_path / "split"), "--iters", "4"]) == 0
    straight, split = _losses(tmp_path / "straight"), _losses(tmp_path / "split")
    assert "D_r1" in split[3]                                            # R1 ran after resuming
    for step in (3, 4):
        assert split[step] == straight[step], step                      # bit-identical on CPU
    a = read_checkpoint(tmp_path / "straight" / "checkpoints" / "000004.pt")
    b = read_checkpoint(tmp_path / "split" / "checkpoints" / "000004.pt")
    for k in ("G_A2B_ema", "D_L"):
        assert all(torch.equal(a[k][n], b[k][n]) for n in a[k])


def test_resume_refuses_a_different_setup(tmp_path, tiny_data, capsys):
    from training.__main__ import main
    run = tmp_path / "run"
    assert main(["--data-a", str(tiny_data / "A"), "--data-b", str(tiny_data / "B"), "--no-lpips",
                 "--run-dir", str(run), "--iters", "1", *TINY_FLAGS]) == 0
    assert main(["--resume", str(run), "--batch", "3", "--style-consistency", "10"]) == 2
    err = capsys.readouterr().err
    assert "--batch is 3 here but 2" in err and "--style-consistency" in err
    # a run directory that already has checkpoints is not overwritten by a new run
    assert main(["--data-a", str(tiny_data / "A"), "--data-b", str(tiny_data / "B"), "--no-lpips",
                 "--run-dir", str(run), "--iters", "1", *TINY_FLAGS]) == 2
    assert "--resume" in capsys.readouterr().err


def test_nan_stops_with_step_and_loss_and_keeps_last_good_checkpoint(tmp_path, tiny_data, monkeypatch):
    import training.loop as loop
    cfg = _cfg(tiny_data, checkpoint_every=2, iters=10, sample_every=100)
    calls = {"n": 0}
    real = loop.style_consistency_loss

    def poisoned(style):
        calls["n"] += 1
        out = real(style)
        return out * float("nan") if calls["n"] > 2 * 3 else out    # 2 calls a step: NaN at step 4
    monkeypatch.setattr(loop, "style_consistency_loss", poisoned)
    run = tmp_path / "run"
    run.mkdir()
    res = run_training(cfg, run, DistInfo())
    assert res.reason == "nan" and res.exit_code == 3 and res.step == 3      # 0-based step index
    assert res.last_checkpoint.name == "000002.pt"
    ck = read_checkpoint(res.last_checkpoint)
    assert ck["iter"] == 2
    assert all(torch.isfinite(v).all() for v in ck["G_A2B"].values())
    assert not (run / "checkpoints" / "000004.pt").exists()


def test_ctrl_c_saves_then_exits(tmp_path, tiny_data):
    cfg = _cfg(tiny_data, iters=50, checkpoint_every=100, sample_every=100)
    run = tmp_path / "run"
    run.mkdir()

    def interrupt(step, logs):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)         # the real handler, as a user's Ctrl-C
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        res = run_training(cfg, run, DistInfo(), on_step=interrupt)
    finally:
        signal.signal(signal.SIGINT, old)
    assert res.reason == "interrupted" and res.exit_code == 130 and res.step == 2
    assert res.last_checkpoint.name == "000002.pt" and read_checkpoint(res.last_checkpoint)["iter"] == 2


def test_disk_full_keeps_previous_checkpoint_and_goes_on(tmp_path, tiny_data, monkeypatch, caplog):
    import training.checkpoint as ck
    cfg = _cfg(tiny_data, iters=4, checkpoint_every=2, sample_every=100)
    real_save = torch.save
    state = {"n": 0}

    def full_disk(obj, f, *a, **k):
        state["n"] += 1
        if state["n"] == 2:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)
    monkeypatch.setattr(ck.torch, "save", full_disk)
    run = tmp_path / "run"
    run.mkdir()
    res = run_training(cfg, run, DistInfo())
    assert res.reason == "done"
    assert "No space left on device" in caplog.text and "untouched" in caplog.text
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["000002.pt"]                     # the step-4 save failed; no temp file left
    assert read_checkpoint(run / "checkpoints" / "000002.pt")["iter"] == 2


def test_init_from_checkpoint_adopts_its_architecture(tmp_path, tiny_data, capsys):
    from training.__main__ import main
    src = tmp_path / "src"
    data = ["--data-a", str(tiny_data / "A"), "--data-b", str(tiny_data / "B"), "--no-lpips"]
    assert main([*data, "--run-dir", str(src), "--iters", "2", *TINY_FLAGS]) == 0
    ckpt = src / "checkpoints" / "000002.pt"
    tuned = tmp_path / "tuned"
    assert main([*data, "--init", str(ckpt), "--run-dir", str(tuned), "--iters", "1", "--batch", "2",
                 "--workers", "0"]) == 0
    assert json.loads((tuned / "config.json").read_text())["model"]["channel_divisor"] == 16
    assert main([*data, "--init", str(ckpt), "--run-dir", str(tmp_path / "x"), "--iters", "1",
                 "--size", "64"]) == 2
    assert "--size 64 asked, checkpoint has 32" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "empty", "non_images", "corrupt_init", "corrupt_resume",
                                  "lpips_missing"])
def test_bad_input_is_a_clear_error(case, tmp_path, tiny_data, capsys):
    from training.__main__ import main
    data_a, data_b = str(tiny_data / "A"), str(tiny_data / "B")
    extra: list[str] = ["--no-lpips"]
    if case == "missing":
        data_a, want = str(tmp_path / "nope"), "does not exist"
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        data_b, want = str(tmp_path / "empty"), "no images in"
    elif case == "non_images":
        d = tmp_path / "junk"
        d.mkdir()
        (d / "notes.txt").write_text("hello")
        (d / "fake.jpg").write_bytes(b"this is not a jpeg")
        data_a, want = str(d), "could be read"
    elif case == "corrupt_init":
        bad = tmp_path / "bad.pt"
        bad.write_bytes(b"\x80\x02garbage" * 10)
        extra, want = ["--no-lpips", "--init", str(bad)], "bad.pt"
    elif case == "corrupt_resume":
        run = tmp_path / "run"
        assert main(["--data-a", data_a, "--data-b", data_b, "--run-dir", str(run), "--iters", "1",
                     "--no-lpips", *TINY_FLAGS]) == 0
        ck = run / "checkpoints" / "000001.pt"
        ck.write_bytes(ck.read_bytes()[:1000])
        capsys.readouterr()
        assert main(["--resume", str(run), "--iters", "2"]) == 2
        assert "000001.pt" in capsys.readouterr().err
        return
    else:
        extra, want = ["--lpips-weights", str(tmp_path / "no_vgg.pth")], "--no-lpips"
    rc = main(["--data-a", data_a, "--data-b", data_b, "--run-dir", str(tmp_path / "r"), "--iters", "1",
               *extra, *TINY_FLAGS])
    assert rc == 2
    assert want in capsys.readouterr().err
