"""Attributes in the apps (issue 16): ``--edit hair=red`` through the composition root in
``realtime.convert`` (the demo model's attribute model loads by itself), ``--attributes`` for a
checkpoint (refused for another GNR checkpoint, accepted for a student of the right teacher),
``--edit-seed``, one line for an unknown attribute, ``python -m export onnx --edit``, and the
webcam's attribute keys."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime.compose import DEMO_CHECKPOINT, DEMO_ISF, DEMO_STUDENT, ModelOptions, open_model
from realtime.synthetic import synth_clip
from tests.training.test_isf_demo import _hair_hue, _hue_gap

pytestmark = pytest.mark.skipif(
    not (DEMO_ISF.is_file() and DEMO_ISF.stat().st_size > 10_000
         and DEMO_CHECKPOINT.stat().st_size > 10_000),
    reason="the demo model or its attribute model is not in this checkout (or is a Git LFS pointer)")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return synth_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 320, 240, 1, 6)


@pytest.fixture(autouse=True)
def _own_onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def isf():
    from training.isf import load_isf
    return load_isf(DEMO_ISF)


@pytest.fixture(scope="module")
def other_gnr(tmp_path_factory):
    """A GNR checkpoint of the demo model's shape that is not the demo model."""
    from training import build_networks, make_checkpoint, save_checkpoint
    from training.checkpoint import checkpoint_config, read_checkpoint
    cfg = checkpoint_config(read_checkpoint(DEMO_CHECKPOINT))
    torch.manual_seed(3)
    return save_checkpoint(make_checkpoint(build_networks(cfg), cfg, iter=0),
                           tmp_path_factory.mktemp("gnr") / "other.pt")


def _crops(path) -> np.ndarray:
    import av
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _convert(clip, out, *extra) -> tuple[int, str]:
    import contextlib
    import io
    from realtime.convert import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(clip), "-o", str(out), "--output-mode", "crop", "--style", "2", *extra])
    return code, err.getvalue()


def test_convert_with_edit_hair_blue_makes_the_hair_blue(clip, tmp_path, isf, capsys):
    from realtime.convert import main
    plain, blue = tmp_path / "plain.mp4", tmp_path / "blue.mp4"
    assert main([str(clip), "-o", str(plain), "--output-mode", "crop", "--style", "2"]) == 0
    assert main([str(clip), "-o", str(blue), "--output-mode", "crop", "--style", "2",
                 "--edit", "hair=blue"]) == 0
    err = capsys.readouterr().err
    assert "attributes demo_isf.pt (hair=blue)" in err      # --model demo brings its own
    hue_blue = np.median([_hair_hue(f) for f in _crops(blue)])
    hue_plain = np.median([_hair_hue(f) for f in _crops(plain)])
    assert _hue_gap(hue_blue, 225) < 40, hue_blue
    assert _hue_gap(hue_plain, 225) > 90, hue_plain        # seed 2 alone has red hair


def test_open_model_edits_the_chosen_style_and_the_seed_picks_another_look(isf):
    from training.style import StyleCode
    want = isf.edit(StyleCode.from_seed(2), {"hair": "blue", "blush": "yes"}, seed=0)
    for checkpoint in (DEMO_CHECKPOINT, DEMO_STUDENT):     # a student takes its teacher's ISF
        m = open_model(ModelOptions(checkpoint=checkpoint, attributes=DEMO_ISF, style_seed=2,
                                    device="cpu", backend="torch",
                                    edits=("hair=blue", "blush=yes")))
        assert np.allclose(m.engine.style.vector, want.vector, atol=1e-5)
        assert m.base_style.vector == StyleCode.from_seed(2).vector
        assert m.attributes.edits == {"hair": "blue", "blush": "yes"}
        m.engine.close()
    other = open_model(ModelOptions(checkpoint=DEMO_CHECKPOINT, attributes=DEMO_ISF, style_seed=2,
                                    device="cpu", backend="torch", edits=("hair=blue",),
                                    edit_seed=5))
    assert other.engine.style.vector != want.vector
    assert np.allclose(other.engine.style.vector,
                       isf.edit(StyleCode.from_seed(2), {"hair": "blue"}, seed=5).vector, atol=1e-5)


@pytest.mark.parametrize("extra, message", [
    (["--edit", "hair=plaid"], "hair"),                              # lists hair's values
    (["--edit", "eyes=red"], "hair_length"),                         # lists the attributes
    (["--edit", "hair"], "--edit must be ATTRIBUTE=VALUE"),
    (["--edit-seed", "-1", "--edit", "hair=red"], "--edit-seed"),
    (["--model", "identity", "--edit", "hair=red"], "identity model has no style"),
    (["--attributes", "nope.pt", "--edit", "hair=red"], "--attributes nope.pt: no such file"),
])
def test_bad_edits_are_one_line_exit_2_and_write_nothing(clip, tmp_path, extra, message):
    out = tmp_path / "out.mp4"
    code, err = _convert(clip, out, *extra)
    assert code == 2, err
    line = [x for x in err.splitlines() if "error" in x]
    assert len(line) == 1 and message in line[0] and "Traceback" not in err, err
    if "plaid" in extra[-1]:
        assert "red" in line[0] and "pink" in line[0]
    assert list(tmp_path.iterdir()) == []


def test_an_isf_for_another_checkpoint_is_refused(clip, tmp_path, other_gnr):
    code, err = _convert(clip, tmp_path / "o.mp4", "--checkpoint", str(other_gnr),
                         "--attributes", str(DEMO_ISF), "--edit", "hair=red")
    assert code == 2 and "trained for the GNR checkpoint demo_model.pt" in err and "other.pt" in err
    code, err = _convert(clip, tmp_path / "o.mp4", "--checkpoint", str(other_gnr),
                         "--edit", "hair=red")
    assert code == 2 and "--edit needs --attributes ISF.pt" in err
    assert list(tmp_path.iterdir()) == []


def test_export_onnx_bakes_the_edited_style(tmp_path, isf, other_gnr, capsys):
    from export.__main__ import main
    from export.onnx import read_info
    from training.style import StyleCode
    out = tmp_path / "red.onnx"
    assert main(["onnx", "--checkpoint", str(DEMO_CHECKPOINT), "--style", "4", "--attributes",
                 str(DEMO_ISF), "--edit", "hair=red", "--edit-seed", "1", "-o", str(out)]) == 0
    baked = read_info(out).style_code
    assert np.allclose(baked.vector, isf.edit(StyleCode.from_seed(4), {"hair": "red"}, seed=1).vector,
                       atol=1e-5)
    assert "hair=red" in baked.source
    for args, message in (
            (["--checkpoint", str(DEMO_CHECKPOINT), "--edit", "hair=red"], "--edit needs --attributes"),
            (["--checkpoint", str(DEMO_CHECKPOINT), "--attributes", str(DEMO_ISF), "--edit",
              "hair=plaid"], "--edit:"),
            (["--checkpoint", str(other_gnr), "--attributes", str(DEMO_ISF), "--edit", "hair=red"],
             "trained for the GNR checkpoint demo_model.pt"),
            (["--checkpoint", str(DEMO_CHECKPOINT), "--attributes", str(DEMO_ISF), "--edit",
              "hair=red", "--dynamic-style"], "--dynamic-style")):
        capsys.readouterr()
        assert main(["onnx", *args, "-o", str(tmp_path / "x.onnx")]) == 1     # export: 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "x.onnx").exists()


def test_webcam_keys_cycle_an_attribute_and_keep_edits_on_new_styles(isf, tmp_path):
    from realtime.attributes import Attributes
    from realtime.styles import StyleBank, StyleMixer
    from realtime.webcam import StyleKeys
    from training.style import StyleCode
    base = StyleCode.from_seed(1)
    mixer = StyleMixer(base.numpy())
    attrs = Attributes(isf)
    keys = StyleKeys(mixer, StyleBank(tmp_path / "bank.json"), attrs, base,
                     rng=np.random.default_rng(0))
    hair = isf.attributes["hair"]
    for value in hair:                                        # e steps through every hair colour
        assert keys.press(ord("e")) == f"attributes: hair={value}"
        assert np.allclose(mixer.target, isf.edit(base, {"hair": value}).numpy(), atol=1e-6)
    assert keys.press(ord("e")) == "attributes: no edits"      # after the last: none
    assert np.allclose(mixer.target, base.numpy())
    keys.press(ord("e"))                                       # hair=first colour again
    assert keys.press(ord("a")) == "e now cycles hair_length"
    keys.press(ord("e"))
    assert attrs.edits == {"hair": hair[0], "hair_length": isf.attributes["hair_length"][0]}
    keys.press(ord(" "))                                       # a new style keeps the edits
    assert np.allclose(mixer.target, isf.edit(keys.base, attrs.edits).numpy(), atol=1e-6)
    assert keys.press(ord("s")).startswith("saved the style as 1")
    keys.press(ord("1"))                                       # a saved style is taken as saved
    assert attrs.edits == {} and np.allclose(mixer.target, keys.base.numpy())
