import pytest
import torch

from export.verify import astronaut_crops
from tests.export.fixtures import SMALL, TINY, tiny_generator, write_checkpoint


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """Tiny models on one thread: PyTorch's thread pool gains nothing on 32x32 tensors, and on a
    shared 2-core machine a busy core stalls every parallel region (measured here: this package
    took 117 s with 2 threads while another job ran, 8 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_G():
    return tiny_generator(TINY)


@pytest.fixture(scope="session")
def small_G():
    return tiny_generator(SMALL, seed=3)


@pytest.fixture(scope="session")
def faces32():
    """Four aligned crops of a real face (the astronaut): aligned, mirrored, two jittered."""
    return astronaut_crops(32, n=4)


@pytest.fixture(scope="session")
def faces64():
    return astronaut_crops(64, n=3)


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", TINY)
