"""Tiny generators, their checkpoints and real aligned face crops, shared by the export and
engine tests (tests/engines/conftest.py re-uses these). The suite-wide one-thread setting is in
tests/conftest.py."""
import pytest

from export.verify import astronaut_crops
from tests.export.fixtures import SMALL, TINY, tiny_generator, write_checkpoint


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
