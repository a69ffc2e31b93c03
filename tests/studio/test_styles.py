"""Styles in the studio: the gallery renders on the live face without touching the live style,
a click and the sliders change the style the engine runs, the bank file is the webcam app's."""
from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import Qt

from realtime.styles import StyleBank
from realtime.compose import PASTE_MODES
from tests.studio.helpers import WAIT_MS, as_array


def engine_style(w) -> np.ndarray:
    """The style the engine itself holds now (what the live view's next batch runs with)."""
    return np.asarray(w.controller.shared.engine.style.vector, np.float32)


def test_gallery_renders_on_the_face_and_a_click_locks_that_style(studio, qtbot):
    w = studio()
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=WAIT_MS)
    start = w.controller.style.copy()
    qtbot.waitUntil(lambda: w.gallery.rendered == 12, timeout=WAIT_MS)
    icons = [b.icon().pixmap(64, 64).toImage() for b in w.gallery.buttons[:3]]
    assert icons[0] != icons[1] and icons[1] != icons[2]        # different styles, different looks
    # rendering the gallery (12 other styles through the shared engine) left the live style alone
    qtbot.waitUntil(lambda: np.allclose(engine_style(w), start, atol=1e-6), timeout=WAIT_MS)
    qtbot.mouseClick(w.gallery.buttons[5], Qt.MouseButton.LeftButton)
    target = w.gallery.styles[5]
    assert w.gallery.buttons[5].isChecked()
    assert np.allclose(w.sliders.vector(), np.round(target, 2), atol=0.006)
    qtbot.waitUntil(lambda: np.allclose(engine_style(w), target, atol=1e-5), timeout=WAIT_MS)
    # shuffle draws twelve new ones
    seeds = list(w.gallery.seeds)
    w.gallery.shuffle_button.click()
    assert w.gallery.seeds != seeds
    qtbot.waitUntil(lambda: w.gallery.rendered == 12, timeout=WAIT_MS)


def test_sliders_change_the_style_the_engine_runs(studio, qtbot):
    w = studio()
    qtbot.waitUntil(lambda: w.view.frames_shown >= 2, timeout=WAIT_MS)
    w.sliders.sliders[0].setValue(250)                  # what dragging does, value by value
    w.sliders.sliders[7].setValue(-175)
    z = w.controller.style
    assert z[0] == np.float32(2.5) and z[7] == np.float32(-1.75)
    assert w.sliders.values[0].text() == "+2.50"
    qtbot.waitUntil(lambda: np.allclose(engine_style(w)[[0, 7]], [2.5, -1.75], atol=1e-5),
                    timeout=WAIT_MS)


def test_style_bank_save_rename_delete_writes_the_shared_file(studio, qtbot, tmp_path):
    w = studio()
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=WAIT_MS)
    path = tmp_path / "styles.json"
    w.sliders.sliders[2].setValue(-120)
    assert w.bank_panel.save_current("freckles") == 1
    data = json.loads(path.read_text())
    assert data["styles"][0]["name"] == "freckles"
    assert np.allclose(data["styles"][0]["vector"], w.controller.style)
    assert StyleBank(path).names == ["freckles"]          # what the webcam app reads
    w.sliders.sliders[2].setValue(100)
    w.bank_panel.save_current("second")
    w.bank_panel.rename(0, "soft")
    assert StyleBank(path).names == ["soft", "second"]
    assert w.bank_panel.list.item(0).text() == "1  soft"
    w.bank_panel.apply(0)                                 # clicking a saved style uses it
    assert np.isclose(w.controller.style[2], -1.2) and np.isclose(w.sliders.vector()[2], -1.2)
    w.bank_panel.delete(0)
    assert StyleBank(path).names == ["second"] and w.bank_panel.list.count() == 1


def test_a_bank_that_cannot_be_written_is_one_message(studio, qtbot, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    w = studio(style_bank=blocker / "styles.json")
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=WAIT_MS)
    assert w.bank_panel.save_current("x") is None
    assert "style bank" in w.message.text() and "not_a_folder" in w.message.text()


def test_from_image_takes_the_style_of_a_picture(studio, qtbot, tmp_path, astronaut):
    from PIL import Image
    from training.style import StyleCode
    from realtime.compose import DEMO_CHECKPOINT

    picture = tmp_path / "anime.png"
    Image.fromarray(astronaut[0:256, 128:384]).save(picture)
    w = studio()
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=WAIT_MS)
    assert w.sliders.image_button.isEnabled()
    w.sliders.from_image(picture)
    expected = StyleCode.from_image(picture, DEMO_CHECKPOINT).numpy()
    qtbot.waitUntil(lambda: np.allclose(w.controller.style, expected, atol=1e-6), timeout=WAIT_MS)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    w.sliders.from_image(bad)
    qtbot.waitUntil(lambda: "bad.png" in w.message.text(), timeout=WAIT_MS)


class TinyAttributes:
    """The attribute-model API the panel is written against (``attributes``, ``edit``): adds
    one fixed offset per chosen value, so the result is known exactly."""

    attributes = {"hair": ["red", "black"], "smile": [0, 1]}

    def edit(self, z, wanted, seed):
        out = np.asarray(z, np.float32).copy()
        out[0] += {"red": 1.0, "black": -1.0}.get(wanted.get("hair"), 0.0)
        out[1] += float(wanted.get("smile", 0)) + seed * 0.0
        return out


def test_attribute_panel_appears_with_a_model_and_edits_the_style(studio, qtbot):
    w = studio()
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=WAIT_MS)
    from realtime.compose import DEMO_ISF
    if DEMO_ISF.is_file():                 # the demo model comes with its attribute model
        assert not w.attributes.isHidden()
        assert {"hair", "hair_length", "blush", "ribbon"} <= set(w.attributes.combos)
        assert "red" in [w.attributes.combos["hair"].itemData(i)
                         for i in range(w.attributes.combos["hair"].count())]
    w.attributes.set_model(TinyAttributes())
    assert not w.attributes.isHidden() and set(w.attributes.combos) == {"hair", "smile"}
    z0 = w.controller.style.copy()
    w.attributes.combos["hair"].setCurrentIndex(1)          # "red"
    qtbot.waitUntil(lambda: np.isclose(w.controller.style[0], z0[0] + 1.0), timeout=WAIT_MS)
    w.attributes.combos["hair"].setCurrentIndex(2)          # "black": made to the same base
    qtbot.waitUntil(lambda: np.isclose(w.controller.style[0], z0[0] - 1.0), timeout=WAIT_MS)
    w.attributes.combos["hair"].setCurrentIndex(0)          # unchanged: the style as it was
    qtbot.waitUntil(lambda: np.allclose(w.controller.style, z0), timeout=WAIT_MS)
    w.attributes.set_model(None)
    assert w.attributes.isHidden()


def test_the_paste_mode_changes_what_the_live_view_replaces(studio, qtbot):
    w = studio()
    qtbot.waitUntil(lambda: w.view.frames_shown >= 3, timeout=WAIT_MS)
    changed = {}
    for mode in ("face", "box"):
        w.look.paste.setCurrentIndex(PASTE_MODES.index(mode))
        assert w.controller.faces.paste == mode
        n = w.view.frames_shown
        qtbot.waitUntil(lambda: w.view.frames_shown >= n + 4, timeout=WAIT_MS)
        diff = np.abs(as_array(w.view.before).astype(int) - as_array(w.view.after).astype(int))
        changed[mode] = (diff.sum(-1) > 30).mean()
    assert changed["box"] > 1.3 * changed["face"] > 0     # the whole crop, not the inner face


def test_edits_from_the_command_line_show_in_the_panel_and_start_from_the_unedited_style(studio, qtbot):
    from realtime.compose import DEMO_ISF, ModelOptions
    from training.isf import load_isf
    from training.style import StyleCode
    if not DEMO_ISF.is_file():
        import pytest
        pytest.skip("the demo attribute model is not in this checkout")
    isf = load_isf(DEMO_ISF)
    w = studio(model=ModelOptions(model="demo", dynamic_style=True, style_seed=2,
                                  edits=("hair=green",), edit_seed=1))
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=WAIT_MS)
    base = StyleCode.from_seed(2)
    assert np.allclose(engine_style(w), isf.edit(base, {"hair": "green"}, seed=1).numpy(), atol=1e-5)
    assert w.attributes.combos["hair"].currentData() == "green" and w.attributes.seed.value() == 1
    w.attributes.combos["hair"].setCurrentIndex(0)          # unchanged: seed 2 as it was
    qtbot.waitUntil(lambda: np.allclose(w.controller.style, base.numpy(), atol=1e-6), timeout=WAIT_MS)
