"""Checkpoints: the authors' format round-trips, configs are stored or inferred, and every bad
file gets an error that says what is wrong and what to do."""
from __future__ import annotations

import argparse
import os

import pytest
import torch

from training import (CheckpointError, ModelConfig, RELEASED, build_networks, load_generator,
                      load_networks, make_checkpoint, read_checkpoint, save_checkpoint)
from training.checkpoint import NETWORK_KEYS, infer_config
from training.networks import Generator


@pytest.fixture(scope="module")
def tiny_nets():
    torch.manual_seed(0)
    cfg = ModelConfig(size=32, num_down=2, latent_dim=8, n_mlp=2, n_res=1, channel_divisor=16)
    nets = build_networks(cfg)
    with torch.no_grad():   # make the EMA copies differ from the live ones
        for p in nets["G_A2B_ema"].parameters():
            p.add_(0.05 * torch.randn_like(p))
    return cfg, nets


@pytest.fixture
def tiny_ckpt(tmp_path, tiny_nets):
    cfg, nets = tiny_nets
    path = tmp_path / "run" / "000100.pt"
    save_checkpoint(make_checkpoint(nets, cfg, iter=100), path)
    return path


def test_round_trip_identical_outputs(tiny_ckpt, tiny_nets, face_batch):
    cfg, nets = tiny_nets
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    for which in ("G_A2B_ema", "G_B2A_ema", "G_A2B", "G_B2A"):
        G = load_generator(tiny_ckpt, which=which, device="cpu")
        assert G.config == cfg and not G.training
        assert not any(p.requires_grad for p in G.parameters())
        ref = nets[which].eval()
        with torch.no_grad():
            assert torch.equal(G(face_batch, z)[0], ref(face_batch, z)[0]), which


def test_checkpoint_is_authors_format_and_weights_only(tiny_ckpt):
    raw = torch.load(tiny_ckpt, weights_only=True)
    assert set(NETWORK_KEYS) <= set(raw) and raw["iter"] == 100
    assert isinstance(raw["config"], dict) and raw["config"]["channel_divisor"] == 16
    cfg, nets, _ = load_networks(tiny_ckpt)
    assert set(nets) == set(NETWORK_KEYS) and cfg.size == 32


def test_config_inferred_when_not_stored(tmp_path, tiny_nets):
    # The authors' release carries no config: it is read off the weights' shapes.
    cfg, nets = tiny_nets
    path = tmp_path / "release_like.pt"
    ckpt = make_checkpoint(nets, cfg)
    del ckpt["config"]
    save_checkpoint(ckpt, path)
    assert load_generator(path).config == cfg
    bare = tmp_path / "bare_G.pt"       # a bare generator state dict works too
    save_checkpoint(nets["G_A2B_ema"].state_dict(), bare)
    assert load_generator(bare).config == cfg


def test_infer_released_config_from_shapes():
    with torch.device("meta"):
        state = Generator.from_config(RELEASED).state_dict()
        assert infer_config(state) == RELEASED
        state3 = Generator.from_config(ModelConfig(num_down=3)).state_dict()
        assert infer_config(state3) == ModelConfig(num_down=3)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_generator(tmp_path / "nope.pt")


def test_not_a_gnr_checkpoint_lists_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}, "epoch": 3}, path)
    with pytest.raises(CheckpointError, match=r"keys found \['epoch', 'model'\].*expected keys"):
        load_generator(path)


def test_wrong_shapes_name_parameter_and_matching_config(tmp_path):
    cfg3 = ModelConfig(size=64, num_down=3, n_mlp=2, channel_divisor=16)
    path = tmp_path / "nd3.pt"
    save_checkpoint({"G_A2B_ema": Generator.from_config(cfg3).state_dict()}, path)
    wrong = ModelConfig(size=64, num_down=2, n_mlp=2, channel_divisor=16)
    with pytest.raises(CheckpointError) as e:
        load_generator(path, config=wrong)
    msg = str(e.value)
    assert "G_A2B_ema" in msg and "num_down=3" in msg      # the config that would match
    cfg_wide = ModelConfig(size=64, num_down=3, n_mlp=2, channel_divisor=8)
    with pytest.raises(CheckpointError, match=r"parameter 'encoder\.stem\.0\.0\.weight' has shape "
                                              r"\(16, 3, 1, 1\), expected \(32, 3, 1, 1\)"):
        load_generator(path, config=cfg_wide)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"G_A2B_ema": {}, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_generator(path)


def test_truncated_file_is_a_clear_error(tmp_path, tiny_ckpt):
    data = tiny_ckpt.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="could not read"):
        read_checkpoint(cut)
    with pytest.raises(CheckpointError, match="folder"):
        read_checkpoint(tmp_path)


def test_unknown_which(tiny_ckpt):
    with pytest.raises(ValueError, match="which must be one of"):
        load_generator(tiny_ckpt, which="D_A")


def test_save_is_atomic_on_failure(tmp_path, tiny_ckpt):
    before = tiny_ckpt.read_bytes()
    with pytest.raises(Exception):
        save_checkpoint({"bad": lambda: 0}, tiny_ckpt)     # cannot be serialised mid-write
    assert tiny_ckpt.read_bytes() == before                   # the old file is untouched
    assert sorted(os.listdir(tiny_ckpt.parent)) == [tiny_ckpt.name]   # no temp file left
