"""One local Ray instance (2 CPUs) shared by the cluster tests, and the media they convert.

Ray's token authentication stays on, with a token kept in this process's environment (the
workers inherit it), so nothing is written into the home folder; no dashboard, no usage stats.
The token also tells this instance's worker processes apart from any other Ray on the machine."""
from __future__ import annotations

import math
import os
import secrets
from pathlib import Path

import av

import numpy as np
import pytest

from realtime.synthetic import face_scene, write_video

FPS = 25


@pytest.fixture(scope="session")
def ray_local():
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)                     # before Ray is imported: it reads them then
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        yield ray
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def drifting_face(n: int, speed: float = 0.5, width: int = 320,
                  height: int = 240) -> list[np.ndarray]:
    """The astronaut's head drifting right at ``speed`` px a frame, moved with sub-pixel
    accuracy (so the true motion is perfectly smooth)."""
    import cv2
    base = face_scene(width, height)
    return [cv2.warpAffine(base, np.float32([[1, 0, speed * (i - n / 2)], [0, 1, 0]]),
                           (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for i in range(n)]


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> Path:
    """Three short clips (0.8 s, with sound) and one long one (3 s, with sound, a keyframe every
    12 frames so segments really seek), in one folder."""
    folder = tmp_path_factory.mktemp("library")
    for k in range(3):
        frames = [face_scene(320, 240, dx=3 * i - 20 * k) for i in range(20)]
        write_video(folder / f"short{k}.mp4", frames, fps=FPS, audio_s=0.8)
    write_video(folder / "long.mp4", drifting_face(75), fps=FPS, audio_s=3.0, codec="mpeg4")
    return folder


@pytest.fixture(scope="session")
def drift_clip(tmp_path_factory) -> Path:
    """3.6 s of the head drifting smoothly, H.264 (few coding artefacts to jitter the landmarks)."""
    return write_video(tmp_path_factory.mktemp("drift") / "drift.mp4", drifting_face(90), fps=FPS)
