"""The engine tests use the same tiny models and face crops as the export tests."""
from tests.export.conftest import faces32, faces64, small_G, tiny_G, tiny_ckpt  # noqa: F401
