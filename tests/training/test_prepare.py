"""Data preparation on a folder of good, grayscale, faceless, tiny-face, broken and non-image files."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mediapipe")


@pytest.fixture
def raw_folder(tmp_path, astronaut):
    from PIL import Image
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(raw / "good.jpg", quality=92)
    Image.fromarray(astronaut).convert("L").save(raw / "sub" / "gray.png")
    Image.fromarray(astronaut).convert("RGBA").save(raw / "sub" / "rgba.png")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((200, 300, 3)) * 255).astype(np.uint8)).save(raw / "noise.png")
    (raw / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (raw / "notes.txt").write_text("not an image")
    return raw


def test_prepare_writes_aligned_faces_and_reports_the_rest(raw_folder, tmp_path, capsys):
    from PIL import Image

    from training.prepare import main
    out = tmp_path / "out"
    assert main([str(raw_folder), str(out), "--size", "64"]) == 0
    rep = json.loads((out / "prepare_report.json").read_text())
    assert sorted(rep["written"]) == ["good.png", "sub/gray.png", "sub/rgba.png"]
    assert rep["no_face"] == ["noise.png"]
    assert [u["file"] for u in rep["unreadable"]] == ["broken.jpg"]
    assert rep["not_images"] == ["notes.txt"]
    for name in rep["written"]:
        im = np.asarray(Image.open(out / name))
        assert im.shape == (64, 64, 3)
    printed = capsys.readouterr().out
    assert "3 aligned faces written" in printed and "1 unreadable" in printed


def test_prepare_crop_matches_the_live_aligner_template(astronaut):
    """The crop puts the eyes where the live pipeline's template does."""
    from realtime.faces import CropTemplate
    from realtime.faces.align import keypoints_from_landmarks
    from training.prepare import FacePreparer
    prep = FacePreparer(size=128, min_face=10)
    try:
        crops, why, _ = prep.faces(astronaut)
        assert why is None and len(crops) == 1
        # the mesh run on the crop itself finds the eyes at the template's eye points
        from realtime.faces.detect import SquareRegion
        big = np.ascontiguousarray(np.kron(crops[0], np.ones((4, 4, 1), np.uint8)))   # 512 px
        lm = prep.mesh.landmarks(big, SquareRegion(255.5, 255.5, 512.0))
        assert lm is not None
        eyes = keypoints_from_landmarks((lm + 0.5) / 4 - 0.5)[:2]
        want = CropTemplate.default(128).points_array()[:2]
        assert np.abs(eyes - want).max() < 4.0          # pixels of the 128 crop
    finally:
        prep.close()


def test_prepare_too_small_and_missing_folder(raw_folder, tmp_path, capsys):
    from training.prepare import main
    out = tmp_path / "out2"
    assert main([str(raw_folder), str(out), "--size", "64", "--min-face", "5000"]) == 1   # nothing written
    rep = json.loads((out / "prepare_report.json").read_text())
    assert {t["file"] for t in rep["too_small"]} == {"good.jpg", "sub/gray.png", "sub/rgba.png"}
    assert main([str(tmp_path / "nope"), str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
