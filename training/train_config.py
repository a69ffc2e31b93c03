"""Training configuration: one frozen dataclass, written to RUN_DIR/config.json and into every
checkpoint, so a run can be resumed (and checked) exactly.

Every loss weight and regulariser setting is a field whose default is the value the authors'
``train.py`` (mchong6/GANsNRoses) runs with:

==========================  =======  =========================================================
field                       default  the authors' code
==========================  =======  =========================================================
``adv_image``               1        ``G_adv_loss = 1 * (...)`` on D_A and D_B (mean over the
                                     three D heads, each weighted ``lambda_adv = (1, 1, 1)``)
``adv_latent``              2        ``2 * g_nonsaturating_loss(D_L(...))`` per direction
``style_consistency``       50       ``50 * (A2B_style.var(0).sum() + B2A_style.var(0).sum())``
``cycle_mse``               20       ``20 * (mse(A2B2A, A) + mse(B2A2B, B))``
``cycle_lpips``             10       ``10 * (lpips(A2B2A, A) + lpips(B2A2B, B))`` ("10 for anime")
``style_recon``             5        ``5 * (mse(A2B2A_style, in_style) + ...)``
``r1``                      10       R1 gamma, on D_A, D_B and D_L, lazy:
``d_reg_every``             16       every 16 steps, scaled by ``r1 / 2 * d_reg_every``
``g_reg_every``             4        only enters the authors' (unused) ``g_reg_ratio``; kept
``lr``                      2e-3     Adam, both G and D
``betas``                   (0, .99) G; D uses ``betas ** (d_reg_every / (d_reg_every + 1))``
``lr_step`` / ``lr_gamma``  100k/.5  StepLR on both optimizers, stepped every iteration
``ema_decay``               0.999    ``accumulate(G_ema, G, 0.999)`` every iteration
``batch``                   4        per process
``iters``                   300000
==========================  =======  =========================================================

Fine-tuning notes (WaifuBlend re-trained GNR on CelebA males with batch 4 and style consistency
50, i.e. these defaults): a larger ``style_consistency`` makes the style code ignore pose and
framing more strictly; ``cycle_lpips`` only applies when LPIPS is on (``lpips=False`` is recorded
here and makes the run a different recipe than the paper's).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .config import ModelConfig


@dataclass(frozen=True)
class DataSource:
    """One image folder and its share of the mix (weights are normalised over the folders)."""

    path: str
    weight: float = 1.0

    def __post_init__(self):
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise ValueError(f"data weight must be a positive number, got {self.weight} for {self.path}")

    @classmethod
    def parse(cls, spec: str) -> "DataSource":
        """``DIR`` or ``DIR:WEIGHT`` (the last colon splits only when what follows is a number)."""
        head, sep, tail = spec.rpartition(":")
        if sep and head:
            try:
                weight = float(tail)
            except ValueError:
                weight = None
            if weight is not None:
                return cls(head, weight)
        return cls(spec, 1.0)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data_a: tuple[DataSource, ...] = ()
    data_b: tuple[DataSource, ...] = ()
    # -- schedule --------------------------------------------------------------------------------
    iters: int = 300_000
    batch: int = 4
    seed: int = 0
    # -- optimisation (the authors' values) ---------------------------------------------------
    lr: float = 2e-3
    betas: tuple[float, float] = (0.0, 0.99)
    lr_step: int = 100_000
    lr_gamma: float = 0.5
    ema_decay: float = 0.999
    # -- loss weights (the authors' values) ---------------------------------------------------
    adv_image: float = 1.0
    adv_image_heads: tuple[float, float, float] = (1.0, 1.0, 1.0)   # local, global, minibatch-std
    adv_latent: float = 2.0
    style_consistency: float = 50.0
    cycle_mse: float = 20.0
    cycle_lpips: float = 10.0
    style_recon: float = 5.0
    # -- regularisation ---------------------------------------------------------------------------
    r1: float = 10.0
    d_reg_every: int = 16
    g_reg_every: int = 4
    # -- augmentation (RandomAffine -> Resize(size + 30/256 of size) -> RandomCrop -> HFlip) ----
    aug_degrees: float = 20.0
    aug_scale: tuple[float, float] = (0.8, 1.2)
    aug_translate: float = 0.1
    aug_shear: float = 0.15
    aug_resize_extra: float = 30 / 256          # the authors' +30 px at 256, as a fraction
    aug_hflip: float = 0.5
    # -- LPIPS ---------------------------------------------------------------------------------------
    lpips: bool = True
    lpips_weights: str | None = None            # VGG16 features (torchvision layout)
    lpips_lin: str | None = None                # LPIPS v0.1 linear layers (lpips/weights/v0.1/vgg.pth)
    # -- precision / bookkeeping -------------------------------------------------------------
    amp: bool = False                           # bf16 autocast (CUDA with native bf16 only)
    log_every: int = 10
    sample_every: int = 1000
    checkpoint_every: int = 2000
    keep_checkpoints: int = 3
    n_sample_faces: int = 8
    n_sample_styles: int = 4
    workers: int = 2

    # Fields that may differ between a run and its resumption (they do not change the maths).
    RESUMABLE_CHANGES = ("iters", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                         "workers", "lpips_weights", "lpips_lin", "data_a", "data_b")

    def __post_init__(self):
        def positive(name, integer=True):
            v = getattr(self, name)
            if (integer and (not isinstance(v, int) or v < 1)) or (not integer and not v > 0):
                raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}, got {v!r}")

        for name in ("iters", "batch", "lr_step", "d_reg_every", "g_reg_every", "log_every",
                     "sample_every", "checkpoint_every", "keep_checkpoints", "n_sample_faces",
                     "n_sample_styles"):
            positive(name)
        for name in ("lr", "lr_gamma"):
            positive(name, integer=False)
        if self.batch < 2:
            raise ValueError("batch must be >= 2: the style-consistency loss is a variance over the "
                             "batch and the discriminator's minibatch-std needs two samples")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("adv_image", "adv_latent", "style_consistency", "cycle_mse", "cycle_lpips",
                     "style_recon", "r1", "aug_degrees", "aug_translate", "aug_shear",
                     "aug_resize_extra", "aug_hflip"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "aug_scale", tuple(float(b) for b in self.aug_scale))
        object.__setattr__(self, "adv_image_heads", tuple(float(b) for b in self.adv_image_heads))
        object.__setattr__(self, "data_a", tuple(
            d if isinstance(d, DataSource) else DataSource(**d) for d in self.data_a))
        object.__setattr__(self, "data_b", tuple(
            d if isinstance(d, DataSource) else DataSource(**d) for d in self.data_b))
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))

    # -- derived ---------------------------------------------------------------------------------
    @property
    def d_reg_ratio(self) -> float:
        return self.d_reg_every / (self.d_reg_every + 1)

    @property
    def d_betas(self) -> tuple[float, float]:
        return (self.betas[0] ** self.d_reg_ratio, self.betas[1] ** self.d_reg_ratio)

    @property
    def uses_lpips(self) -> bool:
        return self.lpips and self.cycle_lpips > 0

    # -- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["model"] = self.model.to_dict()
        d["data_a"] = [asdict(s) for s in self.data_a]
        d["data_b"] = [asdict(s) for s in self.data_b]
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config fields {unknown}")
        d = dict(d)
        if "model" in d:
            d["model"] = ModelConfig.from_dict(dict(d["model"]))
        for k in ("betas", "aug_scale", "adv_image_heads"):
            if k in d:
                d[k] = tuple(d[k])
        for k in ("data_a", "data_b"):
            if k in d:
                d[k] = tuple(DataSource(**s) for s in d[k])
        return cls(**d)

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_json(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def differences(self, other: "TrainConfig") -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ (model fields reported as ``model.NAME``)."""
        a, b = self.to_dict(), other.to_dict()
        out: dict[str, tuple[Any, Any]] = {}
        for k in a:
            if k == "model":
                for mk in a[k]:
                    if a[k][mk] != b[k][mk]:
                        out[f"model.{mk}"] = (a[k][mk], b[k][mk])
            elif a[k] != b[k]:
                out[k] = (a[k], b[k])
        return out

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# Command-line changes to a config (GNR training and distillation)
# ---------------------------------------------------------------------------------------------
def apply_changes(cfg, changes: dict[str, object], nested: str, nested_cls):
    """``cfg`` with ``changes`` made: plain keys are fields of ``cfg``, ``"<nested>.<field>"``
    keys fields of its nested config (``model`` of a TrainConfig, ``student`` of a
    DistillConfig), rebuilt as ``nested_cls``."""
    inner = {k.split(".", 1)[1]: v for k, v in changes.items() if k.startswith(nested + ".")}
    top = {k: v for k, v in changes.items() if not k.startswith(nested + ".")}
    if inner:
        top[nested] = nested_cls(**{**getattr(cfg, nested).to_dict(), **inner})
    return cfg.replace(**top)


def flag_for(fieldname: str, flag_fields: dict[str, str], special: dict[str, str]) -> str:
    """The command-line flag that sets config field ``fieldname``: from the parser's
    flag -> field table, else ``special``, else the field name itself."""
    for flag, f in flag_fields.items():
        if f == fieldname:
            return "--" + flag.replace("_", "-")
    return special.get(fieldname, fieldname)
