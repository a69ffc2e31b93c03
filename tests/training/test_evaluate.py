"""Evaluation: the Fréchet distance against a direct computation, the Inception network's layout,
and the CLI end to end with random-weight feature networks (no downloads)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.evaluate import (InceptionV3Features, InceptionWeightsError, fid_from_features,
                               frechet_distance, main)

from ._train_fixtures import lpips_files, tiny_data  # noqa: F401


def test_frechet_distance_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) * 1.5 + 0.3
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    want = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-8)
    # the small-set route (nuclear norm of X1 X2^T) agrees with the covariance route
    c, d = rng.normal(size=(5, 30)), rng.normal(size=(7, 30)) + 0.2
    covs = [np.cov(c, rowvar=False), np.cov(d, rowvar=False)]
    assert fid_from_features(c, d) == pytest.approx(
        frechet_distance(c.mean(0), covs[0], d.mean(0), covs[1]), rel=1e-6)


def test_fid_basic_properties():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(50, 5))
    assert fid_from_features(f, f) == pytest.approx(0, abs=1e-8)
    assert fid_from_features(f, f + 2.0) == pytest.approx(5 * 4.0, rel=1e-6)   # mean shift only


def test_inception_layout_and_clear_errors(tmp_path):
    net = InceptionV3Features()
    keys = net.state_dict().keys()
    # torchvision / pytorch-fid parameter names
    for k in ("Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch_pool.bn.running_var",
              "Mixed_7c.branch3x3dbl_3b.conv.weight"):
        assert k in keys
    assert sum(p.numel() for p in net.parameters()) == 21_785_568   # Inception-v3 without fc / aux
    with pytest.raises(InceptionWeightsError, match="--inception-weights"):
        InceptionV3Features.from_file(None)
    with pytest.raises(InceptionWeightsError, match="not found"):
        InceptionV3Features.from_file(tmp_path / "none.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(InceptionWeightsError, match="not an Inception-v3"):
        InceptionV3Features.from_file(tmp_path / "wrong.pth")


def test_evaluate_cli_end_to_end(tmp_path, tiny_data, lpips_files, capsys, monkeypatch):
    monkeypatch.setattr(InceptionV3Features, "input_size", 75)     # the smallest it takes: fast
    from training import build_networks, make_checkpoint, save_checkpoint
    from training.config import ModelConfig
    torch.manual_seed(0)
    cfg = ModelConfig(size=32, num_down=2, latent_dim=8, n_mlp=2, n_res=1, channel_divisor=16)
    ckpt = save_checkpoint(make_checkpoint(build_networks(cfg), cfg, iter=0), tmp_path / "g.pt")
    inc = InceptionV3Features()
    for m in inc.modules():          # variance-preserving random weights (no denormal slow-down)
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    state = inc.state_dict()
    state["fc.weight"] = torch.zeros(1008, 2048)          # extra keys of the FID file are ignored
    torch.save(state, tmp_path / "inception.pth")
    out = tmp_path / "eval" / "metrics.json"
    args = [str(ckpt), "--test-a", str(tiny_data / "A"), "--test-b", str(tiny_data / "B"),
            "--inception-weights", str(tmp_path / "inception.pth"), "--lpips-weights", str(lpips_files[0]),
            "--lpips-lin", str(lpips_files[1]), "--styles", "3", "--dfid-inputs", "2", "--max-a", "3",
            "--max-b", "4", "--out", str(out)]
    assert main(args) == 0
    res = json.loads(out.read_text())
    for k in ("fid", "dfid", "dfid_std", "lpips_diversity"):
        assert np.isfinite(res[k]) and res[k] >= 0, k
    assert res["dfid_inputs"] == 2 and res["styles_per_input"] == 3 and res["n_faces"] == 3
    assert res["lpips_diversity"] > 0                     # random styles give different outputs
    capsys.readouterr()
    assert main(args[:5] + ["--no-lpips"]) == 2            # no --inception-weights
    assert "--inception-weights" in capsys.readouterr().err
