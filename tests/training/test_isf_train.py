"""The ISF on a tiny GNR and made-up labelled images: training writes the run directory, resuming
is exact, every loss term runs, the shipped file loads with weights_only and edits through the
Python API (errors included), evaluation writes its JSON, the grid its picture."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.isf.__main__ import main

from ._train_fixtures import lpips_files  # noqa: F401

TINY = ["--batch", "2", "--d-warmup", "2", "--hidden", "16", "--noise-dim", "4", "--d-width", "4", "--max-faces", "4",
        "--holdout", "0.5", "--log-every", "1", "--sample-every", "2", "--checkpoint-every", "2"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny GNR checkpoint (and a second one), 16 anime drawings with made-up labels, 4 faces."""
    from PIL import Image
    from skimage import data

    from training import build_networks, make_checkpoint, save_checkpoint
    from training.config import ModelConfig
    from training.demo_data import AnimeStyle, render_anime
    root = tmp_path_factory.mktemp("isf")
    cfg = ModelConfig(size=32, num_down=2, latent_dim=8, n_mlp=2, n_res=1, channel_divisor=16)
    paths = {}
    for name, seed in (("gnr", 0), ("other", 1)):
        torch.manual_seed(seed)
        paths[name] = save_checkpoint(make_checkpoint(build_networks(cfg), cfg, iter=0), root / f"{name}.pt")
    (root / "anime").mkdir()
    rng = np.random.default_rng(0)
    lines = ["file,hair_length,blush"]
    for i in range(16):
        img = render_anime(AnimeStyle.sample(rng), 32, supersample=1, seed=i)
        Image.fromarray(img).save(root / "anime" / f"{i:02d}.png")
        lines.append(f"{i:02d}.png,{'long' if i % 2 else 'short'},{'yes' if (i // 2) % 2 else 'no'}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    (root / "faces").mkdir()
    photo = data.astronaut()
    for i in range(4):
        Image.fromarray(photo[8 * i:256 + 8 * i, 128:384]).resize((32, 32)).save(root / "faces" / f"f{i}.png")
    paths.update(root=root, anime=root / "anime", labels=root / "labels.csv", faces=root / "faces")
    return paths


def _args(inputs, run, *extra):
    return ["--checkpoint", str(inputs["gnr"]), "--data-b", str(inputs["anime"]), "--labels",
            str(inputs["labels"]), "--data-a", str(inputs["faces"]), "--run-dir", str(run), *TINY, *extra]


@pytest.fixture(scope="module")
def run(inputs):
    run = inputs["root"] / "run"
    assert main(_args(inputs, run, "--iters", "4")) == 0
    return run


def test_training_writes_the_run_directory(run, inputs):
    from training.fileio import sha256_file
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["net"]["attr_dim"] == (2 + 1) + (2 + 1) and cfg["net"]["style_dim"] == 8
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"D_adv", "D_cls", "G_adv", "G_cls", "G_l2", "G_latent", "G_cycle", "G_ds", "G_acc_edit"} <= set(rows[-1])
    assert all(np.isfinite(v) for r in rows for v in r.values())
    assert (run / "train.log").is_file() and any((run / "tensorboard").iterdir())
    from PIL import Image
    for step in (0, 2, 4):
        grid = Image.open(run / "samples" / f"{step:06d}.png")
        assert grid.size == ((1 + 4) * 32, 4 * 32)          # unedited + 4 values; 4 faces
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["000002.pt", "000004.pt"]
    ck = torch.load(run / "checkpoints" / "000004.pt", weights_only=True)
    assert ck["iter"] == 4 and {"isf", "isf_ema", "D", "isf_optim", "D_optim", "rng"} <= set(ck)
    assert ck["gnr"]["sha256"] == sha256_file(inputs["gnr"])
    assert ck["attributes"] == {"hair_length": ["long", "short"], "blush": ["no", "yes"]}
    assert not torch.equal(ck["isf"]["mlp2.6.weight"], torch.zeros_like(ck["isf"]["mlp2.6.weight"]))


def test_resume_continues_exactly(inputs, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(_args(inputs, straight, "--iters", "4")) == 0
    assert main(_args(inputs, split, "--iters", "2")) == 0
    assert main(["--resume", str(split), "--iters", "4"]) == 0
    a = torch.load(straight / "checkpoints" / "000004.pt", weights_only=True)
    b = torch.load(split / "checkpoints" / "000004.pt", weights_only=True)
    for key in ("isf", "isf_ema", "D"):
        for k in a[key]:
            assert torch.allclose(a[key][k], b[key][k], atol=1e-6), (key, k)
    steps = [json.loads(x)["step"] for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_resume_refuses_another_recipe_and_a_used_run_dir(inputs, run, capsys):
    assert main(["--resume", str(run), "--lr", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--lr is 0.1 here but 0.001" in err and "\n" not in err
    assert main(_args(inputs, run, "--iters", "1")) == 2
    assert "already holds checkpoints" in capsys.readouterr().err


def test_every_loss_term_runs_and_content_can_come_from_anime(inputs, tmp_path, lpips_files):
    vgg, lin = lpips_files
    args = [a for a in _args(inputs, tmp_path / "r", "--iters", "2") if a not in ("--data-a", str(inputs["faces"]))]
    assert main([*args, "--cycle-image", "1", "--lpips-weights", str(vgg), "--lpips-lin", str(lin),
                 "--d-size", "16"]) == 0
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["G_perceptual"] > 0 and row["G_cycle_image"] > 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["lpips"] is True and cfg["data_a"] == [] and cfg["d_size"] == 16
    D = torch.load(tmp_path / "r" / "checkpoints" / "000002.pt", weights_only=True)["D"]
    assert len([k for k in D if k.startswith("blocks.") and k.endswith("conv1.weight")]) == 2  # 16 -> 4


def test_bad_input_is_one_line_and_exit_2(inputs, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,hair\n00.png,red\n")
    args = _args(inputs, tmp_path / "r", "--iters", "1")
    args[args.index("--labels") + 1] = str(bad)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no 'file' column" in err and "\n" not in err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# the Python API
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped(run, inputs):
    out = inputs["root"] / "isf.pt"
    assert main(["ship", str(run), "-o", str(out)]) == 0
    return out


def test_shipped_file_is_plain_data_with_config_vocabulary_and_gnr_hash(shipped, inputs):
    from training.fileio import sha256_file
    raw = torch.load(shipped, weights_only=True)
    assert set(raw) >= {"kind", "isf", "net", "attributes", "gnr", "config"}
    assert "D" not in raw and "isf_optim" not in raw
    assert raw["gnr"]["sha256"] == sha256_file(inputs["gnr"])
    assert raw["config"]["ds"] == 0.2 and raw["net"]["space"] == "latent"


def test_edit_returns_the_same_kind(shipped, inputs):
    from training.isf import load_isf
    from training.style import StyleCode
    isf = load_isf(shipped, checkpoint=inputs["gnr"])
    assert isf.attributes == {"hair_length": ("long", "short"), "blush": ("no", "yes")}
    z = StyleCode.from_seed(3)
    z2 = isf.edit(z, {"blush": "yes"}, seed=0)
    assert isinstance(z2, StyleCode) and z2.dim == 8 and "edited blush=yes (seed 0)" in z2.source
    assert z2.vector != z.vector
    assert isf.edit(z, "blush=yes", seed=0) == z2                      # string form, deterministic
    assert isf.edit(z, {"blush": "yes"}, seed=1).vector != z2.vector   # another seed, another result
    assert isf.edit(z, {}, seed=0) is z                                # nothing asked: unchanged
    vec = list(z.vector)
    as_list = isf.edit(vec, {"blush": "yes"})
    assert isinstance(as_list, list) and np.allclose(as_list, z2.vector, atol=1e-6)
    as_tuple = isf.edit(tuple(vec), {"blush": "yes"})
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 8
    arr = isf.edit(np.asarray(vec, np.float32), {"blush": "yes"})
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (8,)
    t = isf.edit(torch.tensor([vec, vec]), {"blush": "yes"})
    assert isinstance(t, torch.Tensor) and t.shape == (2, 8) and torch.allclose(t[0], t[1])
    assert np.allclose(t[0].numpy(), z2.vector, atol=1e-6)


def test_edit_errors_are_one_line(shipped, inputs):
    from training.isf import EditError, ISFError, ISFMismatchError, load_isf
    isf = load_isf(shipped)
    with pytest.raises(EditError) as e:
        isf.parse(["hair=red"])
    assert "known attributes: hair_length (long, short); blush (no, yes)" in str(e.value)
    with pytest.raises(EditError, match="known values: no, yes"):
        isf.edit([0.0] * 8, {"blush": "maybe"})
    with pytest.raises(EditError, match="a style is 8"):
        isf.edit([0.0] * 7, {"blush": "yes"})
    with pytest.raises(EditError, match="edit seed"):
        isf.edit([0.0] * 8, {"blush": "yes"}, seed=-1)
    with pytest.raises(ISFMismatchError) as e:
        load_isf(shipped, checkpoint=inputs["other"])
    assert "was trained for the GNR checkpoint gnr.pt" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ISFError, match="not an ISF file"):
        load_isf(inputs["gnr"])
    with pytest.raises(FileNotFoundError, match="ISF file not found"):
        load_isf(inputs["root"] / "missing.pt")
    # a training checkpoint loads too (its EMA weights), and edits the same as the shipped file
    run_isf = load_isf(inputs["root"] / "run" / "checkpoints" / "000004.pt")
    assert run_isf.edit([0.5] * 8, "blush=no") == isf.edit([0.5] * 8, "blush=no")


def test_a_mapped_space_isf_edits_512_d_codes(inputs, tmp_path):
    from training.isf import ISFError, load_isf
    run = tmp_path / "mapped"
    assert main(_args(inputs, run, "--iters", "2", "--space", "mapped")) == 0
    assert main(["ship", str(run), "-o", str(tmp_path / "m.pt")]) == 0
    isf = load_isf(tmp_path / "m.pt")
    assert isf.space == "mapped" and isf.style_dim == 512
    assert isf.edit_codes(torch.randn(3, 512), {"blush": "yes"}).shape == (3, 512)
    with pytest.raises(ISFError, match="512-d mapped style"):
        isf.edit([0.0] * 8, {"blush": "yes"})


# ---------------------------------------------------------------------------------------------
# evaluation and the grid
# ---------------------------------------------------------------------------------------------
def test_evaluate_writes_per_attribute_json(shipped, inputs, tmp_path):
    clf = tmp_path / "clf.pt"
    assert main(["classifier", "--data-b", str(inputs["anime"]), "--labels", str(inputs["labels"]),
                 "-o", str(clf), "--size", "32", "--iters", "3", "--batch", "4"]) == 0
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--isf", str(shipped), "--checkpoint", str(inputs["gnr"]), "--classifier",
                 str(clf), "--data-a", str(inputs["faces"]), "--n-styles", "5", "-o", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["n_styles"] == 5 and res["isf_space"] == "latent"
    assert res["classifier_summary"]["split"] == "holdout"
    assert set(res["classifier_summary"]["val_accuracy"]) == {"hair_length", "blush"}
    assert {"face_l1", "l1", "feature", "content_ratio"} <= set(res["reference_random_restyle"])
    assert set(res["attributes"]) == {"hair_length", "blush"}
    for name, r in res["attributes"].items():
        assert {"accuracy", "baseline", "lift", "kept", "face_l1", "content_ratio", "diversity_l1",
                "diversity_feature", "random_styles_change_it", "per_value"} <= set(r)
        assert [v["value"] for v in r["per_value"]] == list({"hair_length": ["long", "short"],
                                                               "blush": ["no", "yes"]}[name])
        for v in r["per_value"]:
            assert 0 <= v["accuracy"] <= 1 and 0 <= v["kept"] <= 1 and v["diversity_l1"] >= 0
            assert set(v["kept_per_attribute"]) == {"hair_length", "blush"} - {name}
    # the classifier is refused where its attributes differ from the ISF's
    other = tmp_path / "other.csv"
    other.write_text(inputs["labels"].read_text().replace("hair_length", "length"))
    assert main(["classifier", "--data-b", str(inputs["anime"]), "--labels", str(other), "-o",
                 str(tmp_path / "c2.pt"), "--size", "32", "--iters", "1", "--batch", "2"]) == 0
    assert main(["evaluate", "--isf", str(shipped), "--checkpoint", str(inputs["gnr"]), "--classifier",
                 str(tmp_path / "c2.pt"), "--data-a", str(inputs["faces"]), "--n-styles", "2"]) == 2
    # a classifier that knows more attributes than the ISF edits judges the ISF's ones
    wider = tmp_path / "wider.csv"
    rows = inputs["labels"].read_text().splitlines()
    wider.write_text("\n".join([rows[0] + ",ribbon"] + [r + (",yes" if i % 3 else ",no")
                                                         for i, r in enumerate(rows[1:])]) + "\n")
    assert main(["classifier", "--data-b", str(inputs["anime"]), "--labels", str(wider), "-o",
                 str(tmp_path / "c3.pt"), "--size", "32", "--iters", "1", "--batch", "2"]) == 0
    assert main(["evaluate", "--isf", str(shipped), "--checkpoint", str(inputs["gnr"]), "--classifier",
                 str(tmp_path / "c3.pt"), "--data-a", str(inputs["faces"]), "--n-styles", "2",
                 "-o", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["attributes"]) == {"hair_length", "blush"}
    assert set(res["classifier_summary"]["val_accuracy"]) == {"hair_length", "blush", "ribbon"}


def test_grid_has_a_row_per_style_and_a_column_per_edit(shipped, inputs, tmp_path):
    from PIL import Image
    out = tmp_path / "grid.png"
    assert main(["grid", "--isf", str(shipped), "--checkpoint", str(inputs["gnr"]), "--data-a",
                 str(inputs["faces"]), "-o", str(out), "--rows", "3", "--edit", "blush=yes",
                 "--edit", "blush=no,hair_length=long", "--scale", "1"]) == 0
    w, h = Image.open(out).size
    assert w == 3 * 32 and h > 3 * 32
    assert main(["grid", "--isf", str(shipped), "--checkpoint", str(inputs["other"]), "--data-a",
                 str(inputs["faces"]), "-o", str(tmp_path / "g2.png")]) == 2
