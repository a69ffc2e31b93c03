"""The model's home holds the pieces every layer shares: file writes, pixels, images, devices."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from training.device import DeviceError, parse_device, resolve_device
from training.fileio import temp_beside, write_bytes_atomic
from training.images import ImageReadError, read_image_rgb
from training.pixels import batch_to_images, image_to_batch, to_pixels, to_unit


def test_temp_files_get_an_explicit_mode_without_touching_the_umask(tmp_path, monkeypatch):
    calls = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real(m))
    tmp = temp_beside(tmp_path / "out.mp4", suffix=".part.mp4")
    assert tmp.name.startswith(".out.mp4.") and tmp.name.endswith(".part.mp4")
    assert tmp.stat().st_mode & 0o777 == 0o644
    assert calls == []          # another thread creating files meanwhile keeps its umask


def test_atomic_writes_from_many_threads_all_land(tmp_path):
    def write(i):
        write_bytes_atomic(tmp_path / f"f{i}.bin", bytes([i]) * 100)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"f{i}.bin" for i in range(16))
    assert all((tmp_path / f"f{i}.bin").read_bytes() == bytes([i]) * 100 for i in range(16))


def test_pixel_round_trip_is_exact_and_clamped(astronaut):
    x = image_to_batch(astronaut)
    assert x.shape == (1, 3, 512, 512) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert np.array_equal(batch_to_images(x)[0], astronaut)
    assert to_pixels(torch.tensor([-3.0, -1.0, 0.0, 1.0, 7.0])).tolist() == [0, 0, 128, 255, 255]
    assert torch.equal(to_unit(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([-1.0, 1.0]))


def test_one_image_reader_handles_alpha_exif_and_bad_files(tmp_path):
    from PIL import Image
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 255                      # red, fully transparent: composited over mid-grey
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert (read_image_rgb(tmp_path / "a.png") == 128).all()
    im = Image.fromarray(np.zeros((4, 6, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6                        # "rotate 90 CW to display"
    im.save(tmp_path / "r.jpg", exif=exif)
    assert read_image_rgb(tmp_path / "r.jpg").shape == (6, 4, 3)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG nope")
    with pytest.raises(ImageReadError, match="could not read"):
        read_image_rgb(tmp_path / "bad.png")
    with pytest.raises(ImageReadError, match="not found"):
        read_image_rgb(tmp_path / "none.png")


@pytest.mark.parametrize("text,want", [("CPU", "cpu"), ("cuda", "cuda"), (" cuda:1 ", "cuda:1"),
                                       ("auto", "auto")])
def test_device_spelling(text, want):
    assert parse_device(text) == want


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "mps", ""])
def test_bad_device_names_the_accepted_forms(bad):
    with pytest.raises(DeviceError, match="cpu, cuda, cuda:N or auto"):
        parse_device(bad)


def test_resolve_device_on_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda:0")
