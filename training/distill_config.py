"""Distillation configuration: one frozen dataclass, written to RUN_DIR/config.json and into every
student checkpoint, so a run can be resumed (and checked) exactly.

The loss is ``l1 * |S - T| + ssim * (1 - SSIM(S, T)) + lpips_weight * LPIPS(S, T)`` between the
student's output S and the teacher's output T (clamped to [-1, 1], as the apps show it), on
augmented face crops: the augmentation of GNR training (:mod:`training.augment`, the authors'
RandomAffine -> resize -> random crop -> flip) with the same defaults, so the student sees the
poses and framings a tracker's crops have. SSIM uses a 7x7 Gaussian window (kornia); it is the
perceptual term that needs no pretrained weights, and stays on beside LPIPS.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .student import StudentConfig
from .train_config import DataSource


@dataclass(frozen=True)
class DistillConfig:
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: str = ""                           # the GNR checkpoint distilled
    teacher_which: str = "G_A2B_ema"
    style: dict | None = None                   # StyleCode.to_dict() of a locked-style student
    data_a: tuple[DataSource, ...] = ()
    # -- schedule --------------------------------------------------------------------------------
    iters: int = 20_000
    batch: int = 8
    seed: int = 0
    lr: float = 2e-3                            # Adam; cosine decay to lr * lr_final over iters
    lr_final: float = 0.02
    betas: tuple[float, float] = (0.9, 0.99)
    # -- losses --------------------------------------------------------------------------------
    l1: float = 1.0
    ssim: float = 1.0
    lpips: bool = True
    lpips_weight: float = 1.0
    lpips_weights: str | None = None            # VGG16 features (torchvision layout)
    lpips_lin: str | None = None                # LPIPS v0.1 linear layers
    # -- augmentation (training/augment.py; the authors' values) --------------------------------
    aug_degrees: float = 20.0
    aug_scale: tuple[float, float] = (0.8, 1.2)
    aug_translate: float = 0.1
    aug_shear: float = 0.15
    aug_resize_extra: float = 30 / 256
    aug_hflip: float = 0.5
    # -- what the checkpoint carries, bookkeeping -----------------------------------------------
    style_encoder: bool = True                  # a style-conditioned student keeps G_B2A_ema
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    n_sample_faces: int = 6
    n_sample_styles: int = 3
    workers: int = 1

    # Fields that may differ between a run and its resumption (they do not change the maths).
    # The teacher may move: its sha256, stored in the checkpoints, is checked instead.
    RESUMABLE_CHANGES = ("iters", "log_every", "sample_every", "checkpoint_every",
                         "keep_checkpoints", "workers", "lpips_weights", "lpips_lin", "data_a",
                         "teacher")

    def __post_init__(self):
        if isinstance(self.student, dict):
            object.__setattr__(self, "student", StudentConfig.from_dict(self.student))
        for name in ("iters", "batch", "log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints", "n_sample_faces", "n_sample_styles"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be an integer >= 0, got {self.workers!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 < self.lr_final <= 1:
            raise ValueError(f"lr_final must be in (0, 1] (a fraction of lr), got {self.lr_final!r}")
        for name in ("l1", "ssim", "lpips_weight", "aug_degrees", "aug_translate", "aug_shear",
                     "aug_resize_extra", "aug_hflip"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.l1 + self.ssim + (self.lpips_weight if self.lpips else 0) <= 0:
            raise ValueError("every loss weight is 0: give --l1, --ssim or --lpips-weight > 0")
        if (self.style is None) != self.student.dynamic_style:
            raise ValueError("a locked-style student needs a style (--style, --style-image, "
                             "--style-vector); a --dynamic-style one takes none")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "aug_scale", tuple(float(b) for b in self.aug_scale))
        object.__setattr__(self, "data_a", tuple(
            d if isinstance(d, DataSource) else DataSource(**d) for d in self.data_a))

    @property
    def uses_lpips(self) -> bool:
        return self.lpips and self.lpips_weight > 0

    def lr_at(self, step: int) -> float:
        """Cosine decay from ``lr`` at step 0 to ``lr * lr_final`` at ``iters``."""
        t = min(max(step / self.iters, 0.0), 1.0)
        return self.lr * (self.lr_final + (1 - self.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))

    # -- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["student"] = self.student.to_dict()
        d["data_a"] = [asdict(s) for s in self.data_a]
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DistillConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown distillation config fields {unknown}")
        d = dict(d)
        for k in ("betas", "aug_scale"):
            if k in d:
                d[k] = tuple(d[k])
        if "data_a" in d:
            d["data_a"] = tuple(DataSource(**s) for s in d["data_a"])
        return cls(**d)

    def save_json(self, path: str | Path) -> None:
        from .fileio import write_bytes_atomic
        write_bytes_atomic(path, (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode())

    @classmethod
    def load_json(cls, path: str | Path) -> "DistillConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def differences(self, other: "DistillConfig") -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ (student fields reported as ``student.NAME``)."""
        a, b = self.to_dict(), other.to_dict()
        out: dict[str, tuple[Any, Any]] = {}
        for k in a:
            if k == "student":
                out.update({f"student.{sk}": (a[k][sk], b[k][sk]) for sk in a[k] if a[k][sk] != b[k][sk]})
            elif a[k] != b[k]:
                out[k] = (a[k], b[k])
        return out

    def replace(self, **changes) -> "DistillConfig":
        return replace(self, **changes)
