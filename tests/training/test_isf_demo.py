"""The shipped demo ISF: small, plain data, made for the shipped demo model, and asking it for a
hair colour changes the hair of the demo model's render of a real face to that colour."""
from __future__ import annotations

import colorsys
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import image_to_tensor

ASSETS = Path(__file__).resolve().parents[2] / "realtime" / "assets"
DEMO_MODEL, DEMO_ISF = ASSETS / "demo_model.pt", ASSETS / "demo_isf.pt"


@pytest.fixture(scope="module")
def demo():
    for p in (DEMO_MODEL, DEMO_ISF):
        if not p.is_file() or p.stat().st_size < 10_000:
            pytest.skip(f"{p.name} is not in this checkout (or is a Git LFS pointer)")
    from training import load_generator
    from training.isf import load_isf
    return load_generator(DEMO_MODEL), load_isf(DEMO_ISF, checkpoint=DEMO_MODEL)


def test_demo_isf_is_small_plain_data_with_its_recipe(demo):
    from training.demo_data import ATTRIBUTES
    assert DEMO_ISF.stat().st_size < 2 * 1024 * 1024
    raw = torch.load(DEMO_ISF, weights_only=True)
    assert raw["net"]["space"] == "latent" and raw["gnr"]["file"] == "demo_model.pt"
    _, isf = demo
    assert {k: set(v) for k, v in isf.attributes.items()} == {k: set(v) for k, v in ATTRIBUTES.items()}
    recipe = json.loads((ASSETS / "demo_isf.json").read_text())
    assert recipe["file"] == "demo_isf.pt" and any("training.isf" in c for c in recipe["commands"])


def _hair_hue(rgb: np.ndarray) -> float:
    """Circular mean hue (degrees) of the saturated pixels in the top fifth of a render (the
    hair above the fringe)."""
    top = rgb[: rgb.shape[0] // 5].reshape(-1, 3) / 255.0
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in top])
    keep = hsv[:, 1] > 0.25
    ang = hsv[keep, 0] * 2 * np.pi
    return float(np.degrees(np.arctan2(np.sin(ang).mean(), np.cos(ang).mean())) % 360)


def _hue_gap(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


@pytest.mark.parametrize("colour, hue", [("red", 0), ("green", 120), ("blue", 225)])
def test_demo_isf_changes_hair_colour_on_the_demo_model(demo, astronaut, colour, hue):
    from training.pixels import batch_to_images
    from training.style import StyleCode
    G, isf = demo
    x = image_to_tensor(astronaut[0:300, 110:410], G.size)
    with torch.no_grad():
        content = G.encode(x).content
    for seed in (1, 2, 3):
        z = StyleCode.from_seed(seed)
        edited = isf.edit(z, {"hair": colour}, seed=0)
        assert isinstance(edited, StyleCode) and edited.dim == 8
        with torch.no_grad():
            img = batch_to_images(G.decode(content, edited.tensor()))[0]
        assert _hue_gap(_hair_hue(img), hue) < 40, (colour, seed, _hair_hue(img))
