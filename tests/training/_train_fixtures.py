"""Tiny training data and configs made in code (imported by the test_train* modules)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TINY_FLAGS = ["--size", "32", "--num-down", "2", "--channel-divisor", "16", "--n-mlp", "2",
              "--batch", "2", "--workers", "0", "--log-every", "1"]


def tiny_train_config(tmp: Path | None = None, **kw):
    from training.config import ModelConfig
    from training.train_config import DataSource, TrainConfig
    base = dict(model=ModelConfig(size=32, num_down=2, latent_dim=8, n_mlp=2, n_res=1, channel_divisor=16),
                batch=2, workers=0, log_every=1, lpips=False, d_reg_every=3, n_sample_faces=2,
                n_sample_styles=2)
    if tmp is not None:
        base["data_a"] = (DataSource(str(tmp / "A")),)
        base["data_b"] = (DataSource(str(tmp / "B")),)
    base.update(kw)
    return TrainConfig(**base)


def write_tiny_data(root: Path, n: int = 4) -> Path:
    """root/A: astronaut face crops (48 px, one grayscale, one RGBA: mixed sizes and modes);
    root/B: procedural anime faces (40 px)."""
    from PIL import Image
    from skimage import data

    from training.demo_data import AnimeStyle, render_anime
    (root / "A").mkdir(parents=True, exist_ok=True)
    (root / "B").mkdir(parents=True, exist_ok=True)
    img = data.astronaut()
    for i in range(n):
        crop = img[10 + 8 * i: 266 + 8 * i, 120:376]
        im = Image.fromarray(crop).resize((48 + 8 * i, 48))
        if i == 1:
            im = im.convert("L")
        if i == 2:
            im = im.convert("RGBA")
        im.save(root / "A" / f"face_{i}.png")
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(render_anime(AnimeStyle.sample(rng), 40, supersample=1, seed=i)).save(root / "B" / f"anime_{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def lpips_files(tmp_path_factory):
    from training.lpips import random_weight_files
    return random_weight_files(tmp_path_factory.mktemp("lpips"))
