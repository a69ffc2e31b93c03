"""Data folders: checks up front, any image mode and size, weighted mixing, reproducible sharded
sampling, the authors' augmentation, and the demo data renderer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training.data import DataError, MixedFolders, MixSampler, load_image, scan_folder
from training.train_config import DataSource, TrainConfig

from ._train_fixtures import tiny_data  # noqa: F401


def test_data_source_parsing():
    assert DataSource.parse("faces") == DataSource("faces", 1.0)
    assert DataSource.parse("faces:3") == DataSource("faces", 3.0)
    assert DataSource.parse("C:/data/x") == DataSource("C:/data/x", 1.0)     # not a weight
    with pytest.raises(ValueError):
        DataSource.parse("faces:0")


def test_any_mode_and_size_becomes_rgb_at_model_size(tmp_path):
    from PIL import Image
    Image.fromarray((np.arange(60 * 40) % 255).astype(np.uint8).reshape(60, 40)).save(tmp_path / "g.png")
    Image.new("RGBA", (30, 50), (255, 0, 0, 0)).save(tmp_path / "t.png")          # fully transparent
    Image.new("P", (20, 20)).save(tmp_path / "p.bmp")
    Image.fromarray((np.arange(64 * 64) * 10).astype(np.uint16).reshape(64, 64)).save(tmp_path / "i16.png")
    for name in ("g.png", "t.png", "p.bmp", "i16.png"):
        img = load_image(tmp_path / name, 32)
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8, name
    assert (load_image(tmp_path / "t.png", 32) == 128).all()                       # alpha over grey


def test_scan_reports_bad_files_and_fails_without_images(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("x")
    with pytest.raises(DataError, match="no images in"):
        scan_folder(d)
    (d / "bad.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="could be read"):
        scan_folder(d)
    from PIL import Image
    Image.new("RGB", (8, 8)).save(d / "ok.jpg")
    scan = scan_folder(d)
    assert [p.name for p in scan.images] == ["ok.jpg"] and [p.name for p, _ in scan.bad] == ["bad.png"]
    with pytest.raises(DataError, match="does not exist"):
        scan_folder(tmp_path / "missing")
    with pytest.raises(DataError, match="is a file"):
        scan_folder(d / "ok.jpg")


def test_file_broken_after_the_scan_is_replaced_not_fatal(tmp_path, caplog):
    from PIL import Image
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(tmp_path / f"{i}.png")
    mix = MixedFolders([DataSource(str(tmp_path))], 16)
    (tmp_path / "1.png").write_bytes(b"truncated")
    x = mix.dataset[1]
    assert x.shape == (3, 16, 16) and "could not decode" in caplog.text


def test_mix_sampler_weights_shards_and_resumes(tiny_data, tmp_path):
    from PIL import Image
    (tmp_path / "big").mkdir()
    for i in range(20):
        Image.new("RGB", (8, 8)).save(tmp_path / "big" / f"{i}.png")
    mix = MixedFolders([DataSource(str(tiny_data / "A"), 3.0), DataSource(str(tmp_path / "big"), 1.0)], 16)
    s = MixSampler(mix, seed=0)
    draws = [s.index_at(k) for k in range(4000)]
    share_a = np.mean([mix.folder_of(i) == 0 for i in draws])
    assert 0.70 < share_a < 0.80                                           # weight 3 : 1
    # one folder alone: each round is a permutation (an epoch)
    one = MixedFolders([DataSource(str(tmp_path / "big"))], 16)
    s1 = MixSampler(one, seed=1)
    assert sorted(s1.index_at(k) for k in range(20)) == list(range(20))
    # two ranks read disjoint interleaved positions of the same stream
    r0, r1 = MixSampler(one, 1, rank=0, world=2), MixSampler(one, 1, rank=1, world=2)
    assert [r0.index_at(k) for k in range(10)] == [s1.index_at(2 * k) for k in range(10)]
    assert [r1.index_at(k) for k in range(10)] == [s1.index_at(2 * k + 1) for k in range(10)]
    # resuming at a position continues the same stream
    it = iter(MixSampler(one, 1, start=37))
    assert [next(it) for _ in range(5)] == [s1.index_at(k) for k in range(37, 42)]


def test_authors_augmentation_shapes_and_randomness():
    from training.augment import AuthorsAugment
    from training.config import ModelConfig
    aug = AuthorsAugment.from_config(TrainConfig(model=ModelConfig(size=32, num_down=2)))
    assert aug.resized == 36                             # 256 + 30 scaled to 32
    x = torch.rand(1, 3, 32, 32).expand(8, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    y = aug(x)
    assert y.shape == (8, 3, 32, 32)
    assert len({tuple(v.flatten()[:50].tolist()) for v in y}) > 1    # one image, different draws
    torch.manual_seed(0)
    assert torch.equal(aug(x), y)                         # the global RNG decides
    with pytest.raises(ValueError, match="32 x 32"):
        aug(torch.zeros(1, 3, 16, 16))


def test_demo_renderer_varies_with_style_and_is_deterministic():
    from training.demo_data import AnimeStyle, render_anime
    rng = np.random.default_rng(0)
    s1, s2 = AnimeStyle.sample(rng), AnimeStyle.sample(rng)
    a = render_anime(s1, 32, supersample=1, seed=0)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_anime(s1, 32, supersample=1, seed=0))
    assert np.abs(a.astype(int) - render_anime(s2, 32, supersample=1, seed=0)).mean() > 5
