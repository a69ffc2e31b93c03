"""StyleCode: seeds, .npy files, anime style images, validation."""
from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from training.style import StyleCode, StyleError
from tests.export.fixtures import perturbed_networks, TINY


def test_seed_is_the_authors_sampling_and_reproducible():
    s = StyleCode.from_seed(42)
    torch.manual_seed(42)
    assert s.vector == tuple(torch.randn(1, 8)[0].double().tolist())
    assert StyleCode.from_seed(42) == s and StyleCode.from_seed(43) != s
    assert s.source == "seed 42" and s.dim == 8
    assert s.tensor().shape == (1, 8) and s.tensor().dtype == torch.float32


@pytest.mark.parametrize("bad", [-1, 1.5, "7", True])
def test_bad_seeds(bad):
    with pytest.raises(StyleError, match="seed"):
        StyleCode.from_seed(bad)


def test_npy_round_trip(tmp_path):
    s = StyleCode.from_seed(3)
    p = s.save(tmp_path / "s.npy")
    back = StyleCode.from_file(p)
    np.testing.assert_allclose(back.numpy(), s.numpy())
    assert back.source == f"file {p}"
    np.save(tmp_path / "row.npy", s.numpy()[None])            # 1 x 8 is accepted too
    assert StyleCode.from_file(tmp_path / "row.npy").dim == 8


@pytest.mark.parametrize("arr,match", [
    (np.zeros(7), r"shape \(7,\)"),
    (np.zeros((2, 8)), r"shape \(2, 8\)"),
    (np.array([np.nan] + [0.0] * 7), "NaN"),
    (np.array(["a"] * 8), "real numbers"),
])
def test_bad_npy_files(tmp_path, arr, match):
    p = tmp_path / "bad.npy"
    np.save(p, arr)
    with pytest.raises(StyleError, match=match):
        StyleCode.from_file(p)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(StyleError, match="not found"):
        StyleCode.from_file(tmp_path / "none.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(StyleError, match="is not a .npy file"):
        StyleCode.from_file(tmp_path / "text.npy")
    (tmp_path / "cut.npy").write_bytes(b"\x93NUMPY\x01\x00")            # a .npy cut short
    with pytest.raises(StyleError, match="could not read"):
        StyleCode.from_file(tmp_path / "cut.npy")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(StyleError):                            # pickles are never loaded
        StyleCode.from_file(obj)


def _write_png(path, img):
    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "rgb24"
        for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def test_style_from_anime_image_uses_G_B2A_ema(tmp_path, astronaut, tiny_ckpt):
    img = np.ascontiguousarray(astronaut[100:300, 150:350])    # any picture stands in for anime
    png = tmp_path / "anime.png"
    _write_png(png, img)
    s = StyleCode.from_image(png, tiny_ckpt)
    assert s.dim == 8 and "anime.png" in s.source and "G_B2A_ema" in s.source
    G_B2A = perturbed_networks(TINY)["G_B2A_ema"]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", antialias=True,
                                        align_corners=False).clamp(-1, 1)
    with torch.no_grad():
        want = G_B2A.encode(x).style[0]
    np.testing.assert_allclose(s.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
    assert StyleCode.from_image(img, tiny_ckpt).vector == pytest.approx(s.vector, abs=1e-6)


def test_style_image_errors(tmp_path, tiny_ckpt):
    with pytest.raises(StyleError, match="not found"):
        StyleCode.from_image(tmp_path / "none.png", tiny_ckpt)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(StyleError, match="could not read"):
        StyleCode.from_image(tmp_path / "broken.png", tiny_ckpt)
    with pytest.raises(StyleError, match="uint8"):
        StyleCode.from_image(np.zeros((8, 8, 3), np.float32), tiny_ckpt)


def test_vector_validation():
    with pytest.raises(StyleError, match="NaN"):
        StyleCode((float("inf"),) * 8)
    with pytest.raises(StyleError, match="needs 8"):
        StyleCode.from_vector(np.zeros(5), dim=8)
    s = StyleCode.from_vector(torch.ones(1, 8), "test")
    assert s.vector == (1.0,) * 8 and StyleCode.from_dict(s.to_dict()) == s
