"""Fixtures shared by every test package: a real face photo and tiny model configs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread for the whole suite: deterministic, and on a loaded 2-core machine
    PyTorch's thread pool beside MediaPipe and onnxruntime is many times slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real, public-domain face photo (scikit-image ships it): 512 x 512 RGB uint8."""
    from skimage import data
    return data.astronaut()


def image_to_tensor(img: np.ndarray, size: int) -> torch.Tensor:
    """uint8 H x W x 3 -> 1 x 3 x size x size float in [-1, 1] (antialiased resize)."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 127.5 - 1
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                           antialias=True, align_corners=False)


@pytest.fixture(scope="session")
def face_batch(astronaut) -> torch.Tensor:
    """The astronaut's face (a rough square crop), at 32 x 32, and its mirror image: 2 x 3 x 32 x 32."""
    x = image_to_tensor(astronaut[0:256, 128:384], 32)
    return torch.cat([x, x.flip(-1)])


@pytest.fixture
def tiny_config():
    from training.config import ModelConfig
    return ModelConfig(size=32, num_down=2, latent_dim=8, n_mlp=2, n_res=1, channel_divisor=16)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 nothing listens on now."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def watch_stream(url: str, frames: int = 5):
    """Start watching an MPEG-TS stream at ``url`` in a thread, as a viewer would; returns the
    thread and the list it fills with (width, height) of the first ``frames`` frames decoded."""
    import threading

    import av
    received: list[tuple[int, int]] = []

    def client():
        try:
            c = av.open(url + "?timeout=8000000", format="mpegts", timeout=8)
            for f in c.decode(video=0):
                received.append((f.width, f.height))
                if len(received) >= frames:
                    break
            c.close()
        except av.error.FFmpegError:
            pass

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
    return reader, received
