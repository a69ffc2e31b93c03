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


# ---------------------------------------------------------------------------------------------
# Files that are not checkpoints at all (issue 13, defects 2 and 3): one line saying what they
# are, for the generator, the LPIPS and Inception weights, and the exporter's --checkpoint
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def not_checkpoints(tmp_path_factory):
    from tests.pipeline.media import not_checkpoints as make
    return make(tmp_path_factory.mktemp("bad"))


WHAT = {"empty": "the file is empty", "text": "a text file", "json": "a JSON file",
        "png": "a PNG image", "mp4": "an MP4/MOV video", "random": "binary data of an unknown kind"}


@pytest.mark.parametrize("kind", sorted(WHAT))
def test_a_file_that_is_not_a_checkpoint_says_what_it_is(not_checkpoints, kind):
    path = not_checkpoints[kind]
    with pytest.raises(CheckpointError) as e:
        load_generator(path)
    msg = str(e.value)
    assert msg == f"{path} is not a PyTorch checkpoint: it looks like " + (
        "nothing: the file is empty (0 bytes)" if kind == "empty" else WHAT[kind])
    assert "pickled" not in msg and "\x1b" not in msg


def test_a_checkpoint_holding_a_custom_object_is_still_refused_as_code(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"G_A2B_ema": {"w": torch.zeros(2)}, "trainer": _Trainer()}, path)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    msg = str(e.value)
    assert "pickled Python objects" in msg and "_Trainer" in msg and "arbitrary code" in msg
    assert "\x1b" not in msg and "\n" not in msg


class _Trainer:
    """A custom class a careless script might pickle into a checkpoint."""


def test_lpips_and_inception_weights_that_are_not_weights(not_checkpoints, tmp_path):
    from training.evaluate import InceptionV3Features, InceptionWeightsError
    from training.lpips import LPIPS, LPIPSWeightsError
    for kind in ("empty", "text", "png"):
        with pytest.raises(LPIPSWeightsError, match="is not a PyTorch VGG16 weights file"):
            LPIPS.from_files(not_checkpoints[kind], not_checkpoints[kind])
        with pytest.raises(InceptionWeightsError, match="is not a PyTorch Inception-v3 weights"):
            InceptionV3Features.from_file(not_checkpoints[kind])


@pytest.mark.parametrize("kind", ["empty", "text", "png", "mp4", "json", "random"])
def test_export_cli_names_a_bad_checkpoint_in_one_line(not_checkpoints, tmp_path, capsys, kind):
    from export.__main__ import main
    out = tmp_path / "model.onnx"
    assert main(["onnx", "--checkpoint", str(not_checkpoints[kind]), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a PyTorch checkpoint" in err
    assert not out.exists()


def test_export_cli_description_is_plain_text(capsys):
    from export.__main__ import build_parser
    text = build_parser().format_help()
    assert "``" not in text and "Export a GNR generator" in text
