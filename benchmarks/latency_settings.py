"""What a latency run measures: the :class:`Settings` that ``python -m benchmarks.latency``
builds from its command line and every section reads (written into the JSON as ``settings``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .common import is_cuda
from .latency_schema import MODES

RESOLUTIONS = {"640x480": (640, 480), "1280x720": (1280, 720), "1920x1080": (1920, 1080)}
SECTIONS = ("engine", "pipeline")
CONFIG_NAMES = ("released", "demo")
PIPELINE_MODELS = ("auto", "released", "demo", "identity")


class BenchmarkError(RuntimeError):
    """A benchmark that cannot run as asked (the message says what to change)."""


@dataclass
class Settings:
    """Every choice of a run, resolved (``python -m benchmarks.latency --help`` says what each
    flag means); ``None`` for ``reps``, ``warmup`` and ``max_seconds`` means the defaults of
    :meth:`reps_for`, :meth:`warmup_for` and :meth:`max_seconds_for`."""

    out: Path = Path("results")
    quick: bool = False
    sections: tuple[str, ...] = SECTIONS
    device: str = "cpu"                       # resolved: cpu | cuda
    threads: int = 1
    configs: tuple[str, ...] = CONFIG_NAMES
    batches: tuple[int, ...] = (1, 2, 4, 8)
    max_gpu_batch: int = 256
    backends: tuple[str, ...] = ()            # substrings; empty = all
    reps: int | None = None                   # None: per config/device defaults
    warmup: int | None = None
    max_seconds: float | None = None
    authors_blur: bool = True
    int8: bool = True
    cpu_on_gpu: bool = True
    pipeline_model: str = "auto"              # one of PIPELINE_MODELS
    resolutions: tuple[str, ...] = tuple(RESOLUTIONS)
    faces: tuple[int, ...] = (1, 4)
    modes: tuple[str, ...] = MODES
    frames: int = 90
    warmup_frames: int = 10
    live_fps: float = 30.0
    batch_frames: int = 4
    parallel_files: int = 0
    plots: bool = True

    def reps_for(self, config: str, device: str) -> int:
        if self.reps is not None:
            return self.reps
        if is_cuda(device):
            return 100
        if self.quick:
            return 3
        return 5 if config == "released" else 20

    def warmup_for(self, device: str) -> int:
        if self.warmup is not None:
            return self.warmup
        return 3 if is_cuda(device) else 1

    def max_seconds_for(self, config: str, device: str) -> float:
        if self.max_seconds is not None:
            return self.max_seconds
        if self.quick:
            return 5.0
        if is_cuda(device):
            return 15.0
        return 90.0 if config == "released" else 20.0

    def pipeline_config(self) -> str:
        """The model the pipeline section runs: ``auto`` is the released model on CUDA and the
        demo model on the CPU."""
        if self.pipeline_model == "auto":
            return "released" if self.device == "cuda" else "demo"
        return self.pipeline_model
