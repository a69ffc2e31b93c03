"""The shipped demo model: small, loads with load_generator, reacts to its style code."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import image_to_tensor

DEMO = Path(__file__).resolve().parents[2] / "realtime" / "assets" / "demo_model.pt"


@pytest.fixture(scope="module")
def demo():
    if not DEMO.is_file() or DEMO.stat().st_size < 1_000_000:
        pytest.skip("the demo model is not in this checkout (or is a Git LFS pointer)")
    from training import load_generator
    return load_generator(DEMO), load_generator(DEMO, which="G_B2A_ema")


def test_demo_model_is_small_and_in_the_authors_layout(demo):
    assert DEMO.stat().st_size <= 20 * 1024 * 1024
    raw = torch.load(DEMO, weights_only=True)
    assert {"G_A2B_ema", "G_B2A_ema", "config", "iter"} <= set(raw)
    assert "not the authors'" in raw["demo"]["what"]


def test_demo_model_stylizes_and_follows_the_style(demo, astronaut):
    G, _ = demo
    x = image_to_tensor(astronaut[0:300, 110:410], G.size)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, G.latent_dim, generator=g)
    with torch.no_grad():
        content = G.encode(x).content
        ys = torch.cat([G.decode(content, zi[None]) for zi in z])
    assert torch.isfinite(ys).all()
    assert (ys - x).abs().mean() > 0.2                               # not the photo
    spread = (ys - ys.mean(0, keepdim=True)).abs().mean()
    assert spread > 0.05                                             # the style code matters


@pytest.mark.parametrize("weights", ["ema", "live"])
def test_ship_demo_model_keeps_two_generators_under_the_pipeline_keys(tmp_path, tiny_config, weights):
    from training import build_networks, load_generator, make_checkpoint, save_checkpoint
    from training.demo_data import ship_demo_model
    torch.manual_seed(0)
    nets = build_networks(tiny_config)
    with torch.no_grad():
        for p in nets["G_A2B"].parameters():
            p.add_(0.1)
    src = save_checkpoint(make_checkpoint(nets, tiny_config, iter=7), tmp_path / "run.pt")
    out = ship_demo_model(src, tmp_path / "demo.pt", weights=weights)
    raw = torch.load(out, weights_only=True)
    assert set(raw) == {"G_A2B_ema", "G_B2A_ema", "config", "iter", "demo"}
    assert weights in raw["demo"]["weights"].lower() or (weights == "ema" and "EMA" in raw["demo"]["weights"])
    assert raw["G_A2B_ema"]["mapping.0.weight"].dtype == torch.float16     # stored at half size
    G = load_generator(out)
    want = nets["G_A2B" if weights == "live" else "G_A2B_ema"].state_dict()
    # float16 storage: exactly the weights rounded to float16, loaded into the float32 model
    assert all(torch.equal(G.state_dict()[k], want[k].half().float()) for k in want)
    exact = load_generator(ship_demo_model(src, tmp_path / "demo32.pt", weights=weights, half=False))
    assert all(torch.equal(exact.state_dict()[k], want[k]) for k in want)
