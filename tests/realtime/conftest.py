"""Shared fixtures for the face-stage tests: a real face photo and its MediaPipe ground truth.

All media is made in code from ``skimage.data.astronaut()`` (public domain); nothing is
downloaded. The clip synthesis and the metrics live in ``benchmarks/faces.py`` so that the
benchmark's report and these tests measure the same thing.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def ref():
    """PhotoReference: the photo, its landmarks and its template crop."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("skimage")
    from benchmarks.faces import photo_reference

    return photo_reference()


@pytest.fixture(scope="session")
def still_clip(ref):
    """30 frames, 640×480, face still (≈94 px wide), Gaussian sensor noise σ=3."""
    from benchmarks.faces import photo_to_frame, synth_clip

    m = photo_to_frame(ref, 1.0, 0.0, (320, 240))
    return m, synth_clip(ref, [m] * 30, (480, 640), sigma=3.0, seed=7)


@pytest.fixture(scope="session")
def two_faces(ref):
    """Two copies of the face side by side in a 360×640 frame (20 frames, still, σ=3)."""
    from benchmarks.faces import photo_to_frame, synth_clip

    ms = [photo_to_frame(ref, 1.0, 0.0, (170, 180)), photo_to_frame(ref, 0.9, 8.0, (470, 185))]
    return ms, synth_clip(ref, [ms] * 20, (360, 640), sigma=3.0, seed=8, patch_half_px=1.1 * ref.face_px)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The face stage's tensor ops are small; on a 2-core machine with MediaPipe's own threads
    running beside them, torch's intra-op pool spins and makes them 5-10x slower. Run these
    tests single-threaded (restored afterwards, so other test packages are unaffected)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
