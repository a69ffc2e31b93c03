"""Our LPIPS(VGG): torchvision's VGG16 names, the published formula, local files only."""
from __future__ import annotations

import pytest
import torch

from training.lpips import LPIPS, LPIPSWeightsError, random_weight_files

from ._train_fixtures import lpips_files  # noqa: F401


def test_vgg_parameter_names_are_torchvisions():
    names = set(LPIPS().net.state_dict())
    convs = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
    assert names == {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}


def test_formula_by_hand(lpips_files):
    m = LPIPS.from_files(*lpips_files)
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    b = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    fa, fb = m.net((a - shift) / scale), m.net((b - shift) / scale)
    want = torch.zeros(2)
    for x, y, w in zip(fa, fb, m.lins):
        nx = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        ny = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        want += ((nx - ny) ** 2 * w.view(1, -1, 1, 1)).sum(1).mean(dim=(1, 2))
    got = m(a, b)
    assert got.shape == (2, 1, 1, 1)
    assert torch.allclose(got.flatten(), want, rtol=1e-5, atol=1e-7)
    assert torch.allclose(m(a, a).flatten(), torch.zeros(2), atol=1e-7)
    assert torch.allclose(m(b, a), got, rtol=1e-5)                     # symmetric


def test_frozen_but_differentiable_in_its_inputs(lpips_files):
    m = LPIPS.from_files(*lpips_files)
    assert not any(p.requires_grad for p in m.parameters())
    m.train()
    assert not m.training
    a = torch.zeros(1, 3, 32, 32, requires_grad=True)
    m(a, torch.ones(1, 3, 32, 32) * 0.5).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_full_vgg16_state_dict_and_lpips_package_layout_load(tmp_path):
    vgg, lin = random_weight_files(tmp_path)
    full = torch.load(vgg, weights_only=True)
    full["classifier.0.weight"] = torch.zeros(4096, 25088 // 64)   # extra keys are ignored
    torch.save(full, tmp_path / "vgg_full.pth")
    LPIPS.from_files(tmp_path / "vgg_full.pth", lin)


@pytest.mark.parametrize("which", ["vgg_missing", "lin_missing", "vgg_wrong", "lin_wrong"])
def test_missing_or_wrong_weights_say_what_to_do(which, tmp_path, monkeypatch):
    import training.lpips as lp
    vgg, lin = random_weight_files(tmp_path)
    monkeypatch.setattr(lp, "default_vgg_path", lambda: None)
    monkeypatch.setattr(lp, "default_lin_path", lambda: None)
    if which == "vgg_missing":
        args, match = (None, lin), "--no-lpips"
    elif which == "lin_missing":
        args, match = (vgg, None), "--lpips-lin"
    elif which == "vgg_wrong":
        torch.save({"foo": torch.zeros(1)}, tmp_path / "x.pth")
        args, match = (tmp_path / "x.pth", lin), "features.0.weight"
    else:
        torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, tmp_path / "y.pth")
        args, match = (vgg, tmp_path / "y.pth"), "expected"
    with pytest.raises(LPIPSWeightsError, match=match):
        LPIPS.from_files(*args)
